"""The OpenAPI 3.1 document, generated from the operations and the msgspec Structs of the contract.

OpenAPI 3.1 uses JSON Schema 2020-12, which is what msgspec emits, so the component schemas are
msgspec's own. Every operation lists every status it can return (the automatic 400/401/403/413/
422 included), admin operations require ``bearerAuth``, and ``components.securitySchemes``
declares it. ``tests/conformance`` validates the document and fuzzes the live sidecar with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from .api import Operation

REF = "#/components/schemas/{name}"


def _struct_types(operations: Iterable[Operation]) -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    for op in operations:
        for kind in [op.body, *(r.body for r in op.all_replies())]:
            if kind is not None and kind not in found:
                found.append(kind)
    return found


def openapi_document(operations: list[Operation], *, title: str, version: str, description: str) -> dict[str, Any]:
    """The whole document: info, paths, components (schemas, securitySchemes)."""
    operations = [op for op in operations if op.in_schema]
    types = _struct_types(operations)
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    ref_of = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {},
        }
        if op.description:
            operation["description"] = op.description
        if op.params:
            operation["parameters"] = [p.document() for p in op.params]
        if op.body is not None:
            media: dict[str, Any] = {"schema": ref_of[op.body]}
            if op.example is not None:
                media["example"] = op.example
            operation["requestBody"] = {"required": True, "content": {"application/json": media}}
        if op.admin:
            operation["security"] = [{"bearerAuth": []}]
        for reply in op.all_replies():
            entry: dict[str, Any] = {"description": reply.description}
            schema = ref_of[reply.body] if reply.body is not None and reply.schema is None else reply.schema
            if schema is not None:
                entry["content"] = {reply.media_type: {"schema": schema}}
            if reply.headers:
                entry["headers"] = reply.headers
            operation["responses"][str(reply.status)] = entry
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "FASTERDB_ADMIN_TOKEN of the sidecar (admin endpoints only)",
                }
            },
        },
    }
