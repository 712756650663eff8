"""The console's queue pages over HTTP against real BullMQ queues in the test Redis: health,
failed jobs with reason and stack trace, retry, pause/resume, drain and the DLQ, with roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cerniq.kit.db import transaction
from cerniq.kit.redis import get_queue_redis
from cerniq.models.audit_log import AuditEntry
from cerniq.ops import queue_admin
from cerniq.worker import dlq
from cerniq.worker.enqueue import enqueue
from cerniq.worker.names import DLQ_KEY, MAINTENANCE_STATS
from cerniq.worker.queues import get_queue, make_worker
from tests.console.conftest import csrf_of, sign_in
from tests.fixtures.outreach import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

Q = MAINTENANCE_STATS
PAGE = f"/console/queues/{Q}"


async def _counts() -> dict[str, int]:
    return (await queue_admin.counts_many([Q]))[Q]


async def _fail_jobs(*numbers: int) -> None:
    """Enqueue one job per number and run a worker over them: each one raises."""
    for n in numbers:
        await enqueue(Q, "stats", {"n": n}, job_id=f"stats-{n}", attempts=1)

    async def processor(job: Any, token: str) -> str:
        raise ValueError(f"boom: row {job.data['n']} is bad")

    worker = make_worker(Q, processor)
    try:

        async def idle() -> bool:
            c = await _counts()
            return c["waiting"] == 0 and c["active"] == 0

        await wait_for(idle)
    finally:
        await worker.close()


async def _audit_actions() -> list[str]:
    async with transaction() as session:
        return list((await session.execute(select(AuditEntry.action))).scalars().all())


async def test_a_failed_job_shows_its_reason_and_stack_trace_and_retry_moves_it_back(
    console: httpx.AsyncClient, users: dict[str, str]
) -> None:
    await _fail_jobs(1)
    await sign_in(console, users["operator"])

    overview = await console.get("/console/queues")
    assert overview.status_code == 200
    assert f'data-testid="queue-row-{Q}" class="q-has-failed"' in overview.text
    assert f'href="{PAGE}" class="q-failed">1</a>' in overview.text

    page = await console.get(PAGE)
    assert page.status_code == 200
    assert "Joburi eșuate" in page.text  # Romanian by default
    assert 'data-testid="failed-job-stats-1"' in page.text
    assert "boom: row 1 is bad" in page.text
    stack = page.text.split("<summary>Stiva de apeluri</summary>", 1)[1].split("</details>", 1)[0]
    assert "ValueError" in stack and "boom: row 1 is bad" in stack
    assert 'data-testid="drain"' not in page.text  # an operator does not drain

    done = await console.post(f"{PAGE}/jobs/stats-1/retry", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303
    assert done.headers["location"] == f"{PAGE}?flash=done"
    assert await get_queue(Q).getJobState("stats-1") == "waiting"
    after = await console.get(PAGE)
    assert "boom: row 1 is bad" not in after.text
    assert "Niciun job eșuat." in after.text
    assert "queue.retry_job" in await _audit_actions()


async def test_retry_all_failed_moves_every_failed_job_back(
    console: httpx.AsyncClient, users: dict[str, str]
) -> None:
    await _fail_jobs(1, 2, 3)
    await sign_in(console, users["operator"])
    page = await console.get(PAGE)
    assert page.text.count('data-testid="failed-job-') == 3
    done = await console.post(f"{PAGE}/retry-failed", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303 and "flash=done" in done.headers["location"]
    counts = await _counts()
    assert (counts["failed"], counts["waiting"]) == (0, 3)
    assert "queue.retry_failed" in await _audit_actions()


async def test_a_viewer_sees_no_actions_and_forged_posts_are_refused(
    console: httpx.AsyncClient, users: dict[str, str]
) -> None:
    await _fail_jobs(1)
    await enqueue(Q, "stats", {"n": 9}, job_id="stats-9")
    await sign_in(console, users["viewer"])
    page = await console.get(PAGE)
    assert page.status_code == 200
    assert "boom: row 1 is bad" in page.text  # a viewer reads
    hidden_actions = (
        'data-testid="retry-stats-1"',
        'data-testid="drain"',
        'data-testid="pause"',
        "retry-failed",
    )
    for hidden in hidden_actions:
        assert hidden not in page.text
    csrf = csrf_of(page.text)
    for path in (f"{PAGE}/jobs/stats-1/retry", f"{PAGE}/retry-failed", f"{PAGE}/pause", "/console/dlq/retry"):
        refused = await console.post(path, data={"csrf": csrf, "index": "0"})
        assert refused.status_code == 403, path
    drain = await console.post(f"{PAGE}/drain", data={"csrf": csrf, "confirm": "yes"})
    assert drain.status_code == 403
    assert await get_queue(Q).getJobState("stats-1") == "failed"
    assert (await _counts())["waiting"] == 1
    assert not await get_queue(Q).isPaused()


async def test_an_operator_may_not_drain_or_pause(console: httpx.AsyncClient, users: dict[str, str]) -> None:
    await enqueue(Q, "stats", {"n": 1}, job_id="stats-1")
    await sign_in(console, users["operator"])
    csrf = csrf_of((await console.get(PAGE)).text)
    drain = await console.post(f"{PAGE}/drain", data={"csrf": csrf, "confirm": "yes"})
    assert drain.status_code == 403
    assert "admin" in drain.text
    assert (await console.post(f"{PAGE}/pause", data={"csrf": csrf})).status_code == 403
    assert (await _counts())["waiting"] == 1
    assert not await get_queue(Q).isPaused()


async def test_an_admin_drains_the_waiting_jobs_after_confirming(
    console: httpx.AsyncClient, users: dict[str, str]
) -> None:
    for n in range(3):
        await enqueue(Q, "stats", {"n": n}, job_id=f"stats-{n}")
    await sign_in(console, users["admin"])
    page = await console.get(PAGE)
    assert 'data-testid="count-waiting">3<' in page.text
    assert 'for="drain-confirm"' in page.text
    csrf = csrf_of(page.text)

    unconfirmed = await console.post(f"{PAGE}/drain", data={"csrf": csrf})
    assert unconfirmed.status_code == 303
    shown = await console.get(unconfirmed.headers["location"])
    assert "tick the confirmation to drain the queue" in shown.text
    assert (await _counts())["waiting"] == 3

    drained = await console.post(
        f"{PAGE}/drain", data={"csrf": csrf, "confirm": "yes", "reason": "stale stats"}
    )
    assert drained.status_code == 303 and "flash=done" in drained.headers["location"]
    assert (await _counts())["waiting"] == 0
    after = await console.get(PAGE)
    assert 'data-testid="count-waiting">0<' in after.text
    async with transaction() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "queue.drain"))
        ).scalar_one()
    assert audit.entity_id == Q and audit.reason == "stale stats"
    assert audit.after is not None and audit.after["removed"] == 3


async def test_an_admin_pauses_and_resumes_a_queue(console: httpx.AsyncClient, users: dict[str, str]) -> None:
    await sign_in(console, users["admin"])
    csrf = csrf_of((await console.get("/console/queues")).text)
    paused = await console.post(f"{PAGE}/pause", data={"csrf": csrf, "next": "/console/queues"})
    assert paused.status_code == 303
    assert paused.headers["location"] == "/console/queues?flash=done"
    assert await get_queue(Q).isPaused()
    overview = (await console.get("/console/queues")).text
    row = overview.split(f'data-testid="queue-row-{Q}"', 1)[1].split("</tr>")[0]
    assert "În pauză" in row
    page = await console.get(PAGE)
    assert 'data-testid="queue-paused"' in page.text
    await console.post(f"{PAGE}/resume", data={"csrf": csrf})
    assert not await get_queue(Q).isPaused()
    assert {"queue.pause", "queue.resume"} <= set(await _audit_actions())


async def test_an_unknown_queue_is_a_message_not_a_500(
    console: httpx.AsyncClient, users: dict[str, str]
) -> None:
    await sign_in(console, users["admin"])
    response = await console.get("/console/queues/no:such:queue")
    assert response.status_code == 303
    shown = await console.get(response.headers["location"])
    assert "QUEUE_NOT_FOUND" in shown.text
    csrf = csrf_of(shown.text)
    posted = await console.post("/console/queues/no:such:queue/drain", data={"csrf": csrf, "confirm": "yes"})
    assert posted.status_code == 303 and "QUEUE_NOT_FOUND" in posted.headers["location"]


async def test_dlq_entries_are_listed_and_retried(console: httpx.AsyncClient, users: dict[str, str]) -> None:
    for n in (1, 2):
        await dlq.push(
            queue=Q,
            job_id=f"dead-{n}",
            name="stats",
            reason=f"ValueError: dead {n}",
            attempts=3,
            data={"n": n},
        )
    await sign_in(console, users["operator"])
    page = await console.get("/console/queues")
    assert "ValueError: dead 1" in page.text and "ValueError: dead 2" in page.text
    assert "(2 intrări)" in page.text
    csrf = csrf_of(page.text)

    bad = await console.post("/console/dlq/retry", data={"csrf": csrf, "index": "x"})
    assert bad.status_code == 303 and "VALIDATION_ERROR" in bad.headers["location"]

    one = await console.post("/console/dlq/retry", data={"csrf": csrf, "index": "0"})  # newest: dead-2
    assert one.status_code == 303 and "flash=done" in one.headers["location"]
    assert await get_queue(Q).getJobState("dead-2") == "waiting"
    assert await get_queue_redis().llen(DLQ_KEY) == 1

    every = await console.post("/console/dlq/retry", data={"csrf": csrf, "all": "1"})
    assert every.status_code == 303
    assert await get_queue(Q).getJobState("dead-1") == "waiting"
    assert "Lista DLQ e goală." in (await console.get("/console/queues")).text
    assert "dlq.retry" in await _audit_actions()
