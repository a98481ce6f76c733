# ci-env: per-job Docker credentials, registry login and safe registry cleanup.
#   docker build -t ci-env .
#   docker run --rm -e CIENV_REPO_GITHUB_TOKEN -v "$PWD:/work" -w /work ci-env cleanup --repo ...
# Offline build: put wheels of requirements.lock (+ setuptools, wheel) in ./wheels and pass
#   --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheels
# The base needs python3 >= 3.11 with its venv module (official python images have it).
# One stage and few instructions on purpose: every instruction is a full layer copy on
# storage drivers like vfs, and the sources and pip are removed in the RUN that used them.
ARG BASE_IMAGE=python:3.12-slim-bookworm
FROM ${BASE_IMAGE}
# pip reads these as its own settings; empty means PyPI.
ARG PIP_NO_INDEX=
ARG PIP_FIND_LINKS=
COPY . /src
# A venv keeps ci-env's packages apart from the base's Python (Debian marks its own as
# externally managed). uid 1001 is the GitHub-hosted runner's user: as the Action, the
# container must write the files the runner mounts ($GITHUB_ENV, /github/home) without root.
RUN set -eu; export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1; \
    python3 -m venv /opt/ci-env; \
    /opt/ci-env/bin/pip install --quiet --require-virtualenv -r /src/requirements.lock; \
    /opt/ci-env/bin/pip install --quiet --require-virtualenv --no-deps /src; \
    /opt/ci-env/bin/pip uninstall --quiet --yes pip setuptools; \
    install -d -m 0755 /app; \
    install -m 0755 /src/entrypoint.py /src/post_entrypoint.py /app/; \
    rm -rf /src; \
    useradd --uid 1001 --user-group --create-home --home-dir /home/ci-env \
        --shell /usr/sbin/nologin ci-env
ENV PATH=/opt/ci-env/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 1001:1001
# No CMD: the Action runs the image without arguments and configures it with INPUT_* variables.
ENTRYPOINT ["/app/entrypoint.py"]
