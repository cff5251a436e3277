"""Router: /jobs — submit, list, inspect and cancel transfer-batch jobs (bearer token required)."""

from __future__ import annotations

from FasterAPI import Response
from msgspec import UNSET

from fasterdb.contract import JobBody, JobItemError, JobRequest, JobsBody, timestamp
from fasterdb.errors import Unprocessable

from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, integer
from ..jobs.model import InvalidJob, JobRecord, ValidJob, check_job
from ..jobs.queue import JobQueue
from ..ledger.money import MoneyError, amount_from_json, transfer_request

JOB_ID = Param(
    "job_id", "path", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, "the job id", integer(1), required=True
)
SUBMIT = Operation(
    "POST",
    "/jobs",
    "submit_job",
    "Submit a transfer-batch job (202; a worker runs it in batches)",
    "jobs",
    (Reply(202, "queued", JobBody), Reply(503, "the primary is unavailable")),
    body=JobRequest,
    body_limit=32 * 1024 * 1024,
    invalid_code="invalid_job",
    example={
        "kind": "transfer-batch",
        "items": [{"from_account": 1, "to_account": 2, "amount": "1.00", "idempotency_key": "batch-7-1"}],
        "batch_size": 100,
        "dry_run": True,
    },
    admin=True,
    description="Every item is checked first (the same rules as POST /transfers); a job with an invalid "
    "item is refused whole and nothing is stored. At most 100,000 items.",
)
LIST = Operation(
    "GET",
    "/jobs",
    "list_jobs",
    "Recent jobs, newest first",
    "jobs",
    (Reply(200, "jobs", JobsBody), Reply(503, "the primary is unavailable")),
    params=(
        Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 50", integer(1, 1000), 50),
    ),
    admin=True,
)
GET = Operation(
    "GET",
    "/jobs/{job_id}",
    "get_job",
    "One job's status and progress",
    "jobs",
    (Reply(200, "the job", JobBody), Reply(404, "job_not_found"), Reply(503, "the primary is unavailable")),
    params=(JOB_ID,),
    admin=True,
)
CANCEL = Operation(
    "POST",
    "/jobs/{job_id}/cancel",
    "cancel_job",
    "Cancel a queued, running or throttled job",
    "jobs",
    (
        Reply(200, "cancelled; items already applied stay applied", JobBody),
        Reply(404, "job_not_found"),
        Reply(409, "job_finished"),
        Reply(503, "the primary is unavailable"),
    ),
    params=(JOB_ID,),
    admin=True,
)


def job_body(job: JobRecord) -> JobBody:
    """A job row as the contract's body (the same field names; timestamps and errors rendered)."""
    return JobBody(
        **{name: getattr(job, name) for name in JobBody.__struct_fields__ if name not in _RENDERED},
        created_at=timestamp(job.created_at.timestamp()),
        updated_at=timestamp(job.updated_at.timestamp()),
        errors=[
            JobItemError(e.get("seq"), e.get("idempotency_key"), e.get("code"), e.get("message")) for e in job.errors
        ],
    )


_RENDERED = ("created_at", "updated_at", "errors")
SHOWN_PROBLEMS = 5  # item problems named in a refusal (the rest are counted)


def valid_job(body: JobRequest) -> ValidJob:
    """Every item checked with the same rules as POST /transfers; the first problems named by item number."""
    items, problems = [], []
    for seq, item in enumerate(body.items):
        try:
            key = None if item.idempotency_key is UNSET else item.idempotency_key
            items.append(transfer_request(item.from_account, item.to_account, amount_from_json(item.amount), key))
        except MoneyError as exc:
            problems.append(f"item {seq}: {exc}")
    if problems:
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise InvalidJob("; ".join(problems[:SHOWN_PROBLEMS]) + more)
    return check_job(body.kind, items, body.batch_size, body.dry_run)


def register(api: Api, runner: JobQueue) -> None:
    """POST/GET /jobs, GET /jobs/{job_id}, POST /jobs/{job_id}/cancel."""

    @api.route(SUBMIT)
    async def submit(call: Call) -> Response:
        """Validate every item, persist the job, answer 202 with its id."""
        try:
            job = valid_job(call.body)
        except (InvalidJob, ValueError) as exc:
            raise Unprocessable(str(exc), code="invalid_job") from None
        return json_reply(job_body(await runner.submit(job)), 202)

    @api.route(LIST)
    async def list_(call: Call) -> Response:
        """The most recent jobs."""
        return json_reply(JobsBody([job_body(j) for j in await runner.list(call.params["limit"])]))

    @api.route(GET)
    async def get(call: Call) -> Response:
        """Status, counters and the first errors."""
        return json_reply(job_body(await runner.get(call.params["job_id"])))

    @api.route(CANCEL)
    async def cancel(call: Call) -> Response:
        """Items already applied stay applied; the rest are not run."""
        return json_reply(job_body(await runner.cancel(call.params["job_id"])))
