"""The CI provider interface (GitHub Actions, GitLab CI, generic).

A provider reads its CI's environment (providers are one of the three places allowed to read
it), says which registries to log in to, which variables a job should get, and how to talk to
the CI's log: masking secrets, annotations, collapsible sections and a job summary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, TextIO


@dataclass(frozen=True)
class LoginSource:
    """Credentials for one registry found in CI variables. `variable` names where the
    password came from, so an error can say which variable holds a rejected credential."""

    registry: str
    username: str
    password: str
    variable: str


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    comment: str = ""  # section header, e.g. "DOCKER CONFIG"
    always: bool = False  # override even when already set (the Docker config ones)
    secret: bool = False


class Provider(ABC):
    name: ClassVar[str]
    # The variables a login comes from, for the "not logging in" message when they are absent.
    login_variables: ClassVar[str] = ""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    @classmethod
    @abstractmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        """True when running inside this CI."""

    @abstractmethod
    def login_sources(self) -> list[LoginSource]:
        """Registries to log in to from this CI's variables; [] when they are absent."""

    @abstractmethod
    def variables(self, docker_config: str) -> list[Variable]:
        """Variables for the job (DOCKER_CONFIG, CIENV_REPO, ...)."""

    def mask(self, secret: str, out: TextIO) -> None:  # noqa: B027 - optional hook
        """Ask the CI to mask `secret` in its log (no-op where the CI has no such command)."""

    def error(self, message: str, out: TextIO) -> None:
        """Report a fatal error the way the CI highlights it."""
        print(message, file=out)

    def section_start(self, name: str, title: str, out: TextIO) -> None:  # noqa: B027 - optional hook
        """Open a collapsible log section (no-op by default)."""

    def section_end(self, name: str, out: TextIO) -> None:  # noqa: B027 - optional hook
        """Close a collapsible log section."""

    def summary(self, markdown: str) -> None:  # noqa: B027 - optional hook
        """Append Markdown to the job summary where the CI has one."""
