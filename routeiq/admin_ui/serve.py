"""Serve the admin UI's built files at ``/ui``.

The files are the Vite build of ``ui/``, committed under ``static/`` (package data), so an install
from a wheel or the Docker image serves the UI without node. Vite names every asset after its
content hash, so those are cached for a year; ``index.html`` names the current assets and is
revalidated on every load. Any other path under ``/ui`` is a page of the single-page app and gets
``index.html`` (the app's router reads the path). The mount is public (routeiq.middleware.paths):
the login page must load without a key, and holds no data; every call it makes is to ``/admin``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from routeiq.middleware.paths import UI_PATH

logger = logging.getLogger("routeiq")

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = "assets/"  # Vite's output folder for hashed files
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class AdminUIFiles(StaticFiles):
    """StaticFiles with the caching rules above and the single-page-app fallback."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path in ("", "."):
            path = "index.html"
        try:
            response = await super().get_response(path, scope)
        except HTTPException as missing:
            # A missing hashed asset is a real 404 (a stale page asking for an old build); anything
            # else is a route of the app.
            if missing.status_code != 404 or path.startswith(ASSETS_DIR):
                raise
            path = "index.html"
            response = await super().get_response(path, scope)
        hashed = path.startswith(ASSETS_DIR) and response.status_code in (200, 304)
        response.headers["cache-control"] = IMMUTABLE if hashed else REVALIDATE
        return response


def mount_admin_ui(app: FastAPI) -> None:
    """Mount the UI on ``app`` at ``/ui``. The built files ship with the package; a checkout whose
    ``static/`` was removed serves no UI and says so, instead of failing to start."""
    if not (STATIC_DIR / "index.html").is_file():
        logger.warning("admin UI not built (no %s/index.html): run `make ui`; /ui not served", STATIC_DIR)
        return
    app.mount(UI_PATH, AdminUIFiles(directory=STATIC_DIR), name="admin-ui")
