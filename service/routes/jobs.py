"""Router: /jobs — submit, list, inspect and cancel transfer-batch jobs (bearer token required)."""

from __future__ import annotations

from FasterAPI import Response

from fasterdb.contract import JobBody, JobItemError, JobRequest, JobsBody
from fasterdb.contract import timestamp as iso
from fasterdb.errors import Unprocessable

from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, integer
from ..jobs.queue import InvalidJob, JobRunner, validate_job
from ..jobs.sql import JobRecord

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
    """A job row as the contract's body."""
    return JobBody(
        job_id=job.job_id,
        kind=job.kind,
        status=job.status,  # type: ignore[arg-type]  # the table's CHECK constraint keeps it in JobStatus
        total=job.total,
        applied=job.applied,
        duplicates=job.duplicates,
        failed=job.failed,
        batch_size=job.batch_size,
        dry_run=job.dry_run,
        throttle_reason=job.throttle_reason,
        created_at=iso(job.created_at.timestamp()),
        updated_at=iso(job.updated_at.timestamp()),
        errors=[
            JobItemError(e.get("seq"), e.get("idempotency_key"), e.get("code"), e.get("message")) for e in job.errors
        ],
    )


def register(api: Api, runner: JobRunner) -> None:
    """POST/GET /jobs, GET /jobs/{job_id}, POST /jobs/{job_id}/cancel."""

    @api.route(SUBMIT)
    async def submit(call: Call) -> Response:
        """Validate every item, persist the job, answer 202 with its id."""
        try:
            job = validate_job(call.body)
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
