"""CSV imports started from the console: run in the background of the API process, their
progress and report kept in Redis (``console:import:{id}``, a hash, for a day) so the page the
operator lands on can follow them.

An import is one transaction (as the API's import is): until it commits nothing of it is
visible, and if the process stops half-way nothing of it is saved. The page then says the import
stopped (no progress for :data:`STALLED_AFTER`) and the operator uploads the file again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Final, cast

from cerniq.auth.principal import Principal
from cerniq.console import web
from cerniq.errors import CerniqError
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.leads import service as leads_service
from cerniq.leads.importer import CsvReader
from cerniq.logging import get_logger

KEY: Final = "console:import:{}"
TTL_SECONDS: Final = 24 * 3600
STALLED_AFTER: Final = 300.0  # seconds without progress: the process running it stopped
TICK_SECONDS: Final = 0.5

log = get_logger("cerniq.console.imports")
_running: set[asyncio.Task[None]] = set()  # strong references: a bare task may be collected


async def start(principal: Principal, reader: CsvReader, *, source: str, dry_run: bool, lines: int) -> str:
    """Record a new import and start it; returns its id."""
    import_id = uuid.uuid4().hex
    key = KEY.format(import_id)
    redis = get_redis()
    await redis.hset(
        key,
        mapping={
            "tenant": str(principal.tenant_id),
            "status": "running",
            "source": source,
            "dryRun": int(dry_run),
            "rows": 0,
            "lines": lines,
            "beat": time.time(),
        },
    )
    await redis.expire(key, TTL_SECONDS)
    task = asyncio.create_task(_run(key, principal, reader, source=source, dry_run=dry_run))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return import_id


async def _run(key: str, principal: Principal, reader: CsvReader, *, source: str, dry_run: bool) -> None:
    redis = get_redis()
    done = 0
    finished = asyncio.Event()

    def progress(rows: int) -> None:
        nonlocal done
        done = rows

    async def ticker() -> None:  # the importer's callback is synchronous: publish from here
        while not finished.is_set():
            await redis.hset(key, mapping={"rows": done, "beat": time.time()})
            try:
                await asyncio.wait_for(finished.wait(), timeout=TICK_SECONDS)
            except TimeoutError:
                pass

    publisher = asyncio.create_task(ticker())
    outcome: dict[str, Any]
    try:
        async with transaction() as session:
            report = await leads_service.import_leads(
                session,
                principal.tenant_id,
                reader,
                principal=principal,
                source=source,
                dry_run=dry_run,
                on_progress=progress,
            )
        result = report.to_dict()
        outcome = {"status": "done", "rows": result["rows"], "report": json.dumps(result, default=str)}
    except CerniqError as exc:
        outcome = {"status": "failed", "error": web.error_text(exc)}
    except Exception as exc:  # the operator must hear of it; nothing of the import was saved
        log.error("console.import_failed", key=key, error=repr(exc))
        outcome = {
            "status": "failed",
            "error": "IMPORT_FAILED: the import stopped; nothing from it was saved",
        }
    finally:
        finished.set()
        await publisher
    await redis.hset(key, mapping={**outcome, "beat": time.time()})


async def status(tenant_id: uuid.UUID, import_id: str) -> dict[str, Any] | None:
    """The import as the page shows it (``status``, ``rows``, ``percent``, ``report`` when done,
    ``error`` when it failed or stalled), or None when there is no such import of this tenant."""
    if not import_id.isalnum():
        return None
    data = cast("dict[str, str]", await get_redis().hgetall(KEY.format(import_id)))  # decoded client
    if not data or data.get("tenant") != str(tenant_id):
        return None
    rows, lines = int(data.get("rows", 0)), max(int(data.get("lines", 1)), 1)
    job: dict[str, Any] = {
        "id": import_id,
        "status": data.get("status", "running"),
        "source": data.get("source"),
        "rows": rows,
        "lines": lines,
        "percent": min(100, rows * 100 // lines),
        "report": json.loads(data["report"]) if data.get("report") else None,
        "error": data.get("error"),
    }
    if job["status"] == "running" and time.time() - float(data.get("beat", 0)) > STALLED_AFTER:
        job["error"] = "IMPORT_STALLED: the import stopped before it finished; nothing from it was saved"
    return job
