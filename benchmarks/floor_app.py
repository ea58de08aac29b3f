"""The floor: the least a Python gateway can do — FastAPI + one shared aiohttp session, bytes in, bytes out.

RouteIQ's passthrough executor is compared against this app in the same run. Anything RouteIQ costs
beyond it is routing, middleware, accounting and headers; the floor itself is the price of
FastAPI/uvicorn and one aiohttp round trip. It checks the bearer key (one string compare) so that
"auth is exercised" costs the floor something too, and it never parses the JSON body.

Run: ``BENCH_UPSTREAM=http://127.0.0.1:9000 uvicorn benchmarks.floor_app:app``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9000").rstrip("/")
MASTER_KEY = os.environ.get("BENCH_MASTER_KEY", "sk-bench-master")
UPSTREAM_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
UNAUTHORIZED = (
    b'{"error":{"message":"invalid api key","type":"authentication_error","param":null,"code":null}}'
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One pooled session for the process: a session per request would dominate the cost."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    app.state.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    yield
    await app.state.session.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/_health/ready")
async def ready() -> dict[str, str]:
    """Readiness probe used by the harness."""
    return {"status": "ok"}


async def _relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Forward stream bytes as they arrive; no SSE parsing, no re-serialisation."""
    try:
        async for data in upstream.content.iter_any():
            yield data
    finally:
        upstream.release()


@app.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    """Forward the body to the upstream and the answer back, streamed if the upstream streams."""
    if request.headers.get("authorization") != f"Bearer {MASTER_KEY}":
        return Response(UNAUTHORIZED, status_code=401, media_type="application/json")
    body = await request.body()
    session: aiohttp.ClientSession = request.app.state.session
    upstream = await session.post(f"{UPSTREAM}/v1/chat/completions", data=body, headers=UPSTREAM_HEADERS)
    content_type = upstream.headers.get("content-type", "application/json")
    if content_type.startswith("text/event-stream"):
        return StreamingResponse(_relay(upstream), status_code=upstream.status, media_type=content_type)
    data = await upstream.read()
    upstream.release()
    return Response(data, status_code=upstream.status, media_type=content_type)
