"""Router: /jobs — submit, list, inspect and cancel transfer-batch jobs (bearer token required)."""

from __future__ import annotations

from typing import Any

from FasterAPI import FasterRouter, JSONResponse, Query, Request

from service.auth import ADMIN_SECURITY, AdminAuth
from service.errors import Unprocessable, error_responses, json_content
from service.http import ID_SCHEMA, MONEY_SCHEMA, json_response, parse_body, path_int, query_doc
from service.job_runner import MAX_BATCH_SIZE, MAX_ITEMS, JobRunner, validate_job
from service.schemas import JobBody

BODY_LIMIT = 32 * 1024 * 1024

_JOB: dict[str, Any] = {
    "type": "object",
    "required": [
        "job_id",
        "kind",
        "status",
        "total",
        "applied",
        "duplicates",
        "failed",
        "throttle_reason",
        "created_at",
        "updated_at",
        "errors",
    ],
    "properties": {
        "job_id": {"type": "integer"},
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "throttled", "succeeded", "failed", "cancelled"]},
        "total": {"type": "integer"},
        "applied": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "failed": {"type": "integer"},
        "batch_size": {"type": "integer"},
        "dry_run": {"type": "boolean"},
        "throttle_reason": {"type": "string", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_JOB_IN: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "items"],
    "properties": {
        "kind": {"type": "string", "enum": ["transfer-batch"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "required": ["from_account", "to_account", "amount"],
                "properties": {
                    "from_account": ID_SCHEMA,
                    "to_account": ID_SCHEMA,
                    "amount": MONEY_SCHEMA,
                    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            },
        },
        "batch_size": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH_SIZE, "default": 100},
        "dry_run": {"type": "boolean", "default": False},
    },
}


def jobs_router(auth: AdminAuth, runner: JobRunner) -> FasterRouter:
    """POST/GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel (bearer token required)."""
    router = FasterRouter(tags=["jobs"])
    job_id_param = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}

    @router.post(
        "/jobs",
        summary="Submit a transfer-batch job (202; a worker runs it in batches)",
        status_code=202,
        openapi_extra={
            "security": ADMIN_SECURITY,
            "requestBody": {"required": True, "content": json_content(_JOB_IN)},
            "responses": {
                "202": {"description": "queued", "content": json_content(_JOB)},
                **error_responses(401, 403, 413, 422, 503),
            },
        },
    )
    async def submit_job(request: Request) -> JSONResponse:
        """Validate every item, persist the job, answer 202 with its id."""
        auth.check(request)
        job = await parse_body(request, JobBody, validate_job, code="invalid_job", limit=BODY_LIMIT)
        return json_response(await runner.submit(job), 202)

    @router.get(
        "/jobs",
        summary="Recent jobs, newest first",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [query_doc("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 50")],
            "responses": {
                "200": {
                    "description": "jobs",
                    "content": json_content(
                        {"type": "object", "properties": {"jobs": {"type": "array", "items": _JOB}}}
                    ),
                },
                **error_responses(400, 401, 403, 503),
            },
        },
    )
    async def list_jobs(request: Request, limit: str | None = Query(None)) -> JSONResponse:
        """The most recent jobs."""
        auth.check(request)
        count = path_int(limit, "limit") if limit is not None else 50
        if count > 1000:
            raise Unprocessable("limit must be at most 1000", code="invalid_parameter", status=400)
        return json_response({"jobs": await runner.list(count)})

    @router.get(
        "/jobs/{job_id}",
        summary="One job's status and progress",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [job_id_param],
            "responses": {
                "200": {"description": "the job", "content": json_content(_JOB)},
                **error_responses(400, 401, 403, 404, 503),
            },
        },
    )
    async def get_job(request: Request, job_id: str) -> JSONResponse:
        """Status, counters and the first errors."""
        auth.check(request)
        return json_response(await runner.get(path_int(job_id, "job id")))

    @router.post(
        "/jobs/{job_id}/cancel",
        summary="Cancel a queued, running or throttled job",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [job_id_param],
            "responses": {
                "200": {"description": "cancelled", "content": json_content(_JOB)},
                **error_responses(400, 401, 403, 404, 409, 503),
            },
        },
    )
    async def cancel_job(request: Request, job_id: str) -> JSONResponse:
        """Items already applied stay applied; the rest are not run."""
        auth.check(request)
        return json_response(await runner.cancel(path_int(job_id, "job id")))

    return router
