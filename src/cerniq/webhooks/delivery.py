"""Delivery and read status of our WhatsApp messages, by polling.

TimelinesAI pushes no delivered/read webhooks for regular WhatsApp (providers.md §1.4), so a job
asks ``GET /messages/{uid}`` about our SENT and DELIVERED messages of the last three days and
moves them to DELIVERED / READ, or FAILED with the vendor's reason. Each run checks a bounded
batch, least recently checked first (``status_updated_at`` is touched by every check), so every
message gets its turn and the vendor's rate limit is never hogged.

The send path makes one vendor call per message (the send answers with the uid only), so a
message's first check also records its chat (the ``message:sent:new`` webhook of our own send
usually arrives before the send is recorded, and is ignored). A message the vendor took and then
failed as "not on WhatsApp" is handled as the send path handles a refused number: FAILED
(``INVALID_RECIPIENT``), the lead flagged and due at once so its next step takes the email
route, and the new-contact quota given back when it is still that quota day.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import get_settings
from cerniq.kit.clock import BusinessClock, utcnow
from cerniq.kit.db import transaction
from cerniq.kit.redis import get_redis
from cerniq.logging import get_logger
from cerniq.messaging.service import AUTOMATED_ORIGINS
from cerniq.messaging.vendors import whatsapp
from cerniq.models import GoldCommunicationLog, GoldLeadJourney
from cerniq.models.enums import LeadState, MessageStatus
from cerniq.providers.errors import PermanentProviderError, ProviderError
from cerniq.providers.timelinesai.schemas import WaMessage, WaMessageStatus
from cerniq.quota.guardian import QuotaGuardian
from cerniq.webhooks import repository

__all__ = ["POLL_BATCH", "POLL_WINDOW", "PollReport", "poll_delivery_status"]

log = get_logger("cerniq.webhooks.delivery")

POLL_WINDOW = timedelta(days=3)
POLL_BATCH = 200
POLL_CONCURRENCY = 5
#: Failure reasons that mean the number has no WhatsApp: stop using that route for the lead.
_NOT_ON_WHATSAPP = re.compile(r"not (registered|on whatsapp)|no whatsapp|invalid (phone|number)", re.I)
#: Lead states whose next automated step a "not on WhatsApp" failure brings forward.
_REROUTED = (LeadState.COLD, LeadState.CONTACTED_WA, LeadState.CONTACTED_EMAIL)


@dataclass
class PollReport:
    checked: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    errors: int = 0
    changes: list[tuple[uuid.UUID, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "delivered": self.delivered,
            "read": self.read,
            "failed": self.failed,
            "errors": self.errors,
        }


async def poll_delivery_status(*, limit: int = POLL_BATCH, window: timedelta = POLL_WINDOW) -> PollReport:
    """Check up to ``limit`` SENT/DELIVERED WhatsApp messages sent within ``window``."""
    report = PollReport()
    now = utcnow()
    async with transaction() as session:
        rows = await repository.messages_to_poll(session, since=now - window, limit=limit)
        wanted = [(r.id, str(r.external_message_id)) for r in rows]
        leads = {r.id: (r.lead_journey_id, r.thread_id is None) for r in rows}
    if not wanted:
        return report
    provider = whatsapp()
    found: dict[uuid.UUID, WaMessage | None] = {}
    gate = asyncio.Semaphore(POLL_CONCURRENCY)

    async def check(row_id: uuid.UUID, uid: str) -> None:
        async with gate:
            try:
                found[row_id] = await provider.get_message(uid)
            except PermanentProviderError as exc:
                if exc.status_code == 404:
                    found[row_id] = None  # unknown to the vendor: nothing to learn, checked anyway
                else:
                    report.errors += 1
            except ProviderError:
                report.errors += 1

    await asyncio.gather(*(check(row_id, uid) for row_id, uid in wanted))
    if not found:
        return report
    clock = BusinessClock.from_settings(get_settings())
    refunds: list[tuple[str, date, uuid.UUID]] = []
    # The leads this run may write (a chat to record, a number that is not on WhatsApp) are
    # locked before the messages: the reply path locks a lead, then its messages.
    touched = sorted(
        {
            journey_id
            for row_id, (journey_id, chatless) in leads.items()
            if row_id in found and (chatless or _not_on_whatsapp_failure(found[row_id]))
        }
    )
    async with transaction() as session:
        await repository.lock_journeys(session, touched)
        for row in await repository.lock_messages(session, list(found)):
            if row.status not in repository.POLLED:
                continue  # a reply or the send path moved it meanwhile
            report.checked += 1
            checked_at = utcnow()
            row.status_updated_at = checked_at
            vendor = found[row.id]
            if vendor is None:
                continue
            if row.thread_id is None and vendor.chat_id is not None:
                chat = str(vendor.chat_id)
                row.thread_id = chat
                await repository.fill_journey_chat(session, row.lead_journey_id, row.phone_id, chat)
            status = vendor.status
            if status == WaMessageStatus.READ:
                row.status = MessageStatus.READ
                row.delivered_at = row.delivered_at or checked_at
                row.read_at = row.read_at or checked_at
                report.read += 1
            elif status == WaMessageStatus.DELIVERED and row.status == MessageStatus.SENT:
                row.status = MessageStatus.DELIVERED
                row.delivered_at = row.delivered_at or checked_at
                report.delivered += 1
            elif status == WaMessageStatus.FAILED:
                reason = vendor.failure_reason or "failed at the vendor"
                row.status = MessageStatus.FAILED
                row.error_code = "DELIVERY_FAILED"
                row.error_message = reason[:500]
                report.failed += 1
                if _not_on_whatsapp_failure(vendor):
                    row.error_code = "INVALID_RECIPIENT"
                    await _not_on_whatsapp(session, row, checked_at)
                    if row.quota_cost and row.phone_id and row.quota_date == clock.business_day(checked_at):
                        refunds.append((row.phone_id, row.quota_date, row.id))
                        row.quota_cost = 0
                        row.quota_date = None
            else:
                continue
            report.changes.append((row.id, row.status.value))
    # The ledger gave the unit back when the transaction committed; Redis follows (a crash in
    # between leaves the counter one above the ledger: a unit lost for the day, never overspent).
    guardian = QuotaGuardian(get_redis())
    for phone_id, day, row_id in refunds:
        await guardian.release(phone_id=phone_id, day=day, reservation_id=str(row_id))
    if report.changes or report.errors:
        log.info("delivery.polled", **report.as_dict())
    return report


def _not_on_whatsapp_failure(vendor: WaMessage | None) -> bool:
    return (
        vendor is not None
        and vendor.status == WaMessageStatus.FAILED
        and bool(_NOT_ON_WHATSAPP.search(vendor.failure_reason or ""))
    )


async def _not_on_whatsapp(session: AsyncSession, row: GoldCommunicationLog, at: datetime) -> None:
    """The number has no WhatsApp: flag the lead, and bring its next automated step forward so
    the next dispatch sends it by email instead of waiting for a WhatsApp follow-up."""
    journey = await session.get(GoldLeadJourney, row.lead_journey_id)  # locked by the caller
    if journey is None:
        return
    journey.whatsapp_invalid = True
    if (
        row.origin in AUTOMATED_ORIGINS
        and journey.current_state in _REROUTED
        and not journey.is_human_controlled
        and journey.next_action_at is not None
        and journey.next_action_at > at
    ):
        journey.next_action_at = at
