"""The LiteLLM reference: a minimal FastAPI app calling ``litellm.Router.acompletion`` on the mock.

RouteIQ's LiteLLM executor (``ROUTEIQ_PASSTHROUGH=off``) is compared against this app: whatever it
costs beyond it is RouteIQ's own work on top of LiteLLM. Settings mirror the RouteIQ bench config
(one ``openai/`` deployment, ``num_retries=0``) and nothing is tuned, so the ratio is fair.

Run: ``BENCH_UPSTREAM=http://127.0.0.1:9000 uvicorn benchmarks.bare_router_app:app``.
"""

from __future__ import annotations

import os

# Must precede the litellm import: otherwise importing litellm tries to fetch the cost map
# from the internet (and waits for retries on a machine without one).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from litellm import Router

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9000").rstrip("/")
MASTER_KEY = os.environ.get("BENCH_MASTER_KEY", "sk-bench-master")
UNAUTHORIZED = (
    b'{"error":{"message":"invalid api key","type":"authentication_error","param":null,"code":null}}'
)


def model_list() -> list[dict[str, Any]]:
    """The same single deployment RouteIQ's bench config declares."""
    return [
        {
            "model_name": "bench",
            "litellm_params": {
                "model": "openai/bench-model",
                "api_base": f"{UPSTREAM}/v1",
                "api_key": "sk-bench",
            },
        }
    ]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the Router once per process, as a gateway would."""
    app.state.router = Router(model_list=model_list(), num_retries=0)
    yield


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/_health/ready")
async def ready() -> dict[str, str]:
    """Readiness probe used by the harness."""
    return {"status": "ok"}


async def _sse(stream: Any) -> AsyncIterator[bytes]:
    """Re-serialise LiteLLM's chunk objects as SSE: the per-chunk cost a LiteLLM gateway pays."""
    async for chunk in stream:
        yield b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


@app.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    """Parse, call the Router, serialise: the plain LiteLLM-library path."""
    if request.headers.get("authorization") != f"Bearer {MASTER_KEY}":
        return Response(UNAUTHORIZED, status_code=401, media_type="application/json")
    payload = orjson.loads(await request.body())
    router: Router = request.app.state.router
    response = await router.acompletion(**payload)
    if payload.get("stream"):
        return StreamingResponse(_sse(response), media_type="text/event-stream")
    return Response(orjson.dumps(response.model_dump()), media_type="application/json")
