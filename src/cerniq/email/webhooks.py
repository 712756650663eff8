"""The Instantly and Resend webhook sources (registered with :mod:`cerniq.webhooks.registry`).

Instantly signs nothing: the webhook is created with our secret in a custom header
(``X-Webhook-Secret`` by default, ``cerniq email setup-webhooks``) and every delivery must carry
it (constant-time compare), else 401. Its events have no id: the key is event type + email id
(or lead address) + timestamp. Events: sent, opened, link clicked, reply received, auto-reply,
bounced, unsubscribed, interest-status changes, campaign completed, account error.

Resend signs with Svix: ``svix-id``, ``svix-timestamp`` (5-minute tolerance) and
``svix-signature`` verified against the ``whsec_`` secret over the raw body, else 401; the key
is the ``svix-id`` (kept on retries). Events: sent, delivered, delivery delayed, bounced,
complained, opened, clicked, failed, suppressed.

Every rejection is counted in ``cerniq_email_webhook_rejected_total{provider, reason}``. Email
replies go through the same pipeline as WhatsApp replies
(:func:`cerniq.replies.service.record_inbound`: log row, lead state, triage, review).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import Request
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.config import get_settings
from cerniq.email import repository, suppression
from cerniq.email.config import email_settings
from cerniq.errors import Unauthorized
from cerniq.kit.clock import utcnow
from cerniq.models import EmailCampaign, GoldCommunicationLog, GoldLeadJourney, WebhookEvent
from cerniq.models.enums import Channel, MessageStatus, SuppressionReason
from cerniq.ops import alerts
from cerniq.providers.instantly.schemas import InstantlyWebhookEvent
from cerniq.providers.resend.schemas import ResendEvent
from cerniq.providers.resend.svix import SignatureError, verify
from cerniq.webhooks.registry import Ignore, Quarantine, WebhookSource, register

__all__ = [
    "INSTANTLY",
    "RESEND",
    "WEBHOOKS_REJECTED",
    "authenticate_instantly",
    "authenticate_resend",
    "instantly_event_key",
    "process_instantly",
    "process_resend",
]

WEBHOOKS_REJECTED = Counter(
    "cerniq_email_webhook_rejected_total",
    "Email webhooks refused as forged or stale",
    ["provider", "reason"],
)

# How far each event moves an outbound row; a late event never moves it back.
_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.AMBIGUOUS: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.OPENED: 4,
    MessageStatus.CLICKED: 5,
    MessageStatus.REPLIED: 6,
}
_NOT_YET_RECORDED = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.AMBIGUOUS)
_TAGS = re.compile(r"<[^>]+>")


class SendNotRecorded(RuntimeError):
    """The event overtook the send path (the row is not SENT yet): retried shortly."""


def _advance(message: GoldCommunicationLog, status: MessageStatus) -> None:
    current = _RANK.get(message.status)
    if current is None:  # BOUNCED, FAILED, SKIPPED stay as they are
        return
    if _RANK[status] > current:
        message.status = status
        message.status_updated_at = utcnow()


def _header(request: Request, name: str) -> str:
    return request.headers.get(name) or ""


# --- Instantly ---------------------------------------------------------------------------------


def authenticate_instantly(request: Request, raw_body: bytes) -> uuid.UUID | None:
    """The secret header we set on the webhook must match; the tenant comes from the campaign."""
    del raw_body
    secret = get_settings().instantly_webhook_secret.get_secret_value()
    given = _header(request, email_settings().instantly_webhook_header)
    if not secret:
        WEBHOOKS_REJECTED.labels(provider="instantly", reason="not_configured").inc()
        raise Unauthorized(
            "Instantly webhooks are not configured (CERNIQ_INSTANTLY_WEBHOOK_SECRET)",
            code="WEBHOOK_NOT_CONFIGURED",
        )
    if not given:
        WEBHOOKS_REJECTED.labels(provider="instantly", reason="missing_secret").inc()
        raise Unauthorized("the webhook secret header is missing", code="INVALID_WEBHOOK_SECRET")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        WEBHOOKS_REJECTED.labels(provider="instantly", reason="bad_secret").inc()
        raise Unauthorized("the webhook secret header does not match", code="INVALID_WEBHOOK_SECRET")
    return None


def instantly_event_type(payload: dict[str, Any]) -> str:
    value = payload.get("event_type")
    return value if isinstance(value, str) else ""


def instantly_event_key(payload: dict[str, Any], headers: Mapping[str, str]) -> str:
    """Instantly sends no event id: type + email id (or lead address) + campaign + timestamp."""
    del headers
    kind = instantly_event_type(payload)
    if not kind:
        raise ValueError("the body has no event_type")
    subject = payload.get("email_id") or payload.get("lead_email") or ""
    raw = f"{kind}|{subject}|{payload.get('campaign_id') or ''}|{payload.get('timestamp') or ''}"
    if not subject and not payload.get("timestamp"):
        raw += "|" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{kind}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


async def process_instantly(session: AsyncSession, row: WebhookEvent) -> None:
    """Act on one stored Instantly event (in the webhook job's transaction)."""
    try:
        event = InstantlyWebhookEvent.model_validate(row.payload)
    except ValidationError as exc:
        raise Quarantine(f"unknown shape: {exc.errors()[:1]}") from None
    kind = event.event_type
    campaign = (
        await repository.campaign_by_instantly_id(session, event.campaign_id) if event.campaign_id else None
    )
    tenant_id = row.tenant_id or (campaign.tenant_id if campaign is not None else None)
    if tenant_id is None:
        raise Quarantine(f"no campaign of ours has the Instantly id {event.campaign_id!r}")
    row.tenant_id = tenant_id
    at = event.timestamp or utcnow()
    if kind == "campaign_completed":
        if campaign is not None:
            campaign.instantly_status = 3
            if campaign.status != "PAUSED":
                campaign.status = "COMPLETED"
        return
    if kind == "account_error":
        await alerts.trigger(
            session,
            "email:account:error",
            subject=event.email_account or event.campaign_id,
            tenant_id=tenant_id,
            message=f"Instantly reports a sending-account error ({event.email_account or 'unknown account'})",
            details={"campaignId": event.campaign_id, "campaignName": event.campaign_name},
        )
        return
    if not event.lead_email:
        raise Ignore(f"{kind} without lead_email")
    journey = await _instantly_journey(session, tenant_id, event)
    if journey is None:
        raise Quarantine(f"no lead with the address {event.lead_email}")
    row.lead_journey_id = journey.id
    message = await _instantly_row(session, tenant_id, journey, campaign, event)
    if message is not None and message.status in _NOT_YET_RECORDED:
        raise SendNotRecorded("the Instantly add is still being recorded")
    if kind == "email_sent":
        journey.last_contact_at = max(journey.last_contact_at or at, at)
        return
    if kind == "email_opened":
        if message is not None:
            message.opened_at = message.opened_at or at
            _advance(message, MessageStatus.OPENED)
        journey.open_count += 1
        journey.last_open_at = at
        return
    if kind in ("link_clicked", "email_link_clicked"):
        if message is not None:
            message.clicked_at = message.clicked_at or at
            _advance(message, MessageStatus.CLICKED)
        journey.click_count += 1
        return
    if kind in ("reply_received", "auto_reply_received"):
        await _instantly_reply(session, row, journey, message, event, at)
        return
    if kind == "email_bounced":
        extras = event.extras
        bounce_type = suppression.normalize_bounce_type(
            extras.get("bounce_type")
            or extras.get("bounceType")
            or ("soft" if extras.get("is_soft") else "hard")
        )
        reason = str(extras.get("bounce_reason") or extras.get("reason") or "Instantly reported a bounce")
        await suppression.record_bounce(
            session,
            tenant_id=tenant_id,
            email=event.lead_email,
            bounce_type=bounce_type,
            reason=reason,
            source="instantly",
            message=message,
            journey=journey,
            at=at,
            details={"campaignId": event.campaign_id, "emailAccount": event.email_account},
        )
        return
    if kind == "lead_unsubscribed":
        await suppression.opt_out_of_email(
            session,
            tenant_id=tenant_id,
            email=event.lead_email,
            reason=SuppressionReason.UNSUBSCRIBE,
            source="instantly",
            journey=journey,
            message=message,
            at=at,
            details={"campaignId": event.campaign_id},
        )
        return
    if kind.startswith("lead_"):
        # Interest status set in Instantly (interested, meeting booked, wrong person...): kept on
        # the lead for the operator; the reply itself drives the state machine.
        journey.custom_fields = {
            **(journey.custom_fields or {}),
            "instantlyInterest": kind,
            "instantlyInterestAt": at.isoformat(),
        }
        return
    raise Ignore(f"{kind} events need no action")


async def _instantly_journey(
    session: AsyncSession, tenant_id: uuid.UUID, event: InstantlyWebhookEvent
) -> GoldLeadJourney | None:
    lead_ref = event.extras.get("cerniq_lead_id")
    if isinstance(lead_ref, str):
        try:
            journey = await session.get(GoldLeadJourney, uuid.UUID(lead_ref))
        except ValueError:
            journey = None
        if journey is not None and journey.tenant_id == tenant_id:
            return journey
    return await repository.journey_by_email(session, tenant_id, event.lead_email or "")


async def _instantly_row(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    journey: GoldLeadJourney,
    campaign: EmailCampaign | None,
    event: InstantlyWebhookEvent,
) -> GoldCommunicationLog | None:
    ref = event.extras.get("cerniq_message_id")
    if isinstance(ref, str):
        try:
            message = await repository.lock_message(session, uuid.UUID(ref))
        except ValueError:
            message = None
        if message is not None and message.tenant_id == tenant_id:
            return message
    return await repository.outbound_email_row(
        session,
        tenant_id,
        channel=Channel.EMAIL_COLD,
        journey_id=journey.id,
        campaign_id=campaign.id if campaign is not None else None,
    )


async def _instantly_reply(
    session: AsyncSession,
    row: WebhookEvent,
    journey: GoldLeadJourney,
    message: GoldCommunicationLog | None,
    event: InstantlyWebhookEvent,
    at: datetime,
) -> None:
    from cerniq.replies.service import record_inbound

    text = event.reply_text or event.reply_text_snippet or _TAGS.sub(" ", event.reply_html or "").strip()
    if message is not None and event.event_type == "reply_received":
        message.replied_at = message.replied_at or at
        _advance(message, MessageStatus.REPLIED)
    await record_inbound(
        session,
        journey,
        channel=Channel.EMAIL_COLD,
        external_message_id=f"instantly:{row.event_key}",
        text=text or "",
        received_at=at,
        thread_id=event.email_id,
        email=event.lead_email,
        subject=event.reply_subject,
        payload={
            "provider": "instantly",
            "eventType": event.event_type,
            "emailId": event.email_id,
            "uniboxUrl": event.unibox_url,
            "campaignId": event.campaign_id,
            "emailAccount": event.email_account,
        },
    )


# --- Resend ------------------------------------------------------------------------------------


def authenticate_resend(request: Request, raw_body: bytes) -> uuid.UUID | None:
    """Verify the Svix signature over the raw body; the tenant is the ``tenant_id`` tag."""
    secret = get_settings().resend_webhook_secret.get_secret_value()
    if not secret:
        WEBHOOKS_REJECTED.labels(provider="resend", reason="not_configured").inc()
        raise Unauthorized(
            "Resend webhooks are not configured (CERNIQ_RESEND_WEBHOOK_SECRET)", code="WEBHOOK_NOT_CONFIGURED"
        )
    try:
        verify(secret, {k.lower(): v for k, v in request.headers.items()}, raw_body)
    except SignatureError as exc:
        WEBHOOKS_REJECTED.labels(provider="resend", reason=exc.reason).inc()
        raise Unauthorized(f"Svix signature rejected: {exc.message}", code="INVALID_SIGNATURE") from None
    except ValueError:
        WEBHOOKS_REJECTED.labels(provider="resend", reason="bad_secret_config").inc()
        raise Unauthorized(
            "the configured Resend webhook secret is not whsec_<base64>", code="WEBHOOK_NOT_CONFIGURED"
        ) from None
    try:
        body = json.loads(raw_body)
        tag = body["data"]["tags"]["tenant_id"]
        return uuid.UUID(str(tag))
    except (ValueError, KeyError, TypeError):
        return None


def resend_event_type(payload: dict[str, Any]) -> str:
    value = payload.get("type")
    return value if isinstance(value, str) else ""


def resend_event_key(payload: dict[str, Any], headers: Mapping[str, str]) -> str:
    """The ``svix-id``: the same on every retry of one event."""
    del payload
    value = headers.get("svix-id")
    if not value:
        raise ValueError("no svix-id header")
    return value


async def process_resend(session: AsyncSession, row: WebhookEvent) -> None:
    """Act on one stored Resend event (in the webhook job's transaction)."""
    from cerniq.email.warm import mark_sent

    try:
        event = ResendEvent.parse(row.payload)
    except ValidationError as exc:
        raise Quarantine(f"unknown shape: {exc.errors()[:1]}") from None
    if not event.type.startswith("email."):
        raise Ignore(f"{event.type} events are not used")
    data = event.data
    message = await _resend_row(session, row.tenant_id, data.tags, data.email_id)
    if message is None:
        raise Quarantine(f"no warm email of ours has the Resend id {data.email_id!r}")
    row.tenant_id = message.tenant_id
    row.lead_journey_id = message.lead_journey_id
    if message.status in _NOT_YET_RECORDED and data.email_id:
        # The event overtook the send job's answer: Resend has the email, record it now.
        await mark_sent(session, message, data.email_id)
    journey = await session.get(GoldLeadJourney, message.lead_journey_id)
    at = event.created_at or utcnow()
    address = message.email or (data.to[0] if data.to else "")
    kind = event.type
    if kind == "email.sent":
        return
    if kind == "email.delivered":
        message.delivered_at = message.delivered_at or at
        _advance(message, MessageStatus.DELIVERED)
        if message.error_code == "DELIVERY_DELAYED":
            message.error_code = None
            message.error_message = None
        return
    if kind == "email.delivery_delayed":
        if _RANK.get(message.status, 99) < _RANK[MessageStatus.DELIVERED]:
            message.error_code = "DELIVERY_DELAYED"
            message.error_message = "Resend reports a temporary delivery problem; it keeps trying"
        return
    if kind == "email.opened":
        message.opened_at = message.opened_at or at
        _advance(message, MessageStatus.OPENED)
        if journey is not None:
            journey.open_count += 1
            journey.last_open_at = at
        return
    if kind == "email.clicked":
        message.clicked_at = message.clicked_at or at
        link = (data.click or {}).get("link")
        message.click_url = str(link)[:2000] if link else message.click_url
        _advance(message, MessageStatus.CLICKED)
        if journey is not None:
            journey.click_count += 1
        return
    if kind == "email.bounced":
        bounce = data.bounce
        bounce_type = suppression.normalize_bounce_type(bounce.type if bounce else "Permanent")
        reason = ": ".join(
            p for p in ((bounce.subType if bounce else None), (bounce.message if bounce else None)) if p
        )
        await suppression.record_bounce(
            session,
            tenant_id=message.tenant_id,
            email=address,
            bounce_type=bounce_type,
            reason=reason or "Resend reported a bounce",
            source="resend",
            message=message,
            journey=journey,
            at=at,
            details={"emailId": data.email_id},
        )
        return
    if kind == "email.complained":
        await suppression.opt_out_of_email(
            session,
            tenant_id=message.tenant_id,
            email=address,
            reason=SuppressionReason.COMPLAINT,
            source="resend",
            journey=journey,
            message=message,
            at=at,
            details={"emailId": data.email_id},
        )
        return
    if kind in ("email.failed", "email.suppressed"):
        detail = data.failed if kind == "email.failed" else data.suppressed
        message.status = MessageStatus.FAILED
        message.status_updated_at = utcnow()
        message.error_code = "VENDOR_FAILED" if kind == "email.failed" else "SUPPRESSED_AT_VENDOR"
        message.error_message = json.dumps(detail or {}, ensure_ascii=False)[:500]
        if kind == "email.suppressed":
            await repository.upsert_suppression(
                session,
                tenant_id=message.tenant_id,
                value=address,
                reason=SuppressionReason.HARD_BOUNCE,
                source="resend:suppressed",
                journey_id=message.lead_journey_id,
                permanent=True,
                expires_at=None,
                bounce_count=0,
                details=dict(detail or {}),
            )
        return
    raise Ignore(f"{kind} events need no action")


async def _resend_row(
    session: AsyncSession, tenant_id: uuid.UUID | None, tags: dict[str, str], email_id: str | None
) -> GoldCommunicationLog | None:
    ref = tags.get("message_id")
    if ref:
        try:
            message = await repository.lock_message(session, uuid.UUID(ref))
        except ValueError:
            message = None
        same_tenant = message is not None and (tenant_id is None or message.tenant_id == tenant_id)
        if message is not None and same_tenant and message.channel == Channel.EMAIL_WARM:
            return message
    if not email_id or tenant_id is None:
        return None
    return await repository.outbound_email_row(
        session, tenant_id, channel=Channel.EMAIL_WARM, external_id=email_id
    )


INSTANTLY = WebhookSource(
    name="instantly",
    authenticate=authenticate_instantly,
    event_key=instantly_event_key,
    event_type=instantly_event_type,
    process=process_instantly,
)
RESEND = WebhookSource(
    name="resend",
    authenticate=authenticate_resend,
    event_key=resend_event_key,
    event_type=resend_event_type,
    process=process_resend,
)
register(INSTANTLY)
register(RESEND)
