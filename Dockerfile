# ci-env: per-job Docker credentials, registry login and safe registry cleanup.
#   docker build -t ci-env .
#   docker run --rm -e CIENV_REPO_GITHUB_TOKEN -v "$PWD:/work" -w /work ci-env cleanup --repo ...
# Releases publish it as ghcr.io/ci-env/ci-env:X.Y.Z (linux/amd64, linux/arm64), which the
# released action.yml runs by digest.
# Offline build: put wheels of requirements.lock in ./wheels and pass
#   --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheels
# The base needs python3 >= 3.11 with its venv module (official python images have it); it is
# pinned by digest (the multi-arch index; dependabot moves it), so a tag moved upstream
# changes nothing here.
# One stage and few instructions on purpose: every instruction is a full layer copy on
# storage drivers like vfs, and the sources and pip are removed in the RUN that used them.
ARG BASE_IMAGE=python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254
FROM ${BASE_IMAGE}
# pip reads these as its own settings; empty means PyPI.
ARG PIP_NO_INDEX=
ARG PIP_FIND_LINKS=
COPY . /src
# A venv keeps ci-env's packages apart from the base's Python (Debian marks its own as
# externally managed). Every package is pinned and hashed in requirements.lock, and nothing
# else is resolved: --require-hashes --no-deps; ci-env itself is built with the lock's
# setuptools (no build isolation, which would fetch an unpinned one).
# git: keep.git reads the job's clone (and deepens a shallow one).
RUN set -eu; export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1; \
    if ! command -v git >/dev/null; then \
        apt-get update -qq; apt-get install -y -qq --no-install-recommends git; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -m venv /opt/ci-env; \
    /opt/ci-env/bin/pip install --quiet --require-virtualenv --require-hashes --no-deps \
        -r /src/requirements.lock; \
    /opt/ci-env/bin/pip install --quiet --require-virtualenv --no-deps --no-build-isolation /src; \
    /opt/ci-env/bin/pip uninstall --quiet --yes pip setuptools; \
    install -d -m 0755 /app; \
    install -m 0755 /src/entrypoint.py /src/post_entrypoint.py /app/; \
    rm -rf /src
ENV PATH=/opt/ci-env/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# The runner mounts the workspace owned by its own user while the action runs as root; git
# refuses such a clone ("dubious ownership") unless it is named safe.
ENV GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0=*
# No USER: GitHub runs Docker actions as the image's default user and documents that it must
# be root ("Docker actions must be run by the default Docker user (root)"); the runner mounts
# $GITHUB_ENV, /github/home and the workspace owned by its own user, whatever uid that is.
# entrypoint.py gives what it creates there to the owner of the mount. For `docker run`
# elsewhere, pass `--user "$(id -u):$(id -g)"` to get files owned by you.
# No CMD: the Action runs the image without arguments and configures it with INPUT_* variables.
ENTRYPOINT ["/app/entrypoint.py"]
