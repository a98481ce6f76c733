#!/usr/bin/env bash
# `make demo`: a throwaway local registry, a few images, then ci-env env and a cleanup.
# Everything lives in a temporary directory; the registry is stopped even when a step fails.
set -euo pipefail

PY=${PY:-.venv/bin/python}
CIENV=("$PY" -m ci_env)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ci-env-demo.XXXXXX")
REGISTRY_PID=""

stop() {
  if [ -n "$REGISTRY_PID" ]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  if [ -n "${DOCKER_CONFIG:-}" ] && [ -f "$DOCKER_CONFIG/.ci-env-job" ]; then "${CIENV[@]}" logout || true; fi
  rm -rf "$WORK"
}
trap stop EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting Debian's docker-registry on 127.0.0.1 (htpasswd auth, delete enabled)"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST="127.0.0.1:$PORT"
USER_NAME=demo
# A random throwaway password, only ever passed through the environment and files.
CIENV_REGISTRY_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(16))')
export CIENV_REGISTRY_PASSWORD
printf '%s\n' "$CIENV_REGISTRY_PASSWORD" | htpasswd -iBc "$WORK/htpasswd" "$USER_NAME" 2>/dev/null
cat > "$WORK/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $WORK/storage}
  delete: {enabled: true}
http: {addr: "$HOST", secret: demo-only}
auth:
  htpasswd: {realm: ci-env-demo, path: $WORK/htpasswd}
YAML
# `timeout` bounds the registry's life even if this script is killed.
timeout 900 docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
"$PY" - "$HOST" <<'PYEOF'
import sys, time, urllib.error, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=1)
    except urllib.error.HTTPError:
        break  # 401: up and asking for credentials
    except OSError:
        time.sleep(0.1)
    else:
        break
PYEOF
echo "registry at http://$HOST (user $USER_NAME)"

step "ci-env env: a per-job Docker config, logged in from CIENV_REGISTRY* (verified first)"
export CIENV_REGISTRY="$HOST" CIENV_REGISTRY_USERNAME="$USER_NAME" CIENV_TMP_DIR="$WORK"
"${CIENV[@]}" env | tee "$WORK/env.sh"
# shellcheck disable=SC1091
. "$WORK/env.sh"
echo "DOCKER_CONFIG is now $DOCKER_CONFIG"

step "seeding $HOST/demo/app with skopeo (credentials from DOCKER_CONFIG only)"
"$PY" scripts/demo_image.py "$WORK/layouts" v1.0.0 v1.1.0 v2.0.0 main-1 main-2 feature-x
for tag in v1.0.0 v1.1.0 v2.0.0 main-1 main-2 feature-x; do
  skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layouts/$tag" "docker://$HOST/demo/app:$tag"
done
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
  "docker://$HOST/demo/app:v2.0.0" "docker://$HOST/demo/app:latest"
# `stable` shares v1.1.0's digest: cleanup must untag v1.1.0, never delete that digest.
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
  "docker://$HOST/demo/app:v1.1.0" "docker://$HOST/demo/app:stable"
echo "tags: $(skopeo list-tags --tls-verify=false "docker://$HOST/demo/app" | "$PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["Tags"])))')"

if "${CIENV[@]}" cleanup --help >/dev/null 2>&1; then
  POLICY=(--repo "$HOST/demo/app" --keep-latest 2 --keep-tag 'v2\..*|stable' --keep-newer-than 0s)
  step "ci-env cleanup --dry-run ${POLICY[*]}"
  "${CIENV[@]}" cleanup "${POLICY[@]}" --dry-run
  step "ci-env cleanup ${POLICY[*]}"
  "${CIENV[@]}" cleanup "${POLICY[@]}"
  echo "tags left: $(skopeo list-tags --tls-verify=false "docker://$HOST/demo/app" | "$PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["Tags"])))')"
else
  echo "(ci-env cleanup is not available in this build; skipping the cleanup demo)"
fi

step "ci-env logout: removing the per-job Docker config"
"${CIENV[@]}" logout
unset DOCKER_CONFIG
echo "done; the registry is stopped and $WORK removed on exit"
