"""`ci-env cleanup`: delete registry tags by retention policy, never what a kept tag needs.

Flow: policy (file + options) -> per repository: list, decide (pure policy), walk the digest
graph -> a plan. `--dry-run` prints it, `--plan-out` saves it, otherwise it is applied by
parallel workers. The report (terminal, `--report-json`, GitHub job summary) is written in a
`finally`, so a run stopped by an auth error still leaves a complete record of what happened.
The options and the environment are read once, by `resolve`, into one frozen `Settings`; the
run receives only that.
Exit: 0 done, 1 some deletions failed (or a repository failed closed), 2 bad input, 3 auth.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ci_env import backend_options as backend_layer
from ci_env import durations, private_files, providers, secrets, settings, untrusted
from ci_env.cleanup import gitrefs, planner, werf_config
from ci_env.cleanup import plan as plans
from ci_env.cleanup import rules as policy_file
from ci_env.cleanup.apply import Applier, Job, Outcome, Status
from ci_env.cleanup.plan import Plan, RepoPlan
from ci_env.cleanup.progress import Progress
from ci_env.cleanup.rules import Broken, GitRule, Rules, Untagged, commits_per_branch
from ci_env.commands import _inuse
from ci_env.errors import CiEnvError, UsageError
from ci_env.providers.base import Provider
from ci_env.reference import parse
from ci_env.registries.base import Backend
from ci_env.reports import base as reports
from ci_env.reports import human

# Workers (requests in flight) by default: enough to hide a 30 ms round trip behind ~500
# requests a second, well under what registries tolerate (GitHub: 100 concurrent; gcrane
# copies 20 at once; 429 + Retry-After is honoured by the transport). README "Plan and apply".
DEFAULT_PARALLEL = 16

NAME = "cleanup"
HELP = "delete registry tags by retention policy, keeping everything kept tags need"
DESCRIPTION = """\
Delete tags from container registries by a retention policy, through the API each registry
supports. A tag whose digest a kept tag still needs is only untagged; children of kept indexes
and referrers (signatures, SBOMs) of kept images are never deleted. Policy from --policy FILE
(YAML, version: 1) and/or the options below (options win). Right before deleting, each
repository's tags are listed again: tags pushed or moved since planning keep their images.

exit codes: 0 done, 1 some deletions failed, 2 bad input, 3 authentication/permission
"""


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is true, int("²") fails
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--repo",
        action="append",
        metavar="REPO",
        help="repository (repeatable; REPO/* = all under REPO); default CIENV_REPO, then WERF_REPO",
    )
    add(
        "--shard",
        metavar="I/N",
        help="only the I-th of N stable shares of the repositories; `auto`: GitLab's "
        "`parallel: N` (CI_NODE_INDEX/CI_NODE_TOTAL; no sharding outside one)",
    )
    add("--policy", metavar="FILE", help="policy YAML (version: 1); env CIENV_POLICY")
    add(
        "--werf-config",
        metavar="WERF_YAML",
        help="take keep.git and keep.newer_than from werf.yaml's cleanup section "
        "(keepPolicies, keepImagesBuiltWithinLastNHours); over --policy, under the options; "
        "env CIENV_WERF_CONFIG",
    )
    rules = parser.add_argument_group("policy options (override the policy file)")
    rules.add_argument("--keep-latest", type=_count, metavar="N", help="keep the N newest images")
    rules.add_argument("--keep-newer-than", metavar="DURATION", help="default 2h (0s: off)")
    rules.add_argument("--keep-tag", action="append", metavar="REGEX", help="never delete")
    rules.add_argument(
        "--keep-list",
        metavar="FILE",
        help="tags to keep, one a line (env CIENV_KEEP_LIST, WERF_KEEP_LIST)",
    )
    rules.add_argument("--keep-semver", type=_count, metavar="N", help="keep N highest versions")
    rules.add_argument(
        "--keep-git",
        action="store_true",
        help="keep images of origin's branches and tags by werf's default keepPolicies "
        "(unless the policy file or --werf-config gives policies)",
    )
    rules.add_argument(
        "--commits-per-branch",
        type=_count,
        metavar="N",
        help="keep.git shorthand: images of every git tag and of the N newest commits "
        "with images on each branch",
    )
    rules.add_argument(
        "--commit-tag",
        action="append",
        metavar="REGEX",
        help="keep.git: tags whose first regex group is the image's commit SHA, "
        "e.g. '.+-([0-9a-f]{7,40})' (repeatable; added to the file's)",
    )
    rules.add_argument(
        "--git-dir",
        default=".",
        metavar="DIR",
        help="checkout for keep.git, with an `origin` remote (fetched and unshallowed first)",
    )
    rules.add_argument("--delete-tag", action="append", metavar="REGEX", help="candidates only")
    rules.add_argument("--delete-older-than", metavar="DURATION")
    rules.add_argument("--untagged", choices=[u.value for u in Untagged])
    rules.add_argument(
        "--keep-orphan-referrers",
        action="store_true",
        help="keep signatures/SBOMs whose image is deleted",
    )
    rules.add_argument(
        "--on-broken",
        choices=[b.value for b in Broken],
        help="a kept tag whose index names a missing child (404 MANIFEST_UNKNOWN): fail "
        "closes the repository (default); skip leaves that tag and what it references alone, "
        "cleans the rest and reports it (policy: broken)",
    )
    _inuse.add_arguments(parser)
    run = parser.add_argument_group("run")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan, change nothing (env CIENV_DRY_RUN, WERF_DRY_RUN)",
    )
    run.add_argument("--plan-out", metavar="FILE", help="save the plan as JSON")
    run.add_argument("--apply-plan", metavar="FILE", help="apply a saved plan (re-checks tags)")
    run.add_argument(
        "--parallel",
        type=_count,
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"requests in flight, shared by planning and deleting ({DEFAULT_PARALLEL}); a "
        "registry answering 429 is waited for (Retry-After), so lower it only for a registry "
        "that fails under load",
    )
    run.add_argument("--report-json", metavar="FILE", help="write the JSON report here")
    run.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="keep manifests and config blobs by digest here for the next run (env "
        "CIENV_CACHE_DIR; default $XDG_CACHE_HOME/ci-env, else ~/.cache/ci-env)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="no cache directory: one run's memory only (env CIENV_NO_CACHE)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        dest="show_kept",
        action="store_true",
        help="list kept tags too, and log requests and decisions (as `ci-env -v`)",
    )
    backend_layer.add_backend_arguments(parser)


# ---- policy from file + options -------------------------------------------------------------


def _patterns(values: list[str] | None, option: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    for value in values:
        policy_file.compile_pattern(value, option)
    return tuple(values)


def _git_rule(args: argparse.Namespace, current: GitRule | None) -> GitRule | None:
    """keep.git as the options change it; None when they leave it as it is."""
    git = current
    if args.commits_per_branch is not None:
        git = dataclasses.replace(
            current or GitRule(), policies=commits_per_branch(args.commits_per_branch)
        )
    elif args.keep_git and git is None:
        git = GitRule()
    if args.commit_tag:
        if git is None:
            raise UsageError(
                "--commit-tag needs keep.git",
                "add --keep-git, keep.git in the policy file, or --werf-config",
            )
        for pattern in args.commit_tag:
            if policy_file.compile_pattern(pattern, "--commit-tag").groups < 1:
                raise UsageError(
                    f"--commit-tag {pattern!r} has no group",
                    "put the SHA in a group: .+-([0-9a-f]{7,40})",
                )
        git = dataclasses.replace(git, commit_tags=git.commit_tags + tuple(args.commit_tag))
    return None if git is current else git


def load_rules(args: argparse.Namespace, env: Mapping[str, str], in_use: _inuse.Settings) -> Rules:
    path = args.policy or settings.cienv("POLICY", env=env)
    rules = policy_file.load(path) if path else Rules()
    werf_yaml = args.werf_config or settings.env_first("CIENV_WERF_CONFIG", env=env)
    if werf_yaml:
        rules = werf_config.load(werf_yaml).apply(rules)
    changes: dict[str, object] = {}
    if args.keep_latest is not None:
        changes["keep_latest"] = args.keep_latest
    if args.keep_newer_than is not None:
        changes["keep_newer_than"] = durations.parse(args.keep_newer_than, what="--keep-newer-than")
    if (keep := _patterns(args.keep_tag, "--keep-tag")) is not None:
        changes["keep_tags"] = rules.keep_tags + keep
    if (delete := _patterns(args.delete_tag, "--delete-tag")) is not None:
        changes["delete_tags"] = delete
    if args.delete_older_than is not None:
        older = durations.parse(args.delete_older_than, what="--delete-older-than")
        changes["delete_older_than"] = older
    if args.keep_semver is not None:
        changes["keep_semver"] = args.keep_semver
    if args.untagged is not None:
        changes["untagged"] = Untagged(args.untagged)
    if args.on_broken is not None:
        changes["broken"] = Broken(args.on_broken)
    if (git := _git_rule(args, rules.keep_git)) is not None:
        changes["keep_git"] = git
    changes.update(_inuse.rule_changes(in_use, rules))
    rules = rules.replace(**changes)
    keep_list = args.keep_list or rules.keep_list_file or settings.cienv("KEEP_LIST", env=env)
    if keep_list:
        names = policy_file.load_keep_list(keep_list)
        rules = rules.replace(keep_list_file=keep_list, keep_list=names)
    _warn_globs(rules)
    return rules


# A tag pattern made only of name characters and `*`, with a `*` that follows no `.`: written as
# a glob (snok's and dataaxiom's cleanup actions take globs), but matched as a full regex.
_GLOB_LIKE = re.compile(r"[\w.-]*(?<![.])\*[\w.*-]*")


def _warn_globs(rules: Rules) -> None:
    for where, patterns in (("keep", rules.keep_tags), ("delete", rules.delete_tags)):
        for pattern in patterns:
            if _GLOB_LIKE.fullmatch(pattern):
                regex = re.sub(r"(?<![.])\*", ".*", pattern)
                print(
                    f"warning: {where} tag pattern {pattern!r} looks like a glob, but it is a "
                    "regular expression matched against the whole tag (`*` repeats the "
                    f"character before it); for the glob write {regex!r}",
                    file=sys.stderr,
                )


# ---- the settings of one run -----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """One cleanup run: the options and the environment, resolved before anything is sent."""

    dry_run: bool
    plan_out: str | None
    saved: Plan | None  # --apply-plan's plan
    rules: Rules | None  # the policy; None when a saved plan is applied
    repos: tuple[str, ...]
    shard: str  # "I/N" as given (auto: GitLab's CI_NODE_INDEX/CI_NODE_TOTAL); "" = no sharding
    git_dir: str
    keep_orphan_referrers: bool
    parallel: int
    report_json: str | None
    show_kept: bool
    registries: backend_layer.RegistrySettings
    in_use: _inuse.Settings
    provider: Provider


def _shard(text: str | None, env: Mapping[str, str]) -> str:
    if text == "auto":
        index, total = env.get("CI_NODE_INDEX", ""), env.get("CI_NODE_TOTAL", "")
        return f"{index}/{total}" if index and total else ""
    return text or ""


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """All a cleanup run takes from `args` and `env`, read here (the policy files and a saved
    plan too, in the order their errors showed before); nothing reads either later."""
    dry_run = bool(args.dry_run or settings.cienv_flag("DRY_RUN", env=env))
    if args.apply_plan and args.plan_out:
        raise UsageError("--apply-plan and --plan-out do not go together", "use one of them")
    if args.apply_plan:
        _refuse_policy_options(args)
    saved = plans.load(args.apply_plan) if args.apply_plan else None
    in_use = _inuse.resolve(args, env)
    rules = None if saved else load_rules(args, env, in_use)
    registries = backend_layer.registry_settings(args, env)
    default = settings.cienv("REPO", env=env)
    return Settings(
        dry_run=dry_run,
        plan_out=args.plan_out,
        saved=saved,
        rules=rules,
        repos=tuple(args.repo or ([default] if default else [])),
        shard=_shard(args.shard, env),
        git_dir=args.git_dir,
        keep_orphan_referrers=args.keep_orphan_referrers,
        parallel=max(1, args.parallel),
        report_json=args.report_json,
        show_kept=bool(args.show_kept or args.verbose),
        registries=registries,
        in_use=in_use,
        # The provider keeps its mapping for later (the job summary's file): a copy taken now.
        provider=providers.select("auto", settings.snapshot(env)),
    )


# ---- one run ---------------------------------------------------------------------------------


@dataclass
class _Run:
    settings: Settings
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    plans: list[RepoPlan] = field(default_factory=list)
    backends: dict[tuple[str, str], Backend] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    applied: dict[str, RepoPlan] = field(default_factory=dict)  # name -> plan as re-checked

    def backend(self, registry: str, kind: str | None = None) -> Backend:
        registries = self.settings.registries
        found = registries.choose_kind(registry, kind=kind)
        key = (registry, found.kind)
        if key not in self.backends:
            self.backends[key] = found.backend(registry, registries.options)
        return self.backends[key]

    def repositories(self) -> list[tuple[Backend, str]]:
        names = self.settings.repos
        if not names:
            raise UsageError(
                "no repository to clean up",
                "pass --repo HOST/PATH (repeatable, HOST/PREFIX/* for many) or set CIENV_REPO",
            )
        text = self.settings.shard
        shard = planner.parse_shard(text) if text else None
        found: list[tuple[Backend, str]] = []
        for text in names:
            wildcard = text.strip().endswith("*")
            ref = parse(
                text.strip().removesuffix("*").rstrip("/") if wildcard else text, allow_tag=False
            )
            backend = self.backend(ref.registry)
            pattern = ref.repository + "/*" if wildcard else ref.repository
            names_found = planner.select(planner.expand(backend, pattern), shard)
            found.extend((backend, name) for name in names_found)
        return found

    def planner_settings(self, rules: Rules) -> tuple[planner.Settings, tuple[str, ...]]:
        """Planner settings and the plan's in-use sources; reads keep.git's history and the
        images in use once."""
        config = self.settings
        history = gitrefs.read_history(config.git_dir) if rules.keep_git is not None else None
        s = planner.Settings(
            rules,
            self.started,
            history,
            config.keep_orphan_referrers,
            config.parallel,
            in_use=_inuse.read(config.in_use, rules),
            skip_broken=rules.broken is Broken.SKIP,
        )
        in_use = () if s.in_use is None else s.in_use.sources or ("in-use protection",)
        return s, in_use

    def planning(self, s: planner.Settings, workers: Executor) -> tuple[planner.Settings, Progress]:
        """`s` on the shared `workers`, counting tags on a planning progress bar."""
        progress = Progress(0, sys.stderr, tty=sys.stderr.isatty(), label="planning", unit="tags")
        s = replace(s, workers=workers, on_listed=progress.grow, on_resolved=progress.advance)
        return s, progress

    def make_plan(self, rules: Rules) -> Plan:
        """The whole plan, every repository planned before anything is deleted."""
        s, in_use = self.planner_settings(rules)
        pairs = self.repositories()
        with ThreadPoolExecutor(s.parallel, thread_name_prefix="plan") as workers:
            s, progress = self.planning(s, workers)
            try:
                found = dict(planner.plan_all(pairs, s))
            finally:
                progress.close()
        self.plans.extend(found[index] for index in sorted(found))
        return Plan(self.started, tuple(self.plans), in_use)

    def plan_and_apply(self, rules: Rules) -> Plan:
        """Plan and delete in one pipeline: a repository's deletions (after its re-check)
        start as soon as its plan is final; planning and deleting share `--parallel` workers."""
        s, in_use = self.planner_settings(rules)
        pairs = self.repositories()
        found: dict[int, RepoPlan] = {}
        with ThreadPoolExecutor(s.parallel, thread_name_prefix="plan") as workers:
            s, planning = self.planning(s, workers)
            tty = sys.stderr.isatty()
            progress = Progress(0, sys.stderr, tty=tty, held=tty)  # one bar on a terminal

            def jobs() -> Iterator[Job]:
                for index, repo in planner.plan_all(pairs, s):
                    found[index] = repo
                    self.plans.append(repo)
                    progress.grow(len(repo.operations()))
                    yield Job(repo, self.backend(repo.registry, repo.kind))
                planning.close()
                progress.release()

            applier = Applier(parallel=s.parallel, on_done=progress.advance)
            try:
                applier.run(jobs(), workers)
            finally:
                self.outcomes = list(applier.results)
                self.applied = dict(applier.plans)
                self.plans[:] = [found[index] for index in sorted(found)]
                progress.close()
        return self.revised(Plan(self.started, tuple(self.plans), in_use))

    def apply(self, plan: Plan, *, recheck: bool) -> Plan:
        """Carry out `plan`; returns it as re-validated right before the deletions."""
        jobs = [Job(repo, self.backend(repo.registry, repo.kind)) for repo in plan.repositories]
        total = sum(len(job.plan.operations()) for job in jobs)
        progress = Progress(total, sys.stderr, tty=sys.stderr.isatty())
        applier = Applier(
            parallel=self.settings.parallel, recheck=recheck, on_done=progress.advance
        )
        try:
            applier.run(jobs)
        finally:
            self.outcomes = list(applier.results)
            self.applied = dict(applier.plans)
            progress.close()
        return self.revised(plan)

    def revised(self, plan: Plan) -> Plan:
        """`plan` with each repository as the pre-deletion re-check left it."""
        repos = tuple(self.applied.get(repo.name, repo) for repo in plan.repositories)
        return replace(plan, repositories=repos)

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()


def _exit_code(plan: Plan, outcomes: list[Outcome]) -> int:
    failed = any(o.status is Status.FAILED for o in outcomes)
    closed = any(repo.error for repo in plan.repositories)
    return 1 if failed or closed else 0


def _report(
    run: _Run, plan: Plan, dry_run: bool, error: CiEnvError | None, *, quiet: bool = False
) -> int:
    """Write the JSON report, and unless `quiet` the terminal report and job summary."""
    code = error.exit_code if error else _exit_code(plan, run.outcomes)
    report = reports.build(
        plan,
        run.outcomes,
        started=run.started,
        finished=datetime.now(UTC),
        dry_run=dry_run,
        error=error.render().removeprefix("error: ") if error else None,
        exit_code=code,
    )
    options = reports.Options(verbose=run.settings.show_kept)
    path = run.settings.report_json
    if path:
        text = reports.render("json", report, options)
        try:
            private_files.write_text(path, text + "\n")
        except OSError as problem:
            print(f"error: cannot write {path}: {problem.strerror}", file=sys.stderr)
    if quiet:
        return code
    for repo in report.repos:
        title = f"cleanup {repo.name}: {human.summary(repo)}"  # counts visible while folded
        title = " ".join(title.splitlines())  # a name with a newline must not end the command
        run.settings.provider.section_start(f"cleanup {repo.name}", title, sys.stdout)
        print(untrusted.guard(secrets.redact("\n".join(human.render_repo(repo, options)))))
        run.settings.provider.section_end(f"cleanup {repo.name}", sys.stdout)
    for repo in report.repos:  # an annotation per broken tag left alone (one escaped line)
        for text in repo.broken:
            run.settings.provider.error(
                secrets.redact(f"broken, left alone: {repo.name}:{text}"), sys.stdout
            )
    print(untrusted.guard(secrets.redact("\n".join(human.render_totals(report)))))
    run.settings.provider.summary(reports.render("markdown", report, options))
    return code


# Options that shape a plan: a saved plan is applied as it is, so they would be ignored.
_POLICY_OPTIONS = (
    "policy", "werf_config", "keep_latest", "keep_newer_than", "keep_tag", "keep_list",
    "keep_semver", "keep_git", "commits_per_branch", "commit_tag", "delete_tag",
    "delete_older_than", "untagged", "keep_orphan_referrers",
)  # fmt: skip


def _refuse_policy_options(args: argparse.Namespace) -> None:
    given = [name for name in _POLICY_OPTIONS if getattr(args, name) not in (None, False)]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(
            f"--apply-plan applies the saved plan as it is; it cannot take {options}",
            "drop them, or make a new plan with them (--plan-out FILE) and apply that",
        )


def run(args: argparse.Namespace) -> int:
    if args.show_kept:
        logging.getLogger().setLevel(logging.DEBUG)  # `cleanup -v` is also `ci-env -v`
    return execute(resolve(args, settings.environ()))


def execute(config: Settings) -> int:
    """Plan (or take the saved plan), save, apply, report: from `config` alone."""
    saved, rules = config.saved, config.rules
    run = _Run(config)
    plan = saved or Plan(run.started)
    error: CiEnvError | None = None
    try:
        if rules is not None and not (config.dry_run or config.plan_out):
            plan = run.plan_and_apply(rules)  # the whole plan is never needed at once
        else:
            if rules is not None:
                plan = run.make_plan(rules)
            elif saved is not None:
                plan = saved = _inuse.recheck_saved(config.in_use, saved)
            if config.plan_out:
                plans.save(plan, config.plan_out)
            if not config.dry_run:
                plan = run.apply(plan, recheck=saved is not None)
    except CiEnvError as problem:
        error = problem
        plan = run.revised(saved or Plan(run.started, tuple(run.plans)))
    finally:
        run.close()
    # Nothing planned yet (e.g. a bad --repo): the JSON report still records the error.
    quiet = error is not None and not plan.repositories
    code = _report(run, plan, config.dry_run, error, quiet=quiet)
    if error is not None:
        raise error
    return code
