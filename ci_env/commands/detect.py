"""`ci-env detect REPO`: which registry kind serves REPO and what the kit will do there."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ci_env import reference
from ci_env.backend_options import add_backend_arguments, backend_options, choose_kind
from ci_env.registries.detect import Detection

NAME = "detect"
HELP = "show the registry kind of a repository and how ci-env works with it"
DESCRIPTION = """\
Detect the registry kind serving REPO — by --repo-container-registry, the host of CI_REGISTRY
(GitLab), the host patterns of every kind, and with --probe by asking an unknown registry — and
print how ci-env authenticates, lists, untags and deletes there, which credentials cleanup
needs, and the known limitations. Reads nothing but (with --probe) the registry's /v2/.

examples:
  ci-env detect ghcr.io/acme/app
  ci-env detect registry.example.com:5050/group/app --probe --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="repository address, e.g. ghcr.io/acme/app")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--probe", action="store_true", help="ask a registry no host pattern knows what it is"
    )
    add_backend_arguments(parser)


def describe(ref: reference.Reference, found: Detection) -> dict[str, Any]:
    text = found.backend.description
    return {
        "repository": ref.name,
        "registry": ref.registry,
        "kind": found.kind,
        "title": text.title,
        "reason": found.reason,
        "auth": text.auth,
        "listing": text.listing,
        "untag": text.untag,
        "delete": text.delete,
        "cleanup_credentials": text.cleanup_credentials,
        "options": [f"--repo-{option.name}" for option in found.backend.native_options],
        "support": {
            "login": text.login,
            "oci_artifacts": text.oci_artifacts,
            "cleanup": text.cleanup,
        },
        "limitations": list(text.limitations),
    }


def render(info: dict[str, Any]) -> str:
    rows = [
        ("repository", info["repository"]),
        ("kind", f"{info['kind']} ({info['title']})"),
        ("why", info["reason"]),
        ("auth", info["auth"]),
        ("listing", info["listing"]),
        ("untag", info["untag"]),
        ("delete", info["delete"]),
        ("cleanup needs", info["cleanup_credentials"]),
    ]
    if info["options"]:
        rows.append(("options", ", ".join(info["options"])))
    lines = [f"{name + ':':<15}{value}" for name, value in rows]
    if info["limitations"]:
        lines.append("limitations:")
        lines += [f"  - {item}" for item in info["limitations"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    ref = reference.parse(args.repo, allow_tag=False)
    options = backend_options(args)
    found = choose_kind(args, ref.registry, options, probe_unknown=args.probe)
    info = describe(ref, found)
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0
