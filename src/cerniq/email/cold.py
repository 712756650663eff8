"""The cold-email send job (``q:email:cold``, job ``send``, id ``cold-<row id>``): Instantly.

1. Re-check the row (still QUEUED), the emergency stop, the lead (opt-out, takeover, state) and
   the suppression list; find its campaign. A campaign paused here or held by Instantly makes
   the message wait (nothing is added to it until an operator resumes it).
2. Take up to ``instantly_bulk_size`` QUEUED rows bound for the same campaign (locked without
   waiting), mark them SENDING, commit.
3. One ``POST /api/v2/leads/add`` with ``skip_if_in_campaign`` (and ``skip_if_in_workspace``),
   the lead's fields and custom variables (our rendered subject and body among them).
4. Each added lead: row SENT (queued at Instantly) with ``external_message_id`` = the Instantly
   lead id, lead -> CONTACTED_EMAIL, next sequence step scheduled. A skipped lead is looked up:
   already in this campaign means an earlier attempt added it (a retry after a lost answer); in
   another campaign means SKIPPED ``ALREADY_IN_WORKSPACE``.

Instantly has no idempotency key, but the skip flags make a repeated add harmless: a lost
response leaves the rows AMBIGUOUS and the retry simply adds them again. Cold email never goes
through Resend (only :mod:`cerniq.email.warm` calls Resend, and only for warm leads).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bullmq import UnrecoverableError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.email import repository, suppression, vendors
from cerniq.email.campaigns import ACCEPTING, WAITING
from cerniq.email.config import email_settings
from cerniq.kit.clock import utcnow
from cerniq.kit.db import after_commit, transaction
from cerniq.kit.ids import job_id
from cerniq.kit.metrics import MESSAGES_SENT, SEND_FAILURES
from cerniq.leads.state import transition
from cerniq.logging import get_logger
from cerniq.messaging.service import AUTOMATED_ORIGINS, automation_block_reason
from cerniq.models import EmailCampaign, GoldCommunicationLog, GoldCompany, GoldContact, GoldLeadJourney
from cerniq.models.enums import Channel, LeadState, MessageStatus
from cerniq.ops import alerts
from cerniq.ops.system_state import emergency_stop
from cerniq.providers.errors import (
    AmbiguousProviderError,
    AuthProviderError,
    PermanentProviderError,
    TransientProviderError,
)
from cerniq.sequences import engine as sequences
from cerniq.templates.service import Outcome, record_message_outcome
from cerniq.worker import names
from cerniq.worker.queues import get_queue
from cerniq.worker.registry import JobContext

__all__ = ["cold_send_job", "lead_payload", "release_waiting"]

log = get_logger("cerniq.email.cold")

DONE = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
    MessageStatus.REPLIED,
    MessageStatus.FAILED,
    MessageStatus.SKIPPED,
    MessageStatus.BOUNCED,
)
COLD_STATES = (LeadState.COLD, LeadState.CONTACTED_WA, LeadState.CONTACTED_EMAIL)
#: A SENDING row younger than two vendor timeouts plus this margin belongs to a batch still in
#: flight: its own job waits for that batch instead of adding the lead again.
IN_FLIGHT_MARGIN = timedelta(seconds=10)
AUTH_WAIT = timedelta(minutes=15)


@dataclass
class Pending:
    row_id: uuid.UUID
    email: str
    lead: dict[str, Any]


def lead_payload(
    message: GoldCommunicationLog,
    journey: GoldLeadJourney,
    company: GoldCompany | None,
    contact: GoldContact | None,
) -> dict[str, Any]:
    """The Instantly lead of a cold row: fields plus flat custom variables for personalization
    (the campaign's ``{{subject}}`` / ``{{body}}`` are our rendered message)."""
    email = (message.email or journey.email or "").strip()
    variables: dict[str, Any] = {
        "cerniq_lead_id": str(journey.id),
        "cerniq_message_id": str(message.id),
        "cerniq_tenant_id": str(message.tenant_id),
        "subject": message.subject or "",
        "body": message.content_rendered or message.content,
    }
    lead: dict[str, Any] = {"email": email, "custom_variables": variables}
    if company is not None:
        lead["company_name"] = company.denumire
        variables.update(
            companyName=company.denumire,
            judet=company.judet,
            localitate=company.localitate,
            sector=company.sector,
        )
    if contact is not None:
        if contact.prenume:
            lead["first_name"] = contact.prenume
        if contact.nume:
            lead["last_name"] = contact.nume
        if contact.functie:
            lead["job_title"] = contact.functie
        variables["contactName"] = contact.full_name or " ".join(
            p for p in (contact.prenume, contact.nume) if p
        )
    variables = {k: v for k, v in variables.items() if v is None or isinstance(v, str | int | float | bool)}
    lead["custom_variables"] = variables
    return lead


async def cold_send_job(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Handler of ``send`` jobs on ``q:email:cold``."""
    message_id = uuid.UUID(str(data["messageId"]))
    prepared = await _prepare(ctx, message_id)
    if isinstance(prepared, dict):
        return prepared
    campaign_id, instantly_id, batch = prepared
    settings = email_settings()
    try:
        result = await vendors.instantly().add_leads(
            instantly_id,
            [p.lead for p in batch],
            skip_if_in_workspace=settings.instantly_skip_if_in_workspace,
            skip_if_in_campaign=True,
        )
    except AmbiguousProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_COLD", kind="ambiguous").inc()
        tries = await _set_rows(batch, MessageStatus.AMBIGUOUS, "AMBIGUOUS", str(exc))
        # Adding again is harmless (skip flags): the retry finds the lead in the campaign.
        if tries <= settings.email_ambiguous_retries:
            await ctx.delay_until(utcnow() + settings.email_retry_delay * 2 ** min(tries - 1, 6))
        raise
    except TransientProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_COLD", kind="transient").inc()
        await _set_rows(batch, MessageStatus.QUEUED, "VENDOR_TRANSIENT", str(exc))
        if exc.retry_after:
            await ctx.delay_until(utcnow() + timedelta(seconds=exc.retry_after))
        if ctx.is_last_attempt:
            await _set_rows(batch[:1], MessageStatus.FAILED, "VENDOR_TRANSIENT", str(exc))
        raise
    except AuthProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_COLD", kind="auth").inc()
        await _set_rows(batch, MessageStatus.QUEUED, "VENDOR_AUTH", str(exc))
        async with transaction() as session:
            campaign = await session.get(EmailCampaign, campaign_id)
            await alerts.trigger(
                session,
                "instantly:auth",
                tenant_id=campaign.tenant_id if campaign else None,
                message=f"Instantly refused our API key: {exc.message}",
            )
        await ctx.delay_until(utcnow() + AUTH_WAIT)
        raise AssertionError("unreachable") from None
    except PermanentProviderError as exc:
        SEND_FAILURES.labels(channel="EMAIL_COLD", kind="permanent").inc()
        await _set_rows(batch[1:], MessageStatus.QUEUED, None, None)
        await _set_rows(batch[:1], MessageStatus.FAILED, "CAMPAIGN_INVALID", str(exc))
        raise UnrecoverableError(f"Instantly refused the leads: {exc}") from exc
    created = {item.index: item.id for item in result.created_leads}
    skipped = [p for i, p in enumerate(batch) if i not in created]
    found: dict[str, list[tuple[str, str | None]]] = {}
    if skipped:
        for lead in await vendors.instantly().find_leads(emails=[p.email for p in skipped]):
            if lead.email:
                found.setdefault(lead.email.lower(), []).append((lead.id, lead.campaign))
    outcomes: dict[str, int] = {}
    for index, pending in enumerate(batch):
        lead_id = created.get(index)
        other: tuple[str, str | None] | None = None
        if lead_id is None:
            matches = found.get(pending.email.lower(), [])
            here = [m for m in matches if m[1] == instantly_id]
            if here:
                lead_id = here[0][0]
            elif matches:
                other = matches[0]
        if lead_id is not None:
            await _record_added(
                pending.row_id, campaign_id, lead_id, resolved=index not in created, batch_size=len(batch)
            )
            outcomes["sent"] = outcomes.get("sent", 0) + 1
            MESSAGES_SENT.labels(channel="EMAIL_COLD", type="new").inc()
        elif other is not None:
            await _set_rows(
                [pending],
                MessageStatus.SKIPPED,
                "ALREADY_IN_WORKSPACE",
                f"Instantly already has this lead in campaign {other[1]} (lead {other[0]})",
            )
            outcomes["skipped"] = outcomes.get("skipped", 0) + 1
        else:
            counters = result.model_dump(exclude={"created_leads"})
            await _set_rows(
                [pending],
                MessageStatus.FAILED,
                "NOT_ADDED",
                f"Instantly did not add the lead (block list, invalid address...): {counters}",
            )
            outcomes["failed"] = outcomes.get("failed", 0) + 1
    mine = next((p for p in batch if p.row_id == message_id), None)
    return {"outcome": "added" if mine else "batched", "batch": len(batch), **outcomes}


PrepResult = tuple[uuid.UUID, str, list[Pending]]


async def _prepare(ctx: JobContext, message_id: uuid.UUID) -> PrepResult | dict[str, Any]:
    settings = email_settings()
    now = utcnow()
    async with transaction() as session:
        message = await repository.lock_message(session, message_id)
        if message is None:
            return {"outcome": "missing"}
        if message.status in DONE:
            return {"outcome": f"already-{message.status.value.lower()}"}
        if message.channel != Channel.EMAIL_COLD:
            await _skip(message, "WRONG_CHANNEL")
            return {"outcome": "skipped", "reason": "WRONG_CHANNEL"}
        if message.status == MessageStatus.SENDING:
            since = message.status_updated_at or message.created_at
            grace = 2 * settings.instantly_timeout + IN_FLIGHT_MARGIN
            if now - since < grace:
                # Another job's batch holds it: look again once that batch must have ended.
                await ctx.delay_until(since + grace)
        if await emergency_stop(session) is not None:
            await _skip(message, "EMERGENCY_STOP")
            return {"outcome": "skipped", "reason": "EMERGENCY_STOP"}
        explicit = message.email_campaign_id is not None
        campaign = await repository.campaign_for_message(session, message)
        if campaign is None or campaign.tenant_id != message.tenant_id or not campaign.instantly_campaign_id:
            message.status = MessageStatus.FAILED
            message.error_code = "NO_CAMPAIGN"
            message.error_message = (
                "no Instantly campaign is mapped to this sequence step, sequence or tenant"
            )
            message.status_updated_at = now
            await alerts.trigger(
                session,
                "email:campaign:missing",
                tenant_id=message.tenant_id,
                message="cold email has no Instantly campaign: create one (POST /api/v1/outreach/campaigns)",
            )
            return {"outcome": "failed", "reason": "NO_CAMPAIGN"}
        message.email_campaign_id = campaign.id
        if campaign.status in WAITING:
            # Paused here (operator, breaker) or held by Instantly: nothing is added until resumed.
            await session.commit()
            await ctx.delay_until(now + settings.email_campaign_wait)
        if campaign.status not in ACCEPTING:
            message.status = MessageStatus.FAILED
            message.error_code = "CAMPAIGN_CLOSED"
            message.error_message = f"campaign {campaign.name} is {campaign.status}"
            message.status_updated_at = now
            return {"outcome": "failed", "reason": "CAMPAIGN_CLOSED"}
        rows = [message]
        if message.status == MessageStatus.QUEUED:
            rows += await repository.batch_companions(
                session, message, campaign.id, explicit=explicit, limit=settings.instantly_bulk_size - 1
            )
        batch: list[Pending] = []
        for row in rows:
            pending = await _check(session, row, campaign)
            if pending is None:
                continue
            row.status = MessageStatus.SENDING
            row.status_updated_at = now
            row.email_campaign_id = campaign.id
            if row.id == message.id:
                row.retry_count += 1  # vendor calls made for this row
            row.raw_request = {"instantlyCampaignId": campaign.instantly_campaign_id, "lead": pending.lead}
            batch.append(pending)
        if not batch:
            return {"outcome": f"skipped-{(message.error_code or 'blocked').lower()}"}
        return campaign.id, campaign.instantly_campaign_id, batch


async def _check(session: AsyncSession, row: GoldCommunicationLog, campaign: EmailCampaign) -> Pending | None:
    """The lead of ``row`` if it may be added now; otherwise the row is SKIPPED with the reason."""
    journey = await session.get(GoldLeadJourney, row.lead_journey_id)
    if journey is None:
        await _skip(row, "LEAD_GONE")
        return None
    block = automation_block_reason(journey, Channel.EMAIL_COLD, row.origin)
    if block is not None:
        await _skip(row, block)
        return None
    if row.origin in AUTOMATED_ORIGINS and journey.current_state not in COLD_STATES:
        # A lead that replied gets warm mail (Resend), never the cold campaign.
        await _skip(row, f"LEAD_{journey.current_state.value}")
        return None
    email = (row.email or journey.email or "").strip()
    if not email:
        await _skip(row, "NO_EMAIL_ROUTE")
        return None
    if await suppression.suppressed(session, row.tenant_id, email) is not None:
        await _skip(row, "SUPPRESSED")
        return None
    row.email = email
    company = await session.get(GoldCompany, journey.lead_id)
    contact = (
        await session.get(GoldContact, journey.primary_contact_id) if journey.primary_contact_id else None
    )
    return Pending(row.id, email.lower(), lead_payload(row, journey, company, contact))


async def _skip(message: GoldCommunicationLog, reason: str) -> None:
    message.status = MessageStatus.SKIPPED
    message.error_code = reason
    message.status_updated_at = utcnow()


async def _set_rows(batch: list[Pending], status: MessageStatus, code: str | None, error: str | None) -> int:
    """Set the rows' status; returns the vendor calls made for the first (the job's own) row."""
    if not batch:
        return 0
    tries = 0
    async with transaction() as session:
        for index, pending in enumerate(batch):
            row = await repository.lock_message(session, pending.row_id)
            if row is None or row.status in DONE:
                continue
            if index == 0:
                tries = row.retry_count
            row.status = status
            row.status_updated_at = utcnow()
            row.error_code = code
            row.error_message = error[:500] if error else None
    return tries


async def _record_added(
    row_id: uuid.UUID, campaign_id: uuid.UUID, lead_id: str, *, resolved: bool, batch_size: int
) -> None:
    """The lead is in the campaign: SENT (queued at Instantly), lead CONTACTED_EMAIL."""
    async with transaction() as session:
        row = await repository.lock_message(session, row_id)
        if row is None or row.status in DONE:
            return
        now = utcnow()
        row.status = MessageStatus.SENT
        await record_message_outcome(session, row, Outcome.SENT)
        row.status_updated_at = now
        row.sent_at = now
        row.external_message_id = lead_id
        row.email_campaign_id = campaign_id
        row.error_code = "RESOLVED_AFTER_AMBIGUITY" if resolved else None
        row.error_message = None
        row.raw_response = {"instantlyLeadId": lead_id, "resolvedBySearch": resolved, "batch": batch_size}
        journey = await repository.lock_journey(session, row.lead_journey_id)
        if journey is None:
            return
        if journey.current_state in (LeadState.COLD, LeadState.CONTACTED_WA):
            await transition(
                session,
                journey,
                LeadState.CONTACTED_EMAIL,
                trigger="SEND",
                reason="added to an Instantly campaign",
            )
        journey.first_contact_at = journey.first_contact_at or now
        journey.first_contact_channel = journey.first_contact_channel or Channel.EMAIL_COLD
        journey.last_contact_at = now
        journey.last_channel_used = Channel.EMAIL_COLD
        journey.messages_sent += 1
        if row.enrollment_id is not None:
            await sequences.after_send(
                session, journey, enrollment_id=row.enrollment_id, step_number=row.sequence_step, sent_at=now
            )


async def release_waiting(session: AsyncSession, campaign: EmailCampaign) -> int:
    """After a resume: the campaign's waiting cold messages run now instead of at their next look."""
    ids = await repository.queued_cold_ids(session, campaign)
    if not ids:
        return 0

    async def promote() -> None:
        queue = get_queue(names.EMAIL_COLD)
        for row_id in ids:
            job = await queue.getJob(job_id("cold", row_id))
            if job is None:
                continue
            try:
                if await job.isDelayed():
                    await job.promote()
            except Exception as exc:  # the job moved meanwhile: it runs anyway
                log.debug("email.cold.promote_skipped", job=job.id, error=str(exc)[:200])

    after_commit(session, promote)
    return len(ids)
