"""The example application: the framework guide's endpoints, written with the kit.

    python -m uvicorn main:app --app-dir deploy/examples/app --port 8000

It reads the same FASTERDB_* settings as the sidecar beside it (FASTERDB_PRIMARY_DSN,
FASTERDB_REPLICA_DSNS or their _FILE forms, FASTERDB_APP_NAME, FASTERDB_READ_AFTER_KEY, ...),
creates its table at startup (waiting for the database in the background, never crashing), and
answers:

- ``POST /items`` ``{"name"}`` → 201 ``{"id", "name"}`` with ``Fasterdb-Read-After``;
- ``GET /items/{item_id}`` → 200 ``{"id", "name"}`` or 404, honouring ``Fasterdb-Read-After``;
- ``GET /health/db`` → 200 when the primary answers, else 503 (``GET /health/live``: always 200);

and every read says which server answered in ``Fasterdb-Served-By``.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from FasterAPI import Faster, Request, Response

from fasterdb import Database, DatabaseUnavailable

log = logging.getLogger("example")
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class NewItem(msgspec.Struct, forbid_unknown_fields=True):
    """POST /items."""

    name: str


class Item(msgspec.Struct):
    """An item."""

    id: int
    name: str


def problem(status: int, code: str, message: str) -> Response:
    """The contract's error body."""
    body = msgspec.json.encode({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json")


def reply(body: msgspec.Struct, status: int = 200) -> Response:
    """A JSON answer."""
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def create_app(db: Database | None = None) -> Faster:
    """The application around ``db`` (one from the environment by default)."""
    db = db or Database.from_env()
    app = Faster(title="fasterdb example", openapi_url=None, docs_url=None, redoc_url=None)
    db.install(app)

    async def create_schema() -> None:
        # In the background: the application serves (and /health/db says 503) while the
        # database is down; the table appears once the primary answers.
        delay = 0.2
        while True:
            try:
                async with db.write() as conn:
                    await conn.execute(SCHEMA)
                return
            except DatabaseUnavailable as exc:
                log.info("waiting for the primary to create the table (%s)", exc.category)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    tasks: set[asyncio.Task[None]] = set()

    @app.on_startup
    async def start() -> None:
        task = asyncio.create_task(create_schema())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    @app.post("/items")
    async def create_item(request: Request) -> Response:
        try:
            item = msgspec.json.decode(await request._read_body(), type=NewItem)
        except msgspec.MsgspecError as exc:
            return problem(422, "invalid_item", f"invalid item: {exc}")
        if not 1 <= len(item.name) <= 200:
            return problem(422, "invalid_item", "name must be 1-200 characters")
        async with db.write() as conn:
            row = await conn.fetchrow("INSERT INTO items (name) VALUES ($1) RETURNING id, name", item.name)
        return reply(Item(row["id"], row["name"]), 201)

    @app.get("/items/{item_id}")
    async def get_item(item_id: str) -> Response:
        if not (item_id.isascii() and item_id.isdigit()) or not 0 < int(item_id) < 2**63:
            return problem(404, "item_not_found", "no such item")
        async with db.read() as conn:
            row = await conn.fetchrow("SELECT id, name FROM items WHERE id = $1", int(item_id))
        if row is None:
            return problem(404, "item_not_found", f"item {item_id} does not exist")
        return reply(Item(row["id"], row["name"]))

    @app.get("/health/live")
    async def live() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/health/db")
    async def health() -> Response:
        try:
            async with db.primary.acquire(1.0) as conn:
                await conn.fetchval("SELECT 1")
        except DatabaseUnavailable as exc:
            return problem(503, "database_unavailable", f"the primary is unavailable: {exc.category}")
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


app = create_app()
