"""Checks every admin request passes before its route runs.

PostgreSQL cannot store U+0000 in text, and rejects any query that carries one. An admin filter, key
id or body field with a NUL in it would fail in the store and come back as ``503 store_unavailable``
(or refuse the action as unauditable), blaming a healthy database for a bad request. Refused here
with ``400`` instead, on SQLite too, so that both stores behave alike.
"""

from __future__ import annotations

from fastapi import Request

from routeiq.api.errors import bad_request

NUL = "\x00"
JSON_NUL = b"\\u0000"  # how a JSON body spells it (a raw NUL byte is not valid JSON at all)


async def no_nul_characters(request: Request) -> None:
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if NUL in str(value):
            raise bad_request(f"{name}: must not contain a NUL character (U+0000)", param=name)
    if request.method in ("POST", "PUT", "PATCH") and JSON_NUL in await request.body():
        raise bad_request("the request body must not contain a NUL character (\\u0000)", code="invalid_json")
