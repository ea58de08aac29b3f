"""What kind of path a request is for: the one classification every middleware layer reads.

- ``health`` (``/_health/...``) and ``docs`` (the API documentation): public, never shed, never
  governed. An overloaded or draining worker must still answer its probes.
- ``metrics`` (``/metrics``): operational. Never shed (a scrape must work under load, that is when it
  matters), never judged by policy, metered or shown to plugins; who may read it is Auth's call.
- ``ui`` (``/ui`` and below): the admin UI's static files (routeiq/admin_ui). Public like the docs, so
  the login page loads without a key; every API call the UI then makes is an ``admin`` request.
- ``admin`` (``/admin`` and below): the control plane. Shed like any work, authenticated with admin
  keys, and outside the data plane's policy, quotas and plugins.
- ``data``: everything else, the data plane. Shed, authenticated, judged, metered, plugged.

A data-plane ``POST`` whose path ends like a model call (``/v1/chat/completions``, ``/completions``,
``/embeddings``, Anthropic's ``/v1/messages``, OpenAI's ``/v1/responses``, also without ``/v1``)
carries a body of that kind; the dry run
(``/v1/routeiq/route``) carries a chat body but calls no model, so it is not metered.
"""

from __future__ import annotations

from typing import Literal

PathKind = Literal["health", "docs", "ui", "metrics", "admin", "data"]
BodyKind = Literal["chat", "completions", "embeddings", "messages", "responses"]

HEALTH_PREFIX = "/_health/"
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
METRICS_PATH = "/metrics"
ADMIN_PATH = "/admin"
UI_PATH = "/ui"

MODEL_CALLS: dict[str, BodyKind] = {
    "/chat/completions": "chat",
    "/completions": "completions",
    "/embeddings": "embeddings",
    # Translated to a chat body when read (routeiq.translate), then governed and routed as chat.
    "/messages": "messages",
    "/responses": "responses",
}
DRY_RUNS: dict[str, BodyKind] = {"/routeiq/route": "chat"}
MODEL_CALL_SUFFIXES = tuple(MODEL_CALLS)


def path_kind(path: str) -> PathKind:
    if path.startswith(HEALTH_PREFIX):
        return "health"
    if path in DOCS_PATHS:
        return "docs"
    if path == UI_PATH or path.startswith(UI_PATH + "/"):
        return "ui"
    if path == METRICS_PATH:
        return "metrics"
    if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
        return "admin"
    return "data"


def is_public(path: str) -> bool:
    """Needs no key at all: health probes, the API documentation and the admin UI's files."""
    return path_kind(path) in ("health", "docs", "ui")


def is_admin(path: str) -> bool:
    return path_kind(path) == "admin"


def is_shed(path: str) -> bool:
    """Subject to backpressure and draining: everything but probes, docs, UI files and metrics."""
    return path_kind(path) in ("admin", "data")


def is_data_plane(path: str) -> bool:
    """Governed by policy and plugins (quotas meter only model calls among these)."""
    return path_kind(path) == "data"


def _by_suffix(path: str, kinds: dict[str, BodyKind]) -> BodyKind | None:
    # By suffix, most specific first ("/chat/completions" before "/completions"): a path that is
    # no route gets its 404 from the router, never a pass around governance.
    for suffix, kind in kinds.items():
        if path.endswith(suffix):
            return kind
    return None


def model_call_kind(method: str, path: str) -> BodyKind | None:
    """The body kind of a model call (metered, plugged), or None when the request is not one."""
    return _by_suffix(path, MODEL_CALLS) if method == "POST" else None


def body_kind(method: str, path: str) -> BodyKind | None:
    """The kind of OpenAI body this request carries (model calls and the dry run), or None."""
    if method != "POST":
        return None
    return _by_suffix(path, MODEL_CALLS) or _by_suffix(path, DRY_RUNS)
