"""``/health``, ``/metrics`` and the queue health the runbook's morning check reads."""

from __future__ import annotations

from typing import Any

from cerniq.worker.names import DISPATCH


async def test_queue_health_lists_every_queue_with_counts(api: Any, admin_headers: dict[str, str]) -> None:
    await api.post(
        "/api/v1/outreach/phones", json={"phoneNumber": "+40700000001", "label": "S1"}, headers=admin_headers
    )
    from cerniq.worker.enqueue import enqueue

    await enqueue(DISPATCH, "dispatch", {}, job_id="probe-1")
    body = (await api.get("/api/admin/queues/health", headers=admin_headers)).json()
    queues = body["queues"]
    assert "q:wa:phone_01" in queues
    assert DISPATCH in queues
    assert queues[DISPATCH]["waiting"] == 1
    assert set(queues[DISPATCH]) == {"waiting", "active", "completed", "failed", "delayed", "paused"}


async def test_health_reports_components_and_worst_state(api: Any, tenant: Any) -> None:
    response = await api.get("/health")
    body = response.json()
    assert body["components"]["postgres"]["status"] == "healthy"
    assert body["components"]["redis"]["status"] == "healthy"
    # no phones and no worker running: degraded, not healthy
    assert body["status"] == "degraded"
    assert response.status_code == 200


async def test_metrics_are_prometheus_text(api: Any) -> None:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert "cerniq_job_processing_seconds" in response.text


async def test_openapi_docs_are_served(api: Any) -> None:
    assert (await api.get("/docs")).status_code == 200
    spec = (await api.get("/openapi.json")).json()
    assert "/api/v1/outreach/phones" in spec["paths"]
