"""GitLab CI: login to `CI_REGISTRY` and the dependency proxy, collapsible log sections."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import ClassVar, TextIO

from ci_env import secrets, settings
from ci_env.providers.base import LoginSource, Provider, Variable
from ci_env.providers.generic import REPO_SECTION, cienv_login_source, docker_variables

DEPLOY_SECTION = "DEPLOY"
_CLEAR = "\x1b[0K"  # GitLab's section markers are wrapped in "erase line" escapes
_SECTION_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class GitLabProvider(Provider):
    name: ClassVar[str] = "gitlab"
    login_variables: ClassVar[str] = (
        "CI_REGISTRY with CI_REGISTRY_USER/CI_REGISTRY_PASSWORD or CI_JOB_TOKEN, "
        "CI_DEPENDENCY_PROXY_SERVER with CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD"
    )

    @classmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        return env.get("GITLAB_CI") == "true"

    def _registry_source(self) -> LoginSource | None:
        registry = self.env.get("CI_REGISTRY")
        user, password = self.env.get("CI_REGISTRY_USER"), self.env.get("CI_REGISTRY_PASSWORD")
        job_token = self.env.get("CI_JOB_TOKEN")
        secrets.register(password)
        secrets.register(job_token)
        if not registry:
            return None
        if user and password:
            return LoginSource(registry, user, password, "CI_REGISTRY_PASSWORD")
        if job_token:
            return LoginSource(registry, "gitlab-ci-token", job_token, "CI_JOB_TOKEN")
        return None

    def _proxy_source(self) -> LoginSource | None:
        server = self.env.get("CI_DEPENDENCY_PROXY_SERVER")
        user = self.env.get("CI_DEPENDENCY_PROXY_USER")
        password = self.env.get("CI_DEPENDENCY_PROXY_PASSWORD")
        secrets.register(password)
        if server and user and password:
            return LoginSource(server, user, password, "CI_DEPENDENCY_PROXY_PASSWORD")
        return None

    def login_sources(self) -> list[LoginSource]:
        found = [self._registry_source(), self._proxy_source(), cienv_login_source(self.env)]
        return [source for source in found if source]

    def _repo(self) -> str | None:
        return settings.cienv("REPO", env=self.env) or self.env.get("CI_REGISTRY_IMAGE")

    def variables(self, docker_config: str) -> list[Variable]:
        variables = docker_variables(docker_config)
        image = self.env.get("CI_REGISTRY_IMAGE")
        if image:
            variables.append(Variable("CIENV_REPO", image, REPO_SECTION))
        registry = (self.env.get("CI_REGISTRY") or "").lower()
        repo = (self._repo() or "").lower()
        if registry and repo.startswith(registry + "/"):
            # GitLab's registry looks like any Docker registry by host; cleanup must know.
            variables.append(Variable("CIENV_REPO_CONTAINER_REGISTRY", "gitlab", REPO_SECTION))
        slug = self.env.get("CI_ENVIRONMENT_SLUG")
        if slug:
            variables.append(Variable("CIENV_ENV", slug, DEPLOY_SECTION))
        return variables

    def error(self, message: str, out: TextIO) -> None:
        print(f"\x1b[31;1m{message}\x1b[0m", file=out)

    def section_start(self, name: str, title: str, out: TextIO) -> None:
        name = _SECTION_NAME.sub("_", name)
        stamp = int(time.time())
        print(f"{_CLEAR}section_start:{stamp}:{name}[collapsed=true]\r{_CLEAR}{title}", file=out)

    def section_end(self, name: str, out: TextIO) -> None:
        name = _SECTION_NAME.sub("_", name)
        print(f"{_CLEAR}section_end:{int(time.time())}:{name}\r{_CLEAR}", file=out)


PROVIDER = GitLabProvider
