"""The retention policy: frozen rules, and the `version: 1` YAML file that spells them.

The YAML is read as a node tree (not plain data) so that every error names the key *and the
line* of the mistake; a bad policy is a UsageError and nothing is deleted. Schema:

    version: 1
    keep:
      latest: 10            # the 10 most recent images (digests, not tags)
      newer_than: 2h        # default 2h: never touch what was just pushed
      tags: ["v.*"]         # full-match regexes, never deleted
      list: keep.txt        # one tag per line
      semver: 5             # the 5 highest semantic-version tags
      git: true             # werf's default keepPolicies; or a mapping:
      #   policies: [{references: {branch: /.*/, limit: {last: 10}}, imagesPerReference: {last: 2}}]
      #   commit_tags: [".+-([0-9a-f]{7,40})"]   # tags whose first group is a commit SHA
      in_use:               # images workloads use are never deleted
        kubernetes: true    # or {contexts: [a, b], namespaces: [prod]}
        file: images.txt    # references, one a line (or a list of files)
    delete:
      tags: ["pr-.*"]       # candidates (default: every tag)
      older_than: 30d
    untagged: keep          # or delete
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

from ci_env import durations
from ci_env.cleanup.keep_policies import (
    DEFAULT_POLICIES,
    IMAGES_DEFAULT,
    KeepPolicy,
    Limit,
    Operator,
    RefKind,
    compile_reference,
)
from ci_env.errors import UsageError

DEFAULT_NEWER_THAN = timedelta(hours=2)
# Go's time.ParseDuration, which werf's `in` uses: e.g. 168h, 1h30m, 90m, 2.5h.
_GO_DURATION = re.compile(r"(?:([0-9]+(?:\.[0-9]+)?)(h|m|s|ms|us|µs|ns))+")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class Untagged(enum.StrEnum):
    KEEP = "keep"
    DELETE = "delete"


@dataclass(frozen=True)
class GitRule:
    policies: tuple[KeepPolicy, ...] = DEFAULT_POLICIES
    commit_tags: tuple[str, ...] = ()  # regexes whose first group is a commit SHA


def commits_per_branch(count: int) -> tuple[KeepPolicy, ...]:
    """The older `commits_per_branch: N` spelled as keepPolicies: every git tag's image, and
    the N newest commits with images on each branch."""
    return (
        KeepPolicy(RefKind.TAG, "/.*/"),
        KeepPolicy(RefKind.BRANCH, "/.*/", images=Limit(last=count)),
    )


def go_duration(text: str) -> timedelta | None:
    """Go's duration syntax (werf's `in: 168h`), or ci-env's (`7d`); None when neither."""
    text = text.strip()
    if _GO_DURATION.fullmatch(text):
        pairs = re.findall(r"([0-9]+(?:\.[0-9]+)?)(h|ms|us|µs|ns|m|s)", text)
        return timedelta(seconds=sum(float(n) * _GO_UNITS[u] for n, u in pairs))
    try:
        return durations.parse(text)
    except UsageError:
        return None


@dataclass(frozen=True)
class KubeRule:
    contexts: tuple[str, ...] = ()  # empty: every kubeconfig context
    namespaces: tuple[str, ...] = ()  # empty: all namespaces


@dataclass(frozen=True)
class Rules:
    keep_latest: int | None = None
    keep_newer_than: timedelta = DEFAULT_NEWER_THAN
    keep_tags: tuple[str, ...] = ()
    keep_list_file: str | None = None
    keep_list: frozenset[str] = frozenset()  # filled from keep_list_file by load_keep_list
    keep_semver: int | None = None
    keep_git: GitRule | None = None
    in_use_kubernetes: KubeRule | None = None
    in_use_files: tuple[str, ...] = ()
    delete_tags: tuple[str, ...] = ()  # empty: every tag is a candidate
    delete_older_than: timedelta | None = None
    untagged: Untagged = Untagged.KEEP

    def replace(self, **changes: object) -> Rules:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def names_latest(self) -> bool:
        """`latest` is protected unless a delete.tags pattern spells the word itself."""
        return any("latest" in pattern for pattern in self.delete_tags)


def compile_pattern(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise UsageError(
            f"{where}: {pattern!r} is not a valid regular expression ({error})",
            "use Python `re` syntax; the whole tag must match",
        ) from None


def load_keep_list(path: str, *, where: str = "--keep-list") -> frozenset[str]:
    """Tags from a file, one a line; blank lines and `#` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"{where}: cannot read {path!r} ({error.strerror})", "check the path"
        ) from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def load(path: str) -> Rules:
    """Read and validate a policy file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"cannot read policy file {path!r} ({error.strerror})", "check --policy"
        ) from None
    return parse(text, source=path)


def parse(text: str, *, source: str = "policy") -> Rules:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{source}{line}: not valid YAML", "fix the YAML syntax") from None
    return Reader(source).rules(root)


class Reader:
    """Walks the YAML nodes; each error says `<file> line N: <key>: <problem>`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, key: str, problem: str, hint: str = "") -> UsageError:
        line = node.start_mark.line + 1
        return UsageError(f"{self.source} line {line}: {key}: {problem}", hint)

    def mapping(self, node: yaml.Node, key: str, known: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, "expected a mapping of keys")
        found: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            name = str(key_node.value)
            full = f"{key}.{name}" if key else name
            if name not in known:
                raise self.fail(key_node, full, "unknown key", "known keys: " + ", ".join(known))
            if name in found:
                raise self.fail(key_node, full, "given twice")
            found[name] = value
        return found

    def scalar(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, "expected a single value")
        return str(node.value)

    def text(self, node: yaml.Node, key: str) -> str:
        """A scalar YAML reads as a string: `tags: 7` or `list: true` is a mistake, not "7"."""
        value = self.scalar(node, key)
        if node.tag != "tag:yaml.org,2002:str":
            kind = node.tag.rsplit(":", 1)[-1]
            raise self.fail(node, key, f"expected text, got the {kind} {value!r}", "quote it")
        return value

    def count(self, node: yaml.Node, key: str) -> int:
        text = self.scalar(node, key)
        if not text.isdigit():
            raise self.fail(node, key, f"expected a whole number >= 0, got {text!r}")
        return int(text)

    def last(self, node: yaml.Node, key: str) -> int:
        text = self.scalar(node, key)
        if not re.fullmatch(r"-1|[0-9]+", text):
            raise self.fail(node, key, f"expected a whole number >= 0 or -1 (all), got {text!r}")
        return int(text)

    def limit(self, node: yaml.Node, key: str, default: Limit) -> Limit:
        found = self.mapping(node, key, ("last", "in", "operator"))
        limit = default
        if "last" in found:
            limit = dataclasses.replace(limit, last=self.last(found["last"], f"{key}.last"))
        if "in" in found:
            text = self.scalar(found["in"], f"{key}.in")
            if (within := go_duration(text)) is None:
                raise self.fail(
                    found["in"], f"{key}.in", f"{text!r} is not a duration", "e.g. 12h, 168h, 1h30m"
                )
            limit = dataclasses.replace(limit, within=within)
        if "operator" in found:
            value = self.scalar(found["operator"], f"{key}.operator")
            if value not in {op.value for op in Operator}:
                raise self.fail(found["operator"], f"{key}.operator", f"{value!r} is not And or Or")
            limit = dataclasses.replace(limit, operator=Operator(value))
        return limit

    def keep_policy(self, node: yaml.Node, key: str) -> KeepPolicy:
        found = self.mapping(node, key, ("references", "imagesPerReference"))
        if "references" not in found:
            raise self.fail(node, f"{key}.references", "missing", "every policy names references")
        where = f"{key}.references"
        refs = self.mapping(found["references"], where, ("branch", "tag", "limit"))
        kinds = [kind for kind in RefKind if kind.value in refs]
        if len(kinds) != 1:
            raise self.fail(
                found["references"], where, "give exactly one of branch or tag", "e.g. branch: /.*/"
            )
        kind = kinds[0]
        name = self.text(refs[kind.value], f"{where}.{kind.value}")
        try:
            compile_reference(name)
        except re.error as error:
            raise self.fail(
                refs[kind.value],
                f"{where}.{kind.value}",
                f"{name!r} is not a valid regex ({error})",
            ) from None
        limit = self.limit(refs["limit"], f"{where}.limit", Limit()) if "limit" in refs else None
        images = IMAGES_DEFAULT
        if "imagesPerReference" in found:
            images = self.limit(found["imagesPerReference"], f"{key}.imagesPerReference", images)
        return KeepPolicy(kind, name, limit, images)

    def keep_policies(self, node: yaml.Node, key: str) -> tuple[KeepPolicy, ...]:
        """werf's keepPolicies list, verbatim; an empty list means werf's defaults, as in werf."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, "expected a list of policies")
        policies = tuple(self.keep_policy(item, f"{key}[{i}]") for i, item in enumerate(node.value))
        return policies or DEFAULT_POLICIES

    def duration(self, node: yaml.Node, key: str) -> timedelta:
        text = self.scalar(node, key)
        try:
            return durations.parse(text, what=key)
        except UsageError as error:
            raise self.fail(node, key, f"{text!r} is not a duration", error.hint) from None

    def patterns(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        patterns = tuple(self.text(item, key) for item in items)
        for item, pattern in zip(items, patterns, strict=True):
            try:
                compile_pattern(pattern, key)
            except UsageError as error:
                raise self.fail(item, key, error.message.split(": ", 1)[1], error.hint) from None
        return patterns

    def rules(self, root: yaml.Node | None) -> Rules:
        if root is None:
            raise UsageError(f"{self.source}: the policy file is empty", "start it with version: 1")
        top = self.mapping(root, "", ("version", "keep", "delete", "untagged"))
        if "version" not in top:
            raise self.fail(root, "version", "missing", "start the policy file with version: 1")
        if self.scalar(top["version"], "version") != "1":
            raise self.fail(
                top["version"], "version", "unsupported", "this ci-env reads version: 1"
            )
        rules = Rules()
        if "keep" in top:
            rules = self.keep(top["keep"], rules)
        if "delete" in top:
            found = self.mapping(top["delete"], "delete", ("tags", "older_than"))
            if "tags" in found:
                rules = rules.replace(delete_tags=self.patterns(found["tags"], "delete.tags"))
            if "older_than" in found:
                older = self.duration(found["older_than"], "delete.older_than")
                rules = rules.replace(delete_older_than=older)
        if "untagged" in top:
            value = self.scalar(top["untagged"], "untagged")
            if value not in {item.value for item in Untagged}:
                raise self.fail(top["untagged"], "untagged", f"{value!r} is not keep or delete")
            rules = rules.replace(untagged=Untagged(value))
        return rules

    def keep(self, node: yaml.Node, rules: Rules) -> Rules:
        known = ("latest", "newer_than", "tags", "list", "semver", "git", "in_use")
        found = self.mapping(node, "keep", known)
        if "latest" in found:
            rules = rules.replace(keep_latest=self.count(found["latest"], "keep.latest"))
        if "newer_than" in found:
            newer = self.duration(found["newer_than"], "keep.newer_than")
            rules = rules.replace(keep_newer_than=newer)
        if "tags" in found:
            rules = rules.replace(keep_tags=self.patterns(found["tags"], "keep.tags"))
        if "list" in found:
            rules = rules.replace(keep_list_file=self.text(found["list"], "keep.list"))
        if "semver" in found:
            rules = rules.replace(keep_semver=self.count(found["semver"], "keep.semver"))
        if "git" in found:
            rules = rules.replace(keep_git=self.git(found["git"]))
        if "in_use" in found:
            rules = self.in_use(found["in_use"], rules)
        return rules

    def in_use(self, node: yaml.Node, rules: Rules) -> Rules:
        found = self.mapping(node, "keep.in_use", ("kubernetes", "file"))
        if "kubernetes" in found:
            rules = rules.replace(in_use_kubernetes=self.kube(found["kubernetes"]))
        if "file" in found:
            items = self.items(found["file"])
            files = tuple(self.text(item, "keep.in_use.file") for item in items)
            rules = rules.replace(in_use_files=files)
        return rules

    def kube(self, node: yaml.Node) -> KubeRule | None:
        key = "keep.in_use.kubernetes"
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value).lower()
            if value in {"true", "yes", "on"}:
                return KubeRule()
            if value in {"false", "no", "off"}:
                return None
            raise self.fail(node, key, "expected true, false or a mapping")
        found = self.mapping(node, key, ("contexts", "namespaces"))
        names = {
            name: tuple(self.text(item, f"{key}.{name}") for item in self.items(value))
            for name, value in found.items()
        }
        return KubeRule(names.get("contexts", ()), names.get("namespaces", ()))

    def items(self, node: yaml.Node) -> list[yaml.Node]:
        return list(node.value) if isinstance(node, yaml.SequenceNode) else [node]

    def git(self, node: yaml.Node) -> GitRule | None:
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value).lower()
            if value in {"true", "yes", "on"}:
                return GitRule()
            if value in {"false", "no", "off"}:
                return None
            raise self.fail(node, "keep.git", "expected true, false or a mapping")
        found = self.mapping(node, "keep.git", ("policies", "commit_tags", "commits_per_branch"))
        rule = GitRule()
        if "policies" in found and "commits_per_branch" in found:
            raise self.fail(
                found["commits_per_branch"],
                "keep.git.commits_per_branch",
                "cannot go with keep.git.policies",
                "express it as a policy: imagesPerReference.last",
            )
        if "policies" in found:
            rule = GitRule(self.keep_policies(found["policies"], "keep.git.policies"))
        if "commits_per_branch" in found:
            count = self.count(found["commits_per_branch"], "keep.git.commits_per_branch")
            rule = GitRule(commits_per_branch(count))
        if "commit_tags" in found:
            node = found["commit_tags"]
            tags = self.patterns(node, "keep.git.commit_tags")
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            for item, pattern in zip(items, tags, strict=True):
                if re.compile(pattern).groups < 1:
                    raise self.fail(
                        item,
                        "keep.git.commit_tags",
                        f"{pattern!r} has no group",
                        "put the SHA in a group: .+-([0-9a-f]{7,40})",
                    )
            rule = dataclasses.replace(rule, commit_tags=tags)
        return rule
