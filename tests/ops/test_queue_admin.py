"""Queue administration (runbook 4) against real BullMQ jobs in the test Redis."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_queue_redis
from cerniq.models import AuditEntry
from cerniq.models.enums import Role
from cerniq.ops import queue_admin
from cerniq.worker import dlq
from cerniq.worker.enqueue import enqueue
from cerniq.worker.names import DLQ_KEY, MAINTENANCE_STATS
from cerniq.worker.queues import get_queue, make_worker
from tests.fixtures.outreach import wait_for

Q = MAINTENANCE_STATS
CLI = str(Path(sys.executable).with_name("cerniq"))


async def _counts(name: str) -> dict[str, int]:
    return (await queue_admin.counts_many([name]))[name]


async def _run_failing_worker(name: str, *, failing: set[int]) -> None:
    """Process every waiting job of ``name`` once: jobs whose data n is in ``failing`` raise."""

    async def processor(job: Any, token: str) -> str:
        if job.data["n"] in failing:
            raise ValueError(f"boom: row {job.data['n']} is bad")
        return "ok"

    worker = make_worker(name, processor)
    try:

        async def idle() -> bool:
            c = await _counts(name)
            return c["waiting"] == 0 and c["active"] == 0

        await wait_for(idle)
    finally:
        await worker.close()


async def test_failed_jobs_show_reason_and_stacktrace_and_can_be_retried_and_cleaned(
    api: Any, admin_headers: dict[str, str]
) -> None:
    await enqueue(Q, "stats", {"n": 1}, job_id="stats-1", attempts=1)
    await enqueue(Q, "stats", {"n": 2}, job_id="stats-2", attempts=1)
    await _run_failing_worker(Q, failing={1})

    counts = (await api.get(f"/api/admin/queues/{Q}", headers=admin_headers)).json()
    assert {k: counts[k] for k in ("waiting", "active", "completed", "failed")} == {
        "waiting": 0,
        "active": 0,
        "completed": 1,
        "failed": 1,
    }

    failed = (await api.get(f"/api/admin/queues/{Q}/failed?limit=50", headers=admin_headers)).json()
    assert [j["id"] for j in failed] == ["stats-1"]
    assert failed[0]["failedReason"] == "boom: row 1 is bad"
    assert failed[0]["queue"] == Q

    everywhere = (await api.get("/api/admin/queues/failed", headers=admin_headers)).json()
    assert isinstance(everywhere, list)
    assert [(j["queue"], j["id"]) for j in everywhere] == [(Q, "stats-1")]

    job = (await api.get(f"/api/admin/queues/{Q}/jobs/stats-1", headers=admin_headers)).json()
    assert job["state"] == "failed"
    assert job["data"] == {"n": 1}
    assert job["attemptsMade"] == 1
    assert job["opts"]["attempts"] == 1
    assert any("boom: row 1 is bad" in line for line in job["stacktrace"])

    retried = await api.post(f"/api/admin/queues/{Q}/jobs/stats-1/retry", headers=admin_headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["from"] == "failed"
    waiting = (await api.get(f"/api/admin/queues/{Q}/waiting", headers=admin_headers)).json()
    assert [j["id"] for j in waiting] == ["stats-1"]
    assert waiting[0]["attemptsMade"] == 0  # a fresh set of attempts

    # it fails again; retry-failed moves every failed job back
    await _run_failing_worker(Q, failing={1})
    assert (await _counts(Q))["failed"] == 1
    body = (await api.post(f"/api/admin/queues/{Q}/retry-failed", headers=admin_headers)).json()
    assert body["retried"] == 1
    assert (await _counts(Q))["failed"] == 0
    assert (await _counts(Q))["waiting"] == 1

    await _run_failing_worker(Q, failing={1})
    # clean-failed keeps jobs younger than ?age, removes older ones
    kept = (await api.post(f"/api/admin/queues/{Q}/clean-failed?age=86400", headers=admin_headers)).json()
    assert kept["removed"] == 0
    await asyncio.sleep(0.01)
    cleaned = (await api.post(f"/api/admin/queues/{Q}/clean-failed?age=0", headers=admin_headers)).json()
    assert cleaned["removed"] == 1
    assert (await _counts(Q))["failed"] == 0

    completed = (await api.post("/api/admin/queues/clean-completed?maxAge=0", headers=admin_headers)).json()
    assert completed["removed"] == 1
    assert completed["queues"] == {Q: 1}

    async with transaction() as session:
        actions = (
            (await session.execute(select(AuditEntry.action).order_by(AuditEntry.created_at))).scalars().all()
        )
    assert {"queue.retry_job", "queue.retry_failed", "queue.clean_failed", "queue.clean_completed"} <= set(
        actions
    )


async def test_phone_queue_names_with_colons_route_and_pause_drain_resume(
    api: Any, admin_headers: dict[str, str], tenant: Any, other_tenant: Any, make_token: Any
) -> None:
    created = await api.post(
        "/api/v1/outreach/phones", json={"phoneNumber": "+40700000001", "label": "S1"}, headers=admin_headers
    )
    assert created.status_code == 201
    name = "q:wa:phone_01"
    for n in range(3):  # follow-ups are prioritized: the list spans the wait list and that set
        await enqueue(
            name, "send", {"messageId": str(uuid.uuid4())}, job_id=f"wa-{uuid.uuid4()}", priority=n % 2
        )

    paused = await api.post(f"/api/admin/queues/{name}/pause", headers=admin_headers)
    assert paused.json() == {"queue": name, "paused": True}
    health = (await api.get("/api/admin/queues/health", headers=admin_headers)).json()
    assert health["queues"][name]["paused"] == 1
    assert health["queues"][name]["waiting"] == 3

    waiting = await api.get(f"/api/admin/queues/{name}/waiting", headers=admin_headers)
    assert waiting.status_code == 200
    assert len(waiting.json()) == 3
    assert waiting.headers["X-Total-Count"] == "3"
    assert all(j["queue"] == name and j["state"] == "waiting" for j in waiting.json())
    page = (await api.get(f"/api/admin/queues/{name}/waiting?limit=2&offset=1", headers=admin_headers)).json()
    assert [j["id"] for j in page] == [j["id"] for j in waiting.json()][1:3]
    summary = (await api.get(f"/api/admin/queues/{name}", headers=admin_headers)).json()
    assert {k: summary[k] for k in ("waiting", "active", "completed", "failed")} == {
        "waiting": 3,
        "active": 0,
        "completed": 0,
        "failed": 0,
    }

    viewer = await make_token(tenant, Role.VIEWER, "viewer")
    operator = await make_token(tenant, Role.OPERATOR, "operator")
    assert (await api.post(f"/api/admin/queues/{name}/drain", headers=viewer)).status_code == 403
    assert (await api.post(f"/api/admin/queues/{name}/drain", headers=operator)).status_code == 403
    assert (await api.post(f"/api/admin/queues/{name}/retry-failed", headers=operator)).status_code == 200
    assert (await api.get(f"/api/admin/queues/{name}/waiting", headers=viewer)).status_code == 200

    other = await make_token(other_tenant, Role.ADMIN, "other-admin")
    foreign = await api.get(f"/api/admin/queues/{name}/waiting", headers=other)
    assert foreign.status_code == 404

    drained = await api.post(f"/api/admin/queues/{name}/drain", headers=admin_headers)
    assert drained.status_code == 200
    assert drained.json()["removed"] == 3
    assert (await api.get(f"/api/admin/queues/{name}/waiting", headers=admin_headers)).json() == []

    resumed = await api.post(f"/api/admin/queues/{name}/resume", headers=admin_headers)
    assert resumed.json()["paused"] is False
    health = (await api.get("/api/admin/queues/health", headers=admin_headers)).json()
    assert health["queues"][name]["paused"] == 0

    missing = await api.get("/api/admin/queues/q:wa:phone_77/waiting", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "QUEUE_NOT_FOUND"
    assert (await api.get("/api/admin/queues/no:such:queue", headers=admin_headers)).status_code == 404
    assert (await api.get(f"/api/admin/queues/{name}/jobs/nope", headers=admin_headers)).status_code == 404

    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "queue.drain"))
        ).scalar_one()
    assert audit.entity_id == name
    assert audit.after is not None and audit.after["removed"] == 3


async def test_a_stuck_active_job_is_visible_and_can_be_requeued(
    api: Any, admin_headers: dict[str, str]
) -> None:
    await enqueue(Q, "stats", {"n": 1}, job_id="stuck-1")
    release = asyncio.Event()
    started = asyncio.Event()

    async def processor(job: Any, token: str) -> str:
        started.set()
        await release.wait()
        return "done"

    worker = make_worker(Q, processor)
    try:
        await asyncio.wait_for(started.wait(), 20)
        active = (await api.get(f"/api/admin/queues/{Q}/active", headers=admin_headers)).json()
        assert active[0]["id"] == "stuck-1"
        assert active[0]["stuck"] is False
        refused = await api.post(f"/api/admin/queues/{Q}/jobs/stuck-1/retry", headers=admin_headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "JOB_ACTIVE"

        # it has been running for more than five minutes
        await get_queue_redis().hset(f"bull:{Q}:stuck-1", "processedOn", int(time.time() * 1000) - 400_000)
        active = (await api.get(f"/api/admin/queues/{Q}/active", headers=admin_headers)).json()
        assert active[0]["stuck"] is True
        assert active[0]["activeForSeconds"] >= 300
        summary = (await api.get(f"/api/admin/queues/{Q}", headers=admin_headers)).json()
        assert summary["stuckActive"] == ["stuck-1"]

        retried = await api.post(f"/api/admin/queues/{Q}/jobs/stuck-1/retry", headers=admin_headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["from"] == "active"
        job = (await api.get(f"/api/admin/queues/{Q}/jobs/stuck-1", headers=admin_headers)).json()
        assert job["state"] == "waiting"
        assert (await _counts(Q))["active"] == 0
    finally:
        release.set()
        await worker.close(force=True)


async def _cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250"},
    )
    out, _ = await proc.communicate(stdin.encode() if stdin is not None else None)
    return int(proc.returncode or 0), out.decode()


async def test_cli_dlq_shows_retries_and_trims_final_failures(tenant: Any) -> None:
    for n in range(1, 4):
        await dlq.push(
            queue=Q,
            job_id=f"dead-{n}",
            name="stats",
            reason=f"ValueError: dead {n}",
            attempts=3,
            data={"n": n},
        )
    code, out = await _cli("queues", "dlq")
    assert code == 0, out
    assert "3 entries" in out
    assert "ValueError: dead 3" in out and "dead-1" in out

    code, out = await _cli("queues", "dlq", "--retry", "0", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert body["retried"] == [{"index": 0, "queue": Q, "jobId": "dead-3", "outcome": "requeued"}]
    assert body["total"] == 2
    job = await get_queue(Q).getJob("dead-3")
    assert job is not None and job.data == {"n": 3}
    assert await get_queue(Q).getJobState("dead-3") == "waiting"

    code, out = await _cli("queues", "dlq", "--trim", "1")
    assert code == 0, out
    assert await get_queue_redis().llen(DLQ_KEY) == 1
    remaining = json.loads(await get_queue_redis().lindex(DLQ_KEY, 0))
    assert remaining["jobId"] == "dead-2"


async def test_cli_queue_commands_mirror_the_api(tenant: Any) -> None:
    await enqueue(Q, "stats", {"n": 1}, job_id="cli-1", attempts=1)
    await _run_failing_worker(Q, failing={1})

    code, out = await _cli("queues", "failed", Q, "--json")
    assert code == 0, out
    assert [j["failedReason"] for j in json.loads(out)] == ["boom: row 1 is bad"]

    code, out = await _cli("queues", "retry", Q, "cli-1")
    assert code == 0, out
    assert (await _counts(Q))["waiting"] == 1

    code, out = await _cli("queues", "drain", Q, stdin="n\n")
    assert code == 1
    assert "Drain cancelled" in out
    assert (await _counts(Q))["waiting"] == 1
    code, out = await _cli("queues", "drain", Q, "--yes")
    assert code == 0, out
    assert "removed 1 job(s)" in out

    code, out = await _cli("queues", "show", "no:such:queue")
    assert code == 2
    assert "QUEUE_NOT_FOUND" in out
