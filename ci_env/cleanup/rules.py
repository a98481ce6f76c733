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
      git: {commits_per_branch: 10}   # or `git: true`
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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import re2
import yaml

from ci_env import durations
from ci_env.errors import UsageError

DEFAULT_NEWER_THAN = timedelta(hours=2)
DEFAULT_COMMITS_PER_BRANCH = 10


class Untagged(enum.StrEnum):
    KEEP = "keep"
    DELETE = "delete"


@dataclass(frozen=True)
class GitRule:
    commits_per_branch: int = DEFAULT_COMMITS_PER_BRANCH


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


class TagPattern(Protocol):
    """A compiled tag pattern (an RE2 regexp): matched in time linear in the tag's length."""

    @property
    def pattern(self) -> str: ...

    def fullmatch(self, text: str) -> object | None: ...


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own parse errors to stderr
    return options


def compile_pattern(pattern: str, where: str) -> TagPattern:
    """Tag patterns run on RE2, not `re`: a pattern like `(a+)+b` backtracks exponentially in
    `re` and would hang the run on a long tag. RE2 refuses what it cannot match in linear time
    (backreferences, lookaround): exit 2 with the reason."""
    try:
        compiled: TagPattern = re2.compile(pattern, options=_re2_options())
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise UsageError(
            f"{where}: {pattern!r} is not a valid regular expression ({reason})",
            "use RE2 syntax (as Python `re`, without backreferences or lookaround); "
            "the whole tag must match",
        ) from None
    return compiled


def read_text(path: str, where: str, hint: str) -> str:
    """A UTF-8 input file's text; a missing, unreadable or non-UTF-8 file is a UsageError."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{where}: cannot read {path!r} ({error.strerror})", hint) from None
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{where}: {path!r} is not UTF-8 text (byte {error.start})",
            "save the file as UTF-8",
        ) from None


def load_keep_list(path: str, *, where: str = "--keep-list") -> frozenset[str]:
    """Tags from a file, one a line; blank lines and `#` comments ignored."""
    text = read_text(path, where, "check the path")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def load(path: str) -> Rules:
    """Read and validate a policy file."""
    return parse(read_text(path, "policy file", "check --policy"), source=path)


def parse(text: str, *, source: str = "policy") -> Rules:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{source}{line}: not valid YAML", "fix the YAML syntax") from None
    except RecursionError:  # PyYAML composes nodes recursively
        raise UsageError(
            f"{source}: nested too deeply to be a policy", "a policy file is a few levels deep"
        ) from None
    return _Reader(source).rules(root)


class _Reader:
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
        if not (text.isascii() and text.isdigit()):  # "²".isdigit() is true, int("²") fails
            raise self.fail(node, key, f"expected a whole number >= 0, got {text!r}")
        return int(text)

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
        found = self.mapping(node, "keep.git", ("commits_per_branch",))
        if "commits_per_branch" in found:
            count = self.count(found["commits_per_branch"], "keep.git.commits_per_branch")
            return GitRule(commits_per_branch=count)
        return GitRule()
