"""A fake Azure Container Registry (data plane + AAD token endpoint) for the `acr` backend.

Follows Azure/acr "AAD-OAuth" (https://azure.github.io/acr/AAD-OAuth.html) and the ACR REST
data-plane reference:
- AAD `POST {login}/{tenant}/oauth2/v2.0/token` (client_credentials) -> {access_token}.
- `POST /oauth2/exchange` form {grant_type=access_token, service, tenant, access_token} ->
  {refresh_token}; `POST /oauth2/token` form {grant_type=refresh_token, service, scope,
  refresh_token} -> {access_token}; `GET /oauth2/token?service&scope` with Basic (admin user)
  -> {access_token}.
- Every data-plane call without a token for its scope answers 401 with
  `WWW-Authenticate: Bearer realm="https://<host>/oauth2/token",service="<host>",
  scope="repository:<repo>:<action>"` (metadata_read for tag listing, delete for deletes,
  pull for manifests). An identity without delete rights gets a token that still answers 401.
- `GET /acr/v1/{repo}/_tags?n&orderby&last` -> {registry, imageName, tags: [{name, digest,
  createdTime, lastUpdateTime, signed, changeableAttributes}]}, `Link` rel=next when more
  (keeping the request's orderby). `last` is what the data-plane spec says, lexical: "Result
  set will include values lexically after last", whatever the order; the spec describes no
  time cursor, so none is faked (`orderby=timedesc` with `last` skips and repeats tags here).
- `DELETE /acr/v1/{repo}/_tags/{tag}` -> 202; 405 when the tag is locked (deleteEnabled false).
- `HEAD/GET /v2/{repo}/manifests/{ref}` and `DELETE /v2/{repo}/manifests/{digest}` -> 202.
Every answer is checked against `tests/fakes/schemas/acr/`, written from the data-plane spec
`Azure.ContainerRegistry/stable/2021-07-01/containerregistry.json`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.fakes._router import Answer, Call, FakeApi, bearer

HOST = "myreg.azurecr.io"
LOGIN_URL = "https://login.fake.test"
MEDIA = "application/vnd.oci.image.manifest.v1+json"
S = "acr/"
AAD_SCHEMA = S + "aad_token.json"  # the AAD route is added by tests, on the login host


def config_blob(seed: str, created: str = "2024-01-01T00:00:00Z") -> bytes:
    """An image config whose `created` the registry side reads for images without a time."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Labels": {"seed": seed}},
        },
        sort_keys=True,
    ).encode()


def manifest_body(seed: str, config: bytes | None = None) -> bytes:
    config = config if config is not None else config_blob(seed)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()


@dataclass
class FakeAcr(FakeApi):
    # repo -> tag -> (digest, lastUpdateTime, delete_enabled)
    tags: dict[str, dict[str, tuple[str, str, bool]]] = field(default_factory=dict)
    manifests: dict[str, dict[str, bytes]] = field(default_factory=dict)
    principals: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {
            "sp-app": ("sp-secret", True),
            "reader-app": ("reader-secret", False),
        }
    )
    admins: dict[str, str] = field(default_factory=lambda: {"myreg": "admin-password"})
    issued: dict[str, tuple[str, str]] = field(default_factory=dict)  # access token -> (who, scope)
    blobs: dict[str, bytes] = field(default_factory=dict)  # config blobs by digest
    # Token endpoint in challenges; a loopback fake (CLI tests) points it at itself.
    realm: str = f"https://{HOST}/oauth2/token"

    def __post_init__(self) -> None:
        self.route("POST", r"/oauth2/exchange", self._exchange, S + "oauth2_exchange.json")
        self.route("POST", r"/oauth2/token", self._refresh, S + "oauth2_token.json")
        self.route("GET", r"/oauth2/token", self._basic_token, S + "oauth2_token.json")
        self.route("GET", r"/acr/v1/(?P<repo>.+)/_tags", self._list, S + "tags_list.json")
        tag = r"/acr/v1/(?P<repo>.+)/_tags/(?P<tag>[^/]+)"
        self.route("DELETE", tag, self._untag, S + "tag_delete.json")
        manifest = r"/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)"
        self.route("HEAD", manifest, self._get_manifest, S + "v2.json")
        self.route("GET", manifest, self._get_manifest, S + "v2.json")
        self.route("DELETE", manifest, self._delete_manifest, S + "v2.json")
        self.route("GET", r"/v2/(?P<repo>.+)/blobs/(?P<ref>[^/]+)", self._get_blob, S + "v2.json")

    def add(
        self,
        repo: str,
        tag: str,
        seed: str,
        when: str,
        delete_enabled: bool = True,
        created: str = "2024-01-01T00:00:00Z",
    ) -> str:
        config = config_blob(seed, created)
        self.blobs["sha256:" + hashlib.sha256(config).hexdigest()] = config
        body = manifest_body(seed, config)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.manifests.setdefault(repo, {})[digest] = body
        self.tags.setdefault(repo, {})[tag] = (digest, when, delete_enabled)
        return digest

    # --- tokens ----------------------------------------------------------------------------

    def aad(self, call: Call) -> Answer:
        form = call.form()
        known = self.principals.get(form.get("client_id", ""))
        if (
            not known
            or known[0] != form.get("client_secret")
            or form.get("grant_type") != "client_credentials"
        ):
            return 401, {}, {"error": "invalid_client", "error_description": "AADSTS7000215"}
        token = f"aad-{form['client_id']}"
        return 200, {}, {"token_type": "Bearer", "expires_in": 3600, "access_token": token}

    def _exchange(self, call: Call) -> Answer:
        form = call.form()
        token = form.get("access_token", "")
        if form.get("grant_type") != "access_token" or not token.startswith("aad-"):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED", "message": "bad AAD token"}]}
        return 200, {}, {"refresh_token": f"acr-refresh-{token[4:]}"}

    def _issue(self, who: str, scope: str) -> Answer:
        token = f"acr-access-{len(self.issued)}"
        self.issued[token] = (who, scope)
        return 200, {}, {"access_token": token}

    def _refresh(self, call: Call) -> Answer:
        form = call.form()
        refresh = form.get("refresh_token", "")
        if form.get("grant_type") != "refresh_token" or not refresh.startswith("acr-refresh-"):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED", "message": "bad refresh token"}]}
        return self._issue(refresh[len("acr-refresh-") :], form.get("scope", ""))

    def _basic_token(self, call: Call) -> Answer:
        header = call.headers.get("Authorization", "")
        user, _, password = (
            base64.b64decode(header[6:]).decode().partition(":")
            if header.startswith("Basic ")
            else ("", "", "")
        )
        if self.admins.get(user) != password or not user:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        return self._issue(f"admin:{user}", call.query.get("scope", ""))

    def _allowed(self, call: Call, repo: str, action: str) -> Answer | None:
        scope = f"repository:{repo}:{action}"
        token = bearer(call)
        who, granted = self.issued.get(token or "", ("", ""))
        may_delete = who.startswith("admin:") or self.principals.get(who, ("", False))[1]
        if token in self.issued and granted == scope and (action != "delete" or may_delete):
            return None
        challenge = f'Bearer realm="{self.realm}",service="{HOST}",scope="{scope}"'
        return (
            401,
            {"WWW-Authenticate": challenge},
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
        )

    # --- data plane ------------------------------------------------------------------------

    def _list(self, call: Call) -> Answer:
        assert call.match is not None
        repo = call.match["repo"]
        refused = self._allowed(call, repo, "metadata_read")
        if refused:
            return refused
        if repo not in self.tags:
            return (
                404,
                {},
                {"errors": [{"code": "NAME_UNKNOWN", "message": "repository not found"}]},
            )
        size = int(call.query.get("n", "100"))
        order = call.query.get("orderby", "")
        ordered = sorted(self.tags[repo].items())  # lexical unless orderby asks otherwise
        if order in ("timedesc", "timeasc"):
            ordered.sort(key=lambda item: item[1][1], reverse=order == "timedesc")
        last = call.query.get("last")
        if last:
            ordered = [item for item in ordered if item[0] > last]  # the spec: lexically after
        chunk = ordered[:size]
        headers = {}
        if len(ordered) > size:
            query = f"last={chunk[-1][0]}&n={size}" + (f"&orderby={order}" if order else "")
            headers["Link"] = f'</acr/v1/{repo}/_tags?{query}>; rel="next"'
        items = [
            {
                "name": name,
                "digest": digest,
                "createdTime": when,
                "lastUpdateTime": when,
                "signed": False,
                "changeableAttributes": {
                    "deleteEnabled": enabled,
                    "writeEnabled": True,
                    "readEnabled": True,
                    "listEnabled": True,
                },
            }
            for name, (digest, when, enabled) in chunk
        ]
        return 200, headers, {"registry": HOST, "imageName": repo, "tags": items}

    def _untag(self, call: Call) -> Answer:
        assert call.match is not None
        repo, tag = call.match["repo"], unquote(call.match["tag"])
        refused = self._allowed(call, repo, "delete")
        if refused:
            return refused
        entry = self.tags.get(repo, {}).get(tag)
        if entry is None:
            return 404, {}, {"errors": [{"code": "TAG_UNKNOWN", "message": "tag not found"}]}
        if not entry[2]:
            return (
                405,
                {},
                {
                    "errors": [
                        {"code": "UNSUPPORTED", "message": "operation is disallowed on this tag"}
                    ]
                },
            )
        del self.tags[repo][tag]
        return 202, {}, None

    def _digest_of(self, repo: str, ref: str) -> str | None:
        if ref.startswith("sha256:"):
            return ref if ref in self.manifests.get(repo, {}) else None
        entry = self.tags.get(repo, {}).get(ref)
        return entry[0] if entry else None

    def _get_manifest(self, call: Call) -> Answer:
        assert call.match is not None
        repo = call.match["repo"]
        refused = self._allowed(call, repo, "pull")
        if refused:
            return refused
        digest = self._digest_of(repo, unquote(call.match["ref"]))
        if digest is None:
            return (
                404,
                {},
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
            )
        headers = {"Docker-Content-Digest": digest, "Content-Type": MEDIA}
        return 200, headers, self.manifests[repo][digest].decode() if call.method == "GET" else None

    def _get_blob(self, call: Call) -> Answer:
        assert call.match is not None
        refused = self._allowed(call, call.match["repo"], "pull")
        if refused:
            return refused
        blob = self.blobs.get(unquote(call.match["ref"]))
        if blob is None:
            return 404, {}, {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}
        return 200, {"Content-Type": "application/octet-stream"}, blob.decode()

    def _delete_manifest(self, call: Call) -> Answer:
        assert call.match is not None
        repo = call.match["repo"]
        refused = self._allowed(call, repo, "delete")
        if refused:
            return refused
        digest = unquote(call.match["ref"])
        if digest not in self.manifests.get(repo, {}):
            return (
                404,
                {},
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
            )
        del self.manifests[repo][digest]
        self.tags[repo] = {
            name: entry for name, entry in self.tags[repo].items() if entry[0] != digest
        }
        return 202, {}, None
