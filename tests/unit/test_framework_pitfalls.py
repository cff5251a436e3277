"""Pins FasterAPI 0.2.14's documented differences from FastAPI (see shared/FASTERAPI-NOTES.md).

If an upgrade changes one of these, this test fails and the workaround in our code can be revisited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from FasterAPI import Depends, Faster, Query
from FasterAPI.testclient import TestClient


def test_yield_dependency_is_not_run() -> None:
    events: list[str] = []

    async def get_resource() -> AsyncIterator[str]:
        events.append("enter")
        yield "resource"
        events.append("exit")

    app = Faster()

    @app.get("/r")
    async def handler(res: object = Depends(get_resource)) -> dict[str, str]:
        return {"type": type(res).__name__}

    with TestClient(app) as client:
        body = client.get("/r").json()
    assert body == {"type": "async_generator"}  # the generator object, not the resource
    assert events == []  # neither setup nor teardown ran


def test_query_parameters_are_not_converted() -> None:
    app = Faster()

    @app.get("/q")
    async def handler(n: int = 5, m: int = Query(3)) -> dict[str, object]:
        return {"n": n, "m": m}

    with TestClient(app) as client:
        assert client.get("/q?n=7&m=9").json() == {"n": 5, "m": "9"}


def test_unhandled_exception_without_handler_is_a_bare_500() -> None:
    app = Faster()

    @app.get("/boom")
    async def handler() -> None:
        raise RuntimeError("boom")

    with TestClient(app) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
