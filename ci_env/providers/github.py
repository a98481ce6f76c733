"""GitHub Actions: ghcr.io login from `GITHUB_ACTOR`/`GITHUB_TOKEN`, workflow commands.

Workflow commands (`::add-mask::`, `::error::`, `::group::`) go to stderr: the runner reads
commands from both streams, and stdout may be a script the job sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, TextIO

from ci_env import private_files, secrets, settings
from ci_env.providers.base import LoginSource, Provider, Variable
from ci_env.providers.generic import REPO_SECTION, cienv_login_source, docker_variables

GHCR = "ghcr.io"
LEGACY = "docker.pkg.github.com"


def escape_data(text: str) -> str:
    """Workflow-command data escaping (`%`, CR, LF), as the runner's toolkit does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class GitHubProvider(Provider):
    name: ClassVar[str] = "github"
    login_variables: ClassVar[str] = "GITHUB_ACTOR, GITHUB_TOKEN"

    @classmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        return env.get("GITHUB_ACTIONS") == "true"

    def _registry(self) -> str:
        # werf's rule: the old GitHub Packages registry when the repo already points there.
        repo = settings.cienv("REPO", env=self.env) or ""
        return LEGACY if repo.startswith(LEGACY + "/") else GHCR

    def login_sources(self) -> list[LoginSource]:
        sources = []
        token = self.env.get("GITHUB_TOKEN", "")
        secrets.register(token)
        if token:
            actor = self.env.get("GITHUB_ACTOR") or "github-actions"
            sources.append(LoginSource(self._registry(), actor, token, "GITHUB_TOKEN"))
        generic = cienv_login_source(self.env)
        return sources + ([generic] if generic else [])

    def variables(self, docker_config: str) -> list[Variable]:
        variables = docker_variables(docker_config)
        repository = self.env.get("GITHUB_REPOSITORY")
        if repository:
            # Image names must be lowercase; GitHub owner names often are not.
            repo = f"{self._registry()}/{repository.lower()}"
            variables.append(Variable("CIENV_REPO", repo, REPO_SECTION))
        return variables

    def mask(self, secret: str, out: TextIO) -> None:
        # The runner masks per line: a multi-line secret is masked line by line.
        for line in secret.splitlines():
            if line.strip():
                print(f"::add-mask::{line}", file=out)

    def error(self, message: str, out: TextIO) -> None:
        print(f"::error::{escape_data(message)}", file=out)

    def section_start(self, name: str, title: str, out: TextIO) -> None:
        print(f"::group::{escape_data(title)}", file=out)

    def section_end(self, name: str, out: TextIO) -> None:
        print("::endgroup::", file=out)

    def summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            private_files.write_text(path, markdown.rstrip("\n") + "\n", append=True)


PROVIDER = GitHubProvider
