"""`--werf-config werf.yaml`: werf's `cleanup` section as ci-env rules, so werf users switch
without rewriting their policies.

werf.yaml holds several YAML documents (the meta document with `project:` and
`configVersion:`, then images) and may use Go templates; only the meta document is read (its
lines keep their numbers, so errors point into werf.yaml). Keys and meanings follow werf's
`pkg/config/raw_meta_cleanup.go`: `keepPolicies` (none = werf's defaults),
`keepImagesBuiltWithinLastNHours` (default 2; our `keep.newer_than`), the `disable*` switches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

from ci_env.cleanup import rules as policy_file
from ci_env.cleanup.rules import GitRule, Rules
from ci_env.errors import UsageError

_KEYS = (
    "disable",
    "disableKubernetesBasedPolicy",
    "disableGitHistoryBasedPolicy",
    "disableBuiltWithinLastNHoursPolicy",
    "keepPolicies",
    "keepImagesBuiltWithinLastNHours",
)
_TRUE = {"true", "yes", "on"}


@dataclass(frozen=True)
class WerfCleanup:
    git: GitRule | None  # None: disableGitHistoryBasedPolicy
    newer_than: timedelta

    def apply(self, rules: Rules) -> Rules:
        return rules.replace(keep_git=self.git, keep_newer_than=self.newer_than)


def _meta_document(text: str, source: str) -> yaml.Node | None:
    """The first document with `project` or `configVersion`, lines numbered as in the file."""
    lines = text.splitlines()
    separators = [i for i, line in enumerate(lines) if re.match(r"---(\s|$)", line)]
    starts = [0] + [i + 1 for i in separators]
    for begin, end in zip(starts, separators + [len(lines)], strict=True):
        body = "\n" * begin + "\n".join(lines[begin:end])
        if not re.search(r"^(project|configVersion)\s*:", body, re.MULTILINE):
            continue
        if "{{" in body:
            raise UsageError(
                f"{source}: the meta document uses Go templates",
                "render it first (`werf config render > werf-rendered.yaml`) and pass that file",
            )
        try:
            return yaml.compose(body, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise UsageError(f"{source}{line}: not valid YAML", "fix the YAML syntax") from None
    return None


def _flag(reader: policy_file.Reader, found: dict[str, yaml.Node], key: str) -> bool:
    if key not in found:
        return False
    value = reader.scalar(found[key], f"cleanup.{key}").lower()
    if value not in _TRUE | {"false", "no", "off"}:
        raise reader.fail(found[key], f"cleanup.{key}", f"{value!r} is not true or false")
    return value in _TRUE


def parse(text: str, *, source: str = "werf.yaml") -> WerfCleanup:
    root = _meta_document(text, source)
    if root is None:
        raise UsageError(
            f"{source}: no werf meta document (with `project:` and `configVersion:`)",
            "pass the werf.yaml of the project with --werf-config",
        )
    reader = policy_file.Reader(source)
    top = root.value if isinstance(root, yaml.MappingNode) else []
    section = next((value for key, value in top if key.value == "cleanup"), None)
    found: dict[str, yaml.Node] = {}
    if section is not None and section.tag != "tag:yaml.org,2002:null":  # `cleanup:` alone
        found = reader.mapping(section, "cleanup", _KEYS)
    if _flag(reader, found, "disable"):
        raise reader.fail(
            found["disable"],
            "cleanup.disable",
            "werf's cleanup is disabled for this project",
            "nothing would be deleted; drop --werf-config or enable cleanup in werf.yaml",
        )
    git: GitRule | None = GitRule()
    if "keepPolicies" in found:
        git = GitRule(reader.keep_policies(found["keepPolicies"], "cleanup.keepPolicies"))
    if _flag(reader, found, "disableGitHistoryBasedPolicy"):
        git = None
    hours = 2
    if "keepImagesBuiltWithinLastNHours" in found:
        key = "cleanup.keepImagesBuiltWithinLastNHours"
        hours = reader.count(found["keepImagesBuiltWithinLastNHours"], key)
    if _flag(reader, found, "disableBuiltWithinLastNHoursPolicy"):
        hours = 0
    return WerfCleanup(git, timedelta(hours=hours))


def load(path: str) -> WerfCleanup:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"cannot read werf config {path!r} ({error.strerror})", "check --werf-config"
        ) from None
    return parse(text, source=path)
