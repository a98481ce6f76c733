"""The command-line side of in-use protection for `ci-env cleanup`: its options, the
kubeconfig from the environment (both read once, into `Settings`), and the scan that runs
before any repository is planned (or before a saved plan is applied). The scan itself lives
in `ci_env.inuse`.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ci_env import secrets, settings
from ci_env.cleanup import policy
from ci_env.cleanup.plan import Plan
from ci_env.cleanup.rules import KubeRule, Rules
from ci_env.errors import UsageError
from ci_env.inuse import kubeconfig as kubeconfig_shape
from ci_env.inuse import kubernetes as kube
from ci_env.inuse import listfile
from ci_env.inuse.base import Collector, InUse

_BASE64_VARS = ("CIENV_KUBE_CONFIG_BASE64", "WERF_KUBE_CONFIG_BASE64")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    use = parser.add_argument_group(
        "in use (never delete an image a workload uses, by tag or by digest)"
    )
    use.add_argument(
        "--keep-in-use-kubernetes",
        action="store_true",
        help="keep images Kubernetes workloads use (needs `list` on pods, deployments, ...; "
        "a context that cannot be listed stops the run before anything is deleted)",
    )
    use.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="default: base64 in CIENV_/WERF_KUBE_CONFIG_BASE64, else the file in "
        "CIENV_KUBECONFIG, WERF_KUBE_CONFIG, KUBECONFIG, else ~/.kube/config",
    )
    use.add_argument(
        "--kube-context",
        action="append",
        metavar="NAME",
        help="repeatable; default CIENV_SCAN_ONLY_CONTEXT, WERF_SCAN_ONLY_CONTEXT, else every one",
    )
    use.add_argument(
        "--kube-namespace", action="append", metavar="NS", help="repeatable; default all"
    )
    use.add_argument(
        "--keep-in-use-file",
        action="append",
        metavar="FILE",
        help="image references in use, one a line (repeatable)",
    )


@dataclass(frozen=True)
class Settings:
    """The in-use options and the Kubernetes variables of one run, read at its start."""

    files: tuple[str, ...] = ()  # --keep-in-use-file
    kubernetes: bool = False  # --keep-in-use-kubernetes
    contexts: tuple[str, ...] = ()  # --kube-context
    namespaces: tuple[str, ...] = ()  # --kube-namespace
    kubeconfig: str | None = None  # --kubeconfig
    kubeconfig_path: str = ""  # the kubeconfig file(s) to read (see `kubeconfig_path`)
    kubeconfig_variable: tuple[str, str] | None = None  # (name, base64 value) of a variable
    only_context: str | None = None  # werf's one-context variable
    in_cluster: kube.InCluster | None = None


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    return Settings(
        files=tuple(args.keep_in_use_file or ()),
        kubernetes=bool(args.keep_in_use_kubernetes),
        contexts=tuple(args.kube_context or ()),
        namespaces=tuple(args.kube_namespace or ()),
        kubeconfig=args.kubeconfig,
        kubeconfig_path=kubeconfig_path(args, env),
        kubeconfig_variable=kubeconfig_variable(args, env),
        only_context=only_context(env),
        in_cluster=in_cluster(args, env),
    )


def rule_changes(s: Settings, rules: Rules) -> dict[str, object]:
    """The in-use rules: options over the policy file's `keep.in_use`."""
    changes: dict[str, object] = {}
    if s.files:
        changes["in_use_files"] = rules.in_use_files + s.files
    kube_rule = rules.in_use_kubernetes
    if s.kubernetes:
        kube_rule = kube_rule or KubeRule()
    scoped = s.contexts or s.namespaces or s.kubeconfig
    if scoped and kube_rule is None:
        raise UsageError(
            "--kubeconfig, --kube-context and --kube-namespace scope the Kubernetes scan",
            "add --keep-in-use-kubernetes (or keep.in_use.kubernetes in the policy)",
        )
    if kube_rule is not None:
        changes["in_use_kubernetes"] = KubeRule(
            s.contexts or kube_rule.contexts, s.namespaces or kube_rule.namespaces
        )
    return changes


def kubeconfig_path(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """--kubeconfig, then CIENV_KUBECONFIG, werf's WERF_KUBE_CONFIG / WERF_KUBECONFIG, then
    KUBECONFIG (may list several files), then ~/.kube/config."""
    found = args.kubeconfig or _kubeconfig_env(env)
    home = env.get("HOME") or os.path.expanduser("~")  # never raises, unlike Path.home()
    return found or str(Path(home) / ".kube" / "config")


def kubeconfig_variable(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(name, value) of a base64 kubeconfig in `CIENV_KUBE_CONFIG_BASE64` or werf's
    `WERF_KUBE_CONFIG_BASE64`; --kubeconfig wins."""
    name = next((n for n in _BASE64_VARS if env.get(n)), None)
    if args.kubeconfig or name is None:
        return None
    return name, env[name]


def kubeconfig_data(variable: tuple[str, str] | None) -> dict[str, Any] | None:
    """The kubeconfig `kubeconfig_variable` found: read in memory, never written to disk."""
    if variable is None:
        return None
    name, value = variable
    secrets.register(value)
    try:
        data = yaml.safe_load(base64.b64decode(value, validate=True))
    except (ValueError, yaml.YAMLError):  # binascii.Error is a ValueError
        data = None
    if not isinstance(data, dict):
        raise UsageError(f"{name} is not a base64-encoded kubeconfig", "base64 -w0 < kubeconfig")
    kubeconfig_shape.register_secrets(data)
    return data


def _kubeconfig_env(env: Mapping[str, str]) -> str | None:
    return settings.env_first(
        "CIENV_KUBECONFIG", "WERF_KUBE_CONFIG", "WERF_KUBECONFIG", "KUBECONFIG", env=env
    )


def only_context(env: Mapping[str, str]) -> str | None:
    """werf cleanup's one-context variable (not WERF_KUBE_CONTEXT, which deploy jobs set and
    werf cleanup ignores so that it still scans every context)."""
    return settings.cienv("SCAN_ONLY_CONTEXT", env=env)


def _contexts(rule: KubeRule, only: str | None) -> tuple[str, ...]:
    """The rule's contexts, else the one `only_context` names, else every one."""
    return rule.contexts or ((only,) if only else ())


def in_cluster(args: argparse.Namespace, env: Mapping[str, str]) -> kube.InCluster | None:
    """Inside a pod with no kubeconfig given: its service account, as kubectl does."""
    host = settings.env_first("KUBERNETES_SERVICE_HOST", env=env)
    port = settings.env_first("KUBERNETES_SERVICE_PORT", env=env)
    given = args.kubeconfig or _kubeconfig_env(env) or any(env.get(n) for n in _BASE64_VARS)
    if given or not (host and port):
        return None
    return kube.InCluster(host, port)


def read(s: Settings, rules: Rules) -> InUse | None:
    """Every image in use, before any repository is planned: a failure stops the whole run."""
    if rules.in_use_kubernetes is None and not rules.in_use_files:
        return None
    found = Collector()
    for path in rules.in_use_files:
        listfile.collect(path, found)
    if (rule := rules.in_use_kubernetes) is not None:
        contexts, data = _contexts(rule, s.only_context), kubeconfig_data(s.kubeconfig_variable)
        scope = kube.Scope(s.kubeconfig_path, contexts, rule.namespaces, s.in_cluster, data)
        kube.collect(scope, found)
    result = found.result()
    # One line, so a log shows the protection ran and what it saw.
    count = sum(len(u.tags) + len(u.digests) for u in result.repositories.values())
    print(f"in use: {count} references from {', '.join(result.sources)}", file=sys.stderr)
    return result


def recheck_saved(s: Settings, saved: Plan) -> Plan:
    """`--apply-plan` with --keep-in-use-*: the plan is held against what is in use now (the
    window since planning can be hours); the policy file is not read for a saved plan."""
    in_use = read(s, Rules().replace(**rule_changes(s, Rules())))
    if in_use is None and saved.in_use:
        raise UsageError(
            f"the plan was made with in-use protection ({', '.join(saved.in_use)}) and "
            "--apply-plan does not read the policy file",
            "pass the same --keep-in-use-kubernetes / --keep-in-use-file options to "
            "--apply-plan, so what is in use now is checked again before deleting",
        )
    if in_use is None:
        return saved
    repos = (
        policy.recheck_in_use(repo, in_use.of(repo.registry, repo.repository))
        for repo in saved.repositories
    )
    return Plan(saved.created, tuple(repos), saved.in_use)
