"""Fake Instantly API v2 (spec/providers.md §2) with behaviour and fault controls.

Vendor API under ``/instantly`` (a client's base URL is ``http://127.0.0.1:<port>/instantly``),
every path under ``/api/v2``: campaigns (create, list, get, activate, pause), leads (bulk add with
the ``skip_if_*`` flags and the block list, add one, list, get, delete), campaign analytics (and
the overview), block-list entries, webhooks (with the stored ``headers`` echoed on every
delivery, auto-disabled after repeated failures, ``/resume``). Two aliases the operations runbook
uses and real v2 does not have are served as well: ``GET /api/v2/campaign/{id}/analytics`` and
``POST /api/v2/campaign/{id}/resume``.

Behaviour: Bearer key check (401 ``{"statusCode", "error", "message"}``); 100 req/s and
6,000 req/min, then 429. A lead in an active campaign is "sent" its first step after
``send_delay`` seconds (times ``time_scale``; or at once with ``POST /_control/instantly/send-pending``);
then, by seeded chance or by address pattern, it bounces, opens, clicks, replies (Romanian
texts), auto-replies or unsubscribes; each event updates the analytics counters and goes to
the webhook subscribers as a flat payload. With ``bounce_protect_rate`` set, a campaign whose
bounce rate passes it moves to status -2 (Bounce Protect), as Instantly does.

Start-up options (``SandboxOptions`` extras, prefix ``instantly_``): ``api_key``,
``send_delay``, ``auto_send``, ``bounce_rate``, ``open_rate``, ``click_rate``, ``reply_rate``,
``auto_reply_rate``, ``unsubscribe_rate``, ``bounce_pattern``, ``reply_pattern``,
``unsubscribe_pattern``, ``bounce_protect_rate``, ``webhook_disable_after``. Controls under
``/_control/instantly``: ``reset``, ``state``, ``config``, ``faults``, ``campaigns``,
``campaigns/{id}/status``, ``leads``, ``send-pending``, ``events``, ``webhook-deliveries``.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cerniq.sandbox.replies import REPLIES, pick_reply, pick_reply_kind
from cerniq.sandbox.state import LoseResponse, SandboxContext, SandboxHTTPError, TokenBucket

__all__ = ["InstantlyConfig", "InstantlySandbox"]

FaultMode = Literal[
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "timeout",
    "drop_after_accept",
    "hang_after_accept",
]
EventKind = Literal[
    "email_sent",
    "email_opened",
    "link_clicked",
    "reply_received",
    "auto_reply_received",
    "email_bounced",
    "lead_unsubscribed",
    "campaign_completed",
    "account_error",
]
SUBSCRIPTION_TYPES = frozenset(
    {
        "all_events",
        "email_sent",
        "email_opened",
        "email_link_clicked",
        "reply_received",
        "email_bounced",
        "lead_unsubscribed",
        "account_error",
        "campaign_completed",
        "lead_neutral",
        "lead_interested",
        "lead_not_interested",
        "lead_meeting_booked",
        "lead_meeting_completed",
        "lead_closed",
        "lead_out_of_office",
        "lead_wrong_person",
        "lead_no_show",
        "supersearch_enrichment_completed",
    }
)
# Payload name -> subscription name where they differ.
_SUBSCRIBED_AS = {"link_clicked": "email_link_clicked", "auto_reply_received": "reply_received"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PAGE_MAX = 100


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, message: str) -> SandboxHTTPError:
    names = {
        400: "Bad Request",
        401: "Unauthorized",
        402: "Payment Required",
        404: "Not Found",
        429: "Too Many Requests",
        500: "Internal Server Error",
    }
    return SandboxHTTPError(
        status, {"statusCode": status, "error": names.get(status, "Error"), "message": message}
    )


def _id() -> str:
    # UUIDv7-style: time-ordered prefix, like Instantly's ids.
    millis = int(time.time() * 1000)
    raw = uuid.uuid4().int & ((1 << 80) - 1)
    value = (millis << 80) | (0x7 << 76) | (raw & ((1 << 76) - 1))
    return str(uuid.UUID(int=value & ((1 << 128) - 1)))


@dataclass
class CampaignRecord:
    id: str
    name: str
    status: int
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sender_cursor: int = 0

    def senders(self) -> list[str]:
        raw = self.body.get("email_list") or []
        return [str(x) for x in raw] or ["outreach@sandbox-instantly.test"]

    def api(self) -> dict[str, Any]:
        return {
            **self.body,
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "timestamp_created": _iso(self.created_at),
            "timestamp_updated": _iso(self.updated_at),
            "not_sending_status": None if self.status == 1 else self.status,
        }


@dataclass
class LeadRecord:
    id: str
    email: str
    campaign: str | None
    list_id: str | None
    fields: dict[str, Any]
    custom_variables: dict[str, Any]
    created_at: datetime
    status: int = 1
    steps_sent: int = 0
    opens: int = 0
    replies: int = 0
    clicks: int = 0
    pending: bool = True
    last_email_id: str | None = None
    last_contact: datetime | None = None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp_created": _iso(self.created_at),
            "timestamp_updated": _iso(self.last_contact or self.created_at),
            "organization": "sandbox-org",
            "campaign": self.campaign,
            "list_id": self.list_id,
            "status": self.status,
            "email": self.email,
            **{k: v for k, v in self.fields.items() if k != "email"},
            "email_open_count": self.opens,
            "email_reply_count": self.replies,
            "email_click_count": self.clicks,
            "payload": dict(self.custom_variables),
            "verification_status": 1,
            "timestamp_last_contact": _iso(self.last_contact) if self.last_contact else None,
        }


@dataclass
class CampaignEvent:
    kind: str
    lead_id: str
    at: datetime


@dataclass
class WebhookRecord:
    id: str
    target_hook_url: str
    event_type: str | None
    campaign: str | None
    name: str | None
    headers: dict[str, str]
    created_at: datetime
    custom_interest_value: Any = None
    status: int = 1
    consecutive_failures: int = 0
    timestamp_error: datetime | None = None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization": "sandbox-org",
            "campaign": self.campaign,
            "name": self.name,
            "target_hook_url": self.target_hook_url,
            "event_type": self.event_type,
            "custom_interest_value": self.custom_interest_value,
            "headers": dict(self.headers),
            "timestamp_created": _iso(self.created_at),
            "status": self.status,
            "timestamp_error": _iso(self.timestamp_error) if self.timestamp_error else None,
        }


@dataclass
class Fault:
    id: int
    mode: FaultMode
    remaining: int
    target: Literal["write", "read", "any"]
    path: str | None
    delay: float | None
    retry_after: float | None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "remaining": self.remaining,
            "target": self.target,
            "path": self.path,
            "delay": self.delay,
            "retry_after": self.retry_after,
        }


class InstantlyConfig(BaseModel):
    """Behaviour changeable at run time (``POST /_control/instantly/config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    send_delay: float = Field(default=1.0, ge=0)
    """Seconds (times time_scale) from a lead's arrival in an active campaign to its first email."""
    event_delay: float = Field(default=0.5, ge=0)
    """Seconds (times time_scale) between the email and the lead's reaction (bounce, open, reply)."""
    auto_send: bool = True
    bounce_rate: float = Field(default=0.0, ge=0, le=1)
    open_rate: float = Field(default=0.0, ge=0, le=1)
    click_rate: float = Field(default=0.0, ge=0, le=1)
    reply_rate: float = Field(default=0.0, ge=0, le=1)
    auto_reply_rate: float = Field(default=0.0, ge=0, le=1)
    unsubscribe_rate: float = Field(default=0.0, ge=0, le=1)
    reply_mix: dict[str, float] = Field(
        default_factory=lambda: {"positive": 1.0, "question": 1.0, "negative": 1.0}
    )
    bounce_pattern: str = r"^bounce"
    reply_pattern: str = r"^reply"
    unsubscribe_pattern: str = r"^unsub"
    bounce_protect_rate: float | None = Field(default=None, ge=0, le=1)
    bounce_protect_min_sent: int = Field(default=20, ge=1)
    webhook_disable_after: int = Field(default=10, ge=1)
    rate_limit_enabled: bool = True
    rate_per_second: float = Field(default=100.0, gt=0)
    rate_per_minute: float = Field(default=6000.0, gt=0)
    time_scale: float = Field(default=1.0, gt=0)

    @field_validator("bounce_pattern", "reply_pattern", "unsubscribe_pattern")
    @classmethod
    def _regex(cls, pattern: str) -> str:
        re.compile(pattern)
        return pattern

    @field_validator("reply_mix")
    @classmethod
    def _kinds(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = set(mix) - set(REPLIES)
        if unknown:
            raise ValueError(f"unknown reply kinds {sorted(unknown)}")
        return mix


class FaultRequest(BaseModel):
    """``POST /_control/instantly/faults``: the next ``count`` matching requests fail."""

    model_config = ConfigDict(extra="forbid")
    mode: FaultMode
    count: int = Field(default=1, ge=1)
    target: Literal["write", "read", "any"] = "write"
    path: str | None = None
    """Only requests whose path (after ``/api/v2/``) starts with this, e.g. ``leads/add``."""
    delay: float | None = Field(default=None, ge=0)
    retry_after: float | None = Field(default=None, ge=0)


class EventRequest(BaseModel):
    """``POST /_control/instantly/events``: make a lead do something now."""

    model_config = ConfigDict(extra="forbid")
    event_type: EventKind
    lead_id: str | None = None
    email: str | None = None
    campaign_id: str | None = None
    text: str | None = None
    kind: str | None = None
    """Reply kind (``positive``, ``opt_out``...) when no ``text`` is given."""


class StatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: int


def _parse_control(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SandboxHTTPError(
            422, {"error": "invalid control request", "details": json.loads(exc.json())}
        ) from None


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise _error(400, "body must be valid JSON") from None


class InstantlySandbox:
    """The fake Instantly workspace: state, vendor API router and control router."""

    name = "instantly"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.api = APIRouter(prefix="/api/v2", dependencies=[Depends(self._guard)])
        self.control = APIRouter()
        self._second = TokenBucket(100.0, 0)
        self._minute = TokenBucket(100.0, 0)
        self._build_api()
        self._build_control()
        self.reset()

    # --- state ---------------------------------------------------------------------------------

    def _option(self, key: str, default: Any) -> Any:
        return (self.ctx.options.model_extra or {}).get(f"instantly_{key}", default)

    def reset(self) -> None:
        """Back to start-up: no campaigns, leads, block list, webhooks or faults."""
        options = self.ctx.options
        values: dict[str, Any] = {
            "rate_limit_enabled": options.rate_limit_enabled,
            "time_scale": options.time_scale,
        }
        for key in InstantlyConfig.model_fields:
            if key in ("rate_limit_enabled", "time_scale"):
                continue
            marker = object()
            value = self._option(key, marker)
            if value is not marker:
                values[key] = value
        self.config = InstantlyConfig.model_validate(values)
        self._configure_buckets()
        self.api_key = str(self._option("api_key", "sandbox-instantly-key"))
        self.workspace = str(uuid.UUID(int=random.Random(f"{options.seed}:instantly-ws").getrandbits(128)))
        self.campaigns: dict[str, CampaignRecord] = {}
        self.leads: dict[str, LeadRecord] = {}
        self.events: dict[str, list[CampaignEvent]] = {}
        self.blocklist: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, WebhookRecord] = {}
        self.faults: list[Fault] = []
        self.deliveries: list[dict[str, Any]] = []
        self._fault_ids = itertools.count(1)
        self._manual = random.Random(f"{options.seed}:instantly-manual")

    def _configure_buckets(self) -> None:
        self._second.configure(self.config.rate_per_second, 0)
        per_minute = self.config.rate_per_minute
        self._minute.configure(per_minute / 60.0, int(per_minute - per_minute / 60.0))

    def snapshot(self) -> dict[str, Any]:
        return {
            "campaigns": [self._control_campaign(c) for c in self.campaigns.values()],
            "leads": len(self.leads),
            "blocklist": sorted(e["bl_value"] for e in self.blocklist.values()),
            "webhooks": [w.api() for w in self.webhooks.values()],
            "faults": [f.api() for f in self.faults],
            "config": self.config.model_dump(),
            "deliveries": len(self.deliveries),
        }

    def _scaled(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    # --- guard ---------------------------------------------------------------------------------

    async def _guard(self, request: Request) -> None:
        if self.config.rate_limit_enabled and not (self._second.allow() and self._minute.allow()):
            raise _error(429, "Rate limit exceeded")
        header = request.headers.get("authorization", "")
        if not header:
            raise _error(401, "Missing Authorization header")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            raise _error(401, "Invalid API key")
        path = request.url.path.split("/api/v2/", 1)[-1]
        kind: Literal["write", "read"] = "read" if request.method == "GET" else "write"
        fault = self._take_fault(kind, path)
        request.state.fault = fault
        if fault is not None:
            await self._before(fault)

    def _take_fault(self, kind: Literal["write", "read"], path: str) -> Fault | None:
        for fault in self.faults:
            if fault.target not in (kind, "any"):
                continue
            if fault.path is not None and not path.startswith(fault.path):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return fault
        return None

    async def _before(self, fault: Fault) -> None:
        retry = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.mode == "http_429":
            raise SandboxHTTPError(
                429,
                {"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"},
                retry,
            )
        if fault.mode == "http_500":
            raise _error(500, "Internal server error")
        if fault.mode in ("http_502", "http_503", "http_504"):
            status = int(fault.mode[5:])
            raise SandboxHTTPError(status, f"<html><body><h1>{status}</h1></body></html>", retry)
        if fault.mode == "timeout":
            await self.ctx.sleep(fault.delay if fault.delay is not None else self.ctx.options.fault_delay)
            raise SandboxHTTPError(504, "<html><body><h1>504 Gateway Time-out</h1></body></html>")

    async def _after(self, request: Request) -> None:
        """The part of a fault that happens once the request was acted on."""
        fault: Fault | None = getattr(request.state, "fault", None)
        if fault is None:
            return
        if fault.mode == "drop_after_accept":
            raise LoseResponse()
        if fault.mode == "hang_after_accept":
            await self.ctx.sleep(fault.delay if fault.delay is not None else self.ctx.options.fault_delay)

    # --- helpers -------------------------------------------------------------------------------

    def _campaign_or_404(self, campaign_id: str) -> CampaignRecord:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            raise _error(404, f"Campaign {campaign_id} not found")
        return campaign

    def _lead_or_404(self, lead_id: str) -> LeadRecord:
        lead = self.leads.get(lead_id)
        if lead is None:
            raise _error(404, f"Lead {lead_id} not found")
        return lead

    def _blocked(self, email: str) -> bool:
        lowered = email.lower()
        domain = lowered.rsplit("@", 1)[-1]
        for entry in self.blocklist.values():
            value = str(entry["bl_value"]).lower()
            if value == lowered or (entry["is_domain"] and value == domain):
                return True
        return False

    def _set_status(self, campaign: CampaignRecord, status: int) -> None:
        campaign.status = status
        campaign.updated_at = self.ctx.now()
        if status == 1:
            for lead in self.leads.values():
                if lead.campaign == campaign.id and lead.pending:
                    self._schedule_send(lead)

    def _schedule_send(self, lead: LeadRecord) -> None:
        if self.config.auto_send:
            self.ctx.spawn(self._send_later(lead.id, self._scaled(self.config.send_delay)))

    async def _send_later(self, lead_id: str, delay: float) -> None:
        if not await self.ctx.sleep(delay):
            return
        self._send_first_step(lead_id)

    def _send_first_step(self, lead_id: str) -> bool:
        """Email step 1 to a pending lead of an active campaign, then plan its reaction."""
        lead = self.leads.get(lead_id)
        if lead is None or not lead.pending or lead.campaign is None:
            return False
        campaign = self.campaigns.get(lead.campaign)
        if campaign is None or campaign.status != 1 or lead.status != 1:
            return False
        lead.pending = False
        lead.steps_sent = 1
        lead.last_contact = self.ctx.now()
        lead.last_email_id = _id()
        senders = campaign.senders()
        account = senders[campaign.sender_cursor % len(senders)]
        campaign.sender_cursor += 1
        lead.fields["_email_account"] = account
        step = self._step(campaign, 0)
        subject = self._render(step.get("subject", ""), lead)
        body = self._render(step.get("body", ""), lead)
        self._record(campaign, lead, "email_sent")
        self._emit(
            campaign,
            lead,
            "email_sent",
            {
                "email_account": account,
                "step": 1,
                "variant": 1,
                "email_id": lead.last_email_id,
                "email_subject": subject,
                "email_text": body,
                "email_html": f"<div>{body}</div>",
            },
        )
        self._plan_reaction(campaign, lead)
        return True

    @staticmethod
    def _step(campaign: CampaignRecord, index: int) -> dict[str, Any]:
        sequences = campaign.body.get("sequences") or [{}]
        steps = (sequences[0] or {}).get("steps") or [{}]
        step = steps[min(index, len(steps) - 1)] or {}
        variants = step.get("variants") or [{}]
        return dict(variants[0] or {})

    @staticmethod
    def _render(template: str, lead: LeadRecord) -> str:
        values = {**{k: v for k, v in lead.fields.items() if not k.startswith("_")}, **lead.custom_variables}

        def sub(match: re.Match[str]) -> str:
            value = values.get(match.group(1).strip())
            return "" if value is None else str(value)

        return re.sub(r"\{\{\s*([^}]+?)\s*\}\}", sub, str(template))

    def _plan_reaction(self, campaign: CampaignRecord, lead: LeadRecord) -> None:
        cfg = self.config
        rng = random.Random(f"{self.ctx.options.seed}:{campaign.id}:{lead.email}")
        email = lead.email.lower()
        plan: list[str] = []
        if re.search(cfg.bounce_pattern, email) or rng.random() < cfg.bounce_rate:
            plan.append("email_bounced")
        else:
            if rng.random() < cfg.open_rate:
                plan.append("email_opened")
                if rng.random() < cfg.click_rate:
                    plan.append("link_clicked")
            if re.search(cfg.unsubscribe_pattern, email) or rng.random() < cfg.unsubscribe_rate:
                plan.append("lead_unsubscribed")
            elif re.search(cfg.reply_pattern, email) or rng.random() < cfg.reply_rate:
                if "email_opened" not in plan:
                    plan.append("email_opened")
                plan.append("reply_received")
            elif rng.random() < cfg.auto_reply_rate:
                plan.append("auto_reply_received")
        if plan:
            text = pick_reply(rng, pick_reply_kind(rng, cfg.reply_mix))
            self.ctx.spawn(self._react_later(lead.id, plan, text, self._scaled(cfg.event_delay)))

    async def _react_later(self, lead_id: str, plan: list[str], text: str, delay: float) -> None:
        for kind in plan:
            if not await self.ctx.sleep(delay):
                return
            lead = self.leads.get(lead_id)
            if lead is None:
                return
            self._react(lead, kind, text)

    def _react(self, lead: LeadRecord, kind: str, text: str | None = None) -> dict[str, Any]:
        """Apply one lead event: counters, lead status, webhook."""
        campaign = self.campaigns.get(lead.campaign or "")
        if campaign is None:
            raise SandboxHTTPError(422, {"error": "the lead is in no campaign"})
        extra: dict[str, Any] = {
            "email_account": lead.fields.get("_email_account"),
            "step": max(1, lead.steps_sent),
        }
        if kind == "email_sent":
            lead.pending = True
            if not self._send_first_step(lead.id):
                raise SandboxHTTPError(422, {"error": "the lead cannot be sent to (campaign not active?)"})
            return {"event_type": kind}
        if kind == "email_bounced":
            lead.status = -1
        elif kind == "lead_unsubscribed":
            lead.status = -2
        elif kind == "email_opened":
            lead.opens += 1
            extra.update(variant=1, is_first=lead.opens == 1)
        elif kind == "link_clicked":
            lead.clicks += 1
            extra["variant"] = 1
        elif kind in ("reply_received", "auto_reply_received"):
            if kind == "reply_received":
                lead.replies += 1
            reply_text = text or pick_reply(
                self._manual, "out_of_office" if kind == "auto_reply_received" else "positive"
            )
            reply_id = _id()
            extra.update(
                unibox_url=f"https://app.instantly.ai/app/unibox?thread_search={lead.email}",
                email_id=lead.last_email_id or reply_id,
                reply_subject="Re: " + self._render(self._step(campaign, 0).get("subject", ""), lead),
                reply_text=reply_text,
                reply_html=f"<div>{reply_text}</div>",
                reply_text_snippet=reply_text[:100],
            )
        self._record(campaign, lead, kind)
        self._emit(campaign, lead, kind, extra)
        self._check_bounce_protect(campaign)
        return {"event_type": kind, **{k: v for k, v in extra.items() if v is not None}}

    def _record(self, campaign: CampaignRecord, lead: LeadRecord, kind: str) -> None:
        self.events.setdefault(campaign.id, []).append(CampaignEvent(kind, lead.id, self.ctx.now()))

    def _check_bounce_protect(self, campaign: CampaignRecord) -> None:
        limit = self.config.bounce_protect_rate
        if limit is None or campaign.status != 1:
            return
        counts = self._counts(campaign, None, None)
        sent = counts["emails_sent_count"]
        if sent >= self.config.bounce_protect_min_sent and counts["bounced_count"] / sent > limit:
            self._set_status(campaign, -2)

    # --- analytics -----------------------------------------------------------------------------

    def _counts(self, campaign: CampaignRecord, start: date | None, end: date | None) -> dict[str, Any]:
        events = [
            e
            for e in self.events.get(campaign.id, [])
            if (start is None or e.at.date() >= start) and (end is None or e.at.date() <= end)
        ]

        def count(kind: str) -> int:
            return sum(1 for e in events if e.kind == kind)

        def unique(kind: str) -> int:
            return len({e.lead_id for e in events if e.kind == kind})

        leads = [lead for lead in self.leads.values() if lead.campaign == campaign.id]
        return {
            "campaign_name": campaign.name,
            "campaign_id": campaign.id,
            "campaign_status": campaign.status,
            "campaign_is_evergreen": False,
            "leads_count": len(leads),
            "contacted_count": unique("email_sent"),
            "emails_sent_count": count("email_sent"),
            "new_leads_contacted_count": unique("email_sent"),
            "open_count": count("email_opened"),
            "open_count_unique": unique("email_opened"),
            "reply_count": count("reply_received"),
            "reply_count_unique": unique("reply_received"),
            "reply_count_automatic": count("auto_reply_received"),
            "link_click_count": count("link_clicked"),
            "link_click_count_unique": unique("link_clicked"),
            "bounced_count": count("email_bounced"),
            "unsubscribed_count": count("lead_unsubscribed"),
            "completed_count": sum(1 for lead in leads if lead.status in (3, -1, -2)),
            "total_opportunities": 0,
            "total_opportunity_value": 0,
        }

    # --- webhooks out --------------------------------------------------------------------------

    def _emit(
        self, campaign: CampaignRecord, lead: LeadRecord | None, kind: str, extra: dict[str, Any]
    ) -> None:
        body: dict[str, Any] = {}
        if lead is not None:
            # The lead's fields and custom variables arrive merged as top-level keys.
            body.update({k: v for k, v in lead.fields.items() if not k.startswith("_") and k != "email"})
            body.update(lead.custom_variables)
            body["lead_email"] = lead.email
        body.update({k: v for k, v in extra.items() if v is not None})
        body.update(
            {
                "timestamp": _iso(self.ctx.now()),
                "event_type": kind,
                "workspace": self.workspace,
                "campaign_id": campaign.id,
                "campaign_name": campaign.name,
            }
        )
        subscribed_as = _SUBSCRIBED_AS.get(kind, kind)
        for hook in list(self.webhooks.values()):
            if hook.status != 1:
                continue
            if hook.campaign is not None and hook.campaign != campaign.id:
                continue
            if hook.event_type not in ("all_events", subscribed_as, kind):
                continue
            self.ctx.spawn(self._deliver(hook, body))

    async def _deliver(self, hook: WebhookRecord, body: dict[str, Any]) -> None:
        result = await self.ctx.post_webhook(hook.target_hook_url, body, headers=hook.headers)
        if result.ok:
            hook.consecutive_failures = 0
        else:
            hook.consecutive_failures += 1
            hook.timestamp_error = self.ctx.now()
            if hook.consecutive_failures >= self.config.webhook_disable_after:
                hook.status = -1  # auto-disabled; POST /webhooks/{id}/resume re-enables it
        self.deliveries.append(
            {
                "webhook_id": hook.id,
                "event_type": body["event_type"],
                "lead_email": body.get("lead_email"),
                "url": hook.target_hook_url,
                "ok": result.ok,
                "attempts": result.attempts,
                "status_code": result.status_code,
                "error": result.error,
                "at": _iso(self.ctx.now()),
            }
        )

    # --- vendor API ----------------------------------------------------------------------------

    def _build_api(self) -> None:
        api = self.api

        @api.post("/campaigns")
        async def create_campaign(request: Request) -> Any:
            body = await _json(request)
            if not isinstance(body, dict):
                raise _error(400, "body must be object")
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise _error(400, "body must have required property 'name'")
            schedule = body.get("campaign_schedule")
            if not isinstance(schedule, dict) or not isinstance(schedule.get("schedules"), list):
                raise _error(400, "body must have required property 'campaign_schedule'")
            for entry in schedule["schedules"]:
                for key in ("name", "timing", "days", "timezone"):
                    if not isinstance(entry, dict) or key not in entry:
                        raise _error(
                            400, f"body/campaign_schedule/schedules/0 must have required property '{key}'"
                        )
            email_list = body.get("email_list")
            if email_list is not None and (
                not isinstance(email_list, list)
                or not all(isinstance(e, str) and _EMAIL.match(e) for e in email_list)
            ):
                raise _error(400, "body/email_list must be an array of email addresses")
            now = self.ctx.now()
            fields = {k: v for k, v in body.items() if k not in ("id", "status", "name")}
            campaign = CampaignRecord(_id(), name.strip(), 0, fields, now, now)
            self.campaigns[campaign.id] = campaign
            await self._after(request)
            return campaign.api()

        @api.get("/campaigns")
        async def list_campaigns(request: Request) -> Any:
            query = request.query_params
            items = sorted(self.campaigns.values(), key=lambda c: c.id)
            if query.get("search"):
                needle = query["search"].lower()
                items = [c for c in items if needle in c.name.lower()]
            if query.get("status") not in (None, ""):
                items = [c for c in items if str(c.status) == query["status"]]
            return self._page([c.api() for c in items], query.get("limit"), query.get("starting_after"))

        @api.get("/campaigns/analytics")
        async def analytics(request: Request) -> Any:
            ids, start, end = self._analytics_filters(request)
            out = []
            for campaign in self.campaigns.values():
                if ids and campaign.id not in ids:
                    continue
                counts = self._counts(campaign, start, end)
                if counts["emails_sent_count"] == 0 and not self.events.get(campaign.id):
                    continue  # "[] until first send"
                out.append(counts)
            return out

        @api.get("/campaigns/analytics/overview")
        async def overview(request: Request) -> Any:
            ids, start, end = self._analytics_filters(request)
            wanted_status = request.query_params.get("campaign_status")
            total: dict[str, int] = {}
            for campaign in self.campaigns.values():
                if ids and campaign.id not in ids:
                    continue
                if wanted_status not in (None, "") and str(campaign.status) != wanted_status:
                    continue
                for key, value in self._counts(campaign, start, end).items():
                    if isinstance(value, int) and not isinstance(value, bool) and key != "campaign_status":
                        total[key] = total.get(key, 0) + value
            return {**total, "total_interested": 0, "total_meeting_booked": 0}

        @api.get("/campaigns/{campaign_id}")
        async def get_campaign(campaign_id: str) -> Any:
            return self._campaign_or_404(campaign_id).api()

        @api.post("/campaigns/{campaign_id}/activate")
        async def activate(campaign_id: str, request: Request) -> Any:
            campaign = self._campaign_or_404(campaign_id)
            self._set_status(campaign, 1)
            await self._after(request)
            return campaign.api()

        @api.post("/campaigns/{campaign_id}/pause")
        async def pause(campaign_id: str, request: Request) -> Any:
            campaign = self._campaign_or_404(campaign_id)
            self._set_status(campaign, 2)
            await self._after(request)
            return campaign.api()

        # The runbook's (v1-style) paths; real v2 has no such routes.
        @api.get("/campaign/{campaign_id}/analytics")
        async def legacy_analytics(campaign_id: str) -> Any:
            counts = self._counts(self._campaign_or_404(campaign_id), None, None)
            return {
                "campaign_id": campaign_id,
                "sent": counts["emails_sent_count"],
                "opened": counts["open_count"],
                "clicked": counts["link_click_count"],
                "replied": counts["reply_count"],
                "bounced": counts["bounced_count"],
                "unsubscribed": counts["unsubscribed_count"],
            }

        @api.post("/campaign/{campaign_id}/resume")
        async def legacy_resume(campaign_id: str, request: Request) -> Any:
            campaign = self._campaign_or_404(campaign_id)
            self._set_status(campaign, 1)
            await self._after(request)
            return campaign.api()

        @api.post("/leads/add")
        async def bulk_add(request: Request) -> Any:
            body = await _json(request)
            if not isinstance(body, dict):
                raise _error(400, "body must be object")
            leads = body.get("leads")
            if not isinstance(leads, list) or not leads:
                raise _error(400, "body must have required property 'leads'")
            if len(leads) > 1000:
                raise _error(400, "body/leads must NOT have more than 1000 items")
            campaign_id, list_id = body.get("campaign_id"), body.get("list_id")
            if bool(campaign_id) == bool(list_id):
                raise _error(400, "body must have exactly one of 'campaign_id' or 'list_id'")
            campaign = self._campaign_or_404(str(campaign_id)) if campaign_id else None
            result = self._add_leads(campaign, list_id, leads, body)
            await self._after(request)
            return result

        @api.post("/leads")
        async def add_one(request: Request) -> Any:
            body = await _json(request)
            if not isinstance(body, dict):
                raise _error(400, "body must be object")
            campaign = self._campaign_or_404(str(body["campaign"])) if body.get("campaign") else None
            lead_fields = {k: v for k, v in body.items() if not k.startswith("skip_if") and k != "campaign"}
            result = self._add_leads(campaign, body.get("list_id"), [lead_fields], body)
            await self._after(request)
            created = result["created_leads"]
            if created:
                return self.leads[created[0]["id"]].api()
            existing = self._find(campaign.id if campaign else None, [str(body.get("email") or "")])
            return existing[0].api() if existing else {}

        @api.post("/leads/list")
        async def list_leads(request: Request) -> Any:
            body = await _json(request) if await request.body() else {}
            if not isinstance(body, dict):
                raise _error(400, "body must be object")
            contacts = body.get("contacts") or []
            items = self._find(body.get("campaign"), [str(c) for c in contacts] if contacts else None)
            if body.get("list_id"):
                items = [lead for lead in items if lead.list_id == body["list_id"]]
            if body.get("ids"):
                wanted = set(body["ids"])
                items = [lead for lead in items if lead.id in wanted]
            if body.get("search"):
                needle = str(body["search"]).lower()
                items = [lead for lead in items if needle in lead.email.lower()]
            return self._page([lead.api() for lead in items], body.get("limit"), body.get("starting_after"))

        @api.get("/leads/{lead_id}")
        async def get_lead(lead_id: str) -> Any:
            return self._lead_or_404(lead_id).api()

        @api.delete("/leads/{lead_id}")
        async def delete_lead(lead_id: str, request: Request) -> Any:
            lead = self._lead_or_404(lead_id)
            del self.leads[lead_id]
            await self._after(request)
            return lead.api()

        @api.post("/block-lists-entries")
        async def block_one(request: Request) -> Any:
            body = await _json(request)
            value = body.get("bl_value") if isinstance(body, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise _error(400, "body must have required property 'bl_value'")
            entry = self._block(value)
            await self._after(request)
            return entry

        @api.post("/block-lists-entries/bulk-create")
        async def block_many(request: Request) -> Any:
            body = await _json(request)
            values = body.get("bl_values") if isinstance(body, dict) else None
            if not isinstance(values, list) or not values:
                raise _error(400, "body must have required property 'bl_values'")
            items, invalid = [], 0
            for value in values:
                if isinstance(value, str) and ("@" in value or "." in value):
                    items.append(self._block(value))
                else:
                    invalid += 1
            await self._after(request)
            return {"items": items, "valid_count": len(items), "invalid_count": invalid}

        @api.get("/block-lists-entries")
        async def list_blocks(request: Request) -> Any:
            query = request.query_params
            items = sorted(self.blocklist.values(), key=lambda e: str(e["id"]))
            if query.get("domains_only") in ("true", "1"):
                items = [e for e in items if e["is_domain"]]
            if query.get("search"):
                items = [e for e in items if query["search"].lower() in str(e["bl_value"]).lower()]
            return self._page(items, query.get("limit"), query.get("starting_after"))

        @api.delete("/block-lists-entries/{entry_id}")
        async def unblock(entry_id: str) -> Any:
            entry = self.blocklist.pop(entry_id, None)
            if entry is None:
                raise _error(404, f"Block list entry {entry_id} not found")
            return entry

        @api.post("/webhooks")
        async def create_webhook(request: Request) -> Any:
            body = await _json(request)
            if not isinstance(body, dict):
                raise _error(400, "body must be object")
            url = body.get("target_hook_url")
            if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
                raise _error(400, "body must have required property 'target_hook_url'")
            event_type = body.get("event_type", "all_events")
            if event_type is not None and event_type not in SUBSCRIPTION_TYPES:
                raise _error(400, "body/event_type must be equal to one of the allowed values")
            headers = body.get("headers") or {}
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                raise _error(400, "body/headers must be an object of strings")
            hook = WebhookRecord(
                id=_id(),
                target_hook_url=url,
                event_type=event_type,
                campaign=body.get("campaign"),
                name=body.get("name"),
                headers={str(k): str(v) for k, v in headers.items()},
                created_at=self.ctx.now(),
                custom_interest_value=body.get("custom_interest_value"),
            )
            self.webhooks[hook.id] = hook
            await self._after(request)
            return hook.api()

        @api.get("/webhooks")
        async def list_webhooks(request: Request) -> Any:
            query = request.query_params
            items = [w.api() for w in sorted(self.webhooks.values(), key=lambda w: w.id)]
            return self._page(items, query.get("limit"), query.get("starting_after"))

        @api.get("/webhooks/{webhook_id}")
        async def get_webhook(webhook_id: str) -> Any:
            return self._webhook_or_404(webhook_id).api()

        @api.patch("/webhooks/{webhook_id}")
        async def patch_webhook(webhook_id: str, request: Request) -> Any:
            hook = self._webhook_or_404(webhook_id)
            body = await _json(request)
            if not isinstance(body, dict):
                raise _error(400, "body must be object")
            for key in ("target_hook_url", "event_type", "campaign", "name"):
                if key in body:
                    setattr(hook, key, body[key])
            if isinstance(body.get("headers"), dict):
                hook.headers = {str(k): str(v) for k, v in body["headers"].items()}
            return hook.api()

        @api.delete("/webhooks/{webhook_id}")
        async def delete_webhook(webhook_id: str) -> Any:
            hook = self._webhook_or_404(webhook_id)
            del self.webhooks[webhook_id]
            return hook.api()

        @api.post("/webhooks/{webhook_id}/resume")
        async def resume_webhook(webhook_id: str) -> Any:
            hook = self._webhook_or_404(webhook_id)
            hook.status = 1
            hook.consecutive_failures = 0
            return hook.api()

        @api.post("/webhooks/{webhook_id}/test")
        async def test_webhook(webhook_id: str) -> Any:
            hook = self._webhook_or_404(webhook_id)
            body = {
                "timestamp": _iso(self.ctx.now()),
                "event_type": "email_sent",
                "workspace": self.workspace,
                "campaign_id": None,
                "campaign_name": "Test",
                "lead_email": "test@example.com",
            }
            self.ctx.spawn(self._deliver(hook, body))
            return {"success": True}

    def _webhook_or_404(self, webhook_id: str) -> WebhookRecord:
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise _error(404, f"Webhook {webhook_id} not found")
        return hook

    def _analytics_filters(self, request: Request) -> tuple[set[str], date | None, date | None]:
        query = request.query_params
        ids = set(query.getlist("ids")) | set(query.getlist("ids[]"))
        if query.get("id"):
            ids.add(query["id"])
        try:
            start = date.fromisoformat(query["start_date"]) if query.get("start_date") else None
            end = date.fromisoformat(query["end_date"]) if query.get("end_date") else None
        except ValueError:
            raise _error(400, 'querystring/start_date must match format "date"') from None
        return ids, start, end

    @staticmethod
    def _page(items: list[dict[str, Any]], limit: Any, starting_after: Any) -> dict[str, Any]:
        try:
            size = int(limit) if limit not in (None, "") else PAGE_MAX
        except (TypeError, ValueError):
            raise _error(400, "querystring/limit must be integer") from None
        if size < 1 or size > PAGE_MAX:
            raise _error(400, "querystring/limit must be <= 100")
        start = 0
        if starting_after:
            ids = [str(i.get("id")) for i in items]
            start = ids.index(str(starting_after)) + 1 if str(starting_after) in ids else len(items)
        page = items[start : start + size]
        cursor = str(page[-1]["id"]) if page and len(page) == size else None
        return {"items": page, "next_starting_after": cursor}

    def _find(self, campaign_id: str | None, emails: list[str] | None) -> list[LeadRecord]:
        wanted = {e.lower() for e in emails} if emails is not None else None
        out = [
            lead
            for lead in self.leads.values()
            if (campaign_id is None or lead.campaign == campaign_id)
            and (wanted is None or lead.email.lower() in wanted)
        ]
        return sorted(out, key=lambda lead: lead.id)

    def _block(self, value: str) -> dict[str, Any]:
        value = value.strip().lower()
        for entry in self.blocklist.values():
            if entry["bl_value"] == value:
                return entry
        entry = {
            "id": _id(),
            "timestamp_created": _iso(self.ctx.now()),
            "organization_id": "sandbox-org",
            "bl_value": value,
            "is_domain": "@" not in value,
        }
        self.blocklist[str(entry["id"])] = entry
        return entry

    def _add_leads(
        self, campaign: CampaignRecord | None, list_id: Any, leads: list[Any], flags: dict[str, Any]
    ) -> dict[str, Any]:
        skip_workspace = bool(flags.get("skip_if_in_workspace"))
        skip_campaign = bool(flags.get("skip_if_in_campaign")) or skip_workspace
        counters = {
            "in_blocklist": 0,
            "duplicated_leads": 0,
            "skipped_count": 0,
            "invalid_email_count": 0,
            "incomplete_count": 0,
            "duplicate_email_count": 0,
        }
        created: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, raw in enumerate(leads):
            if not isinstance(raw, dict):
                counters["incomplete_count"] += 1
                continue
            email = str(raw.get("email") or "").strip()
            if not email:
                counters["incomplete_count"] += 1
                continue
            if not _EMAIL.match(email):
                counters["invalid_email_count"] += 1
                continue
            key = email.lower()
            if key in seen:
                counters["duplicate_email_count"] += 1
                continue
            seen.add(key)
            if self._blocked(email):
                counters["in_blocklist"] += 1
                continue
            existing = self._find(None, [email])
            if skip_workspace and existing:
                counters["skipped_count"] += 1
                continue
            in_target = [
                lead
                for lead in existing
                if (campaign is not None and lead.campaign == campaign.id)
                or (list_id and lead.list_id == list_id)
            ]
            if in_target:
                counters["skipped_count" if skip_campaign else "duplicated_leads"] += 1
                continue
            variables = raw.get("custom_variables") or {}
            if not isinstance(variables, dict) or any(isinstance(v, dict | list) for v in variables.values()):
                counters["incomplete_count"] += 1
                continue
            fields = {
                k: v
                for k, v in raw.items()
                if k
                in (
                    "first_name",
                    "last_name",
                    "company_name",
                    "job_title",
                    "phone",
                    "website",
                    "personalization",
                    "lt_interest_status",
                )
            }
            lead = LeadRecord(
                id=_id(),
                email=email,
                campaign=campaign.id if campaign else None,
                list_id=str(list_id) if list_id else None,
                fields=fields,
                custom_variables=dict(variables),
                created_at=self.ctx.now(),
            )
            self.leads[lead.id] = lead
            created.append({"index": index, "id": lead.id, "email": email})
            if campaign is not None and campaign.status == 1:
                self._schedule_send(lead)
        return {
            "status": "success",
            "total_sent": len(leads),
            "leads_uploaded": len(created),
            "blocklist_used": None,
            **counters,
            "remaining_in_plan": 100_000 - len(self.leads),
            "created_leads": created,
        }

    # --- control API ---------------------------------------------------------------------------

    def _control_campaign(self, campaign: CampaignRecord) -> dict[str, Any]:
        return {**campaign.api(), "analytics": self._counts(campaign, None, None)}

    def _build_control(self) -> None:
        control = self.control

        @control.post("/reset")
        async def reset() -> dict[str, Any]:
            await self.ctx.cancel_background()
            self.reset()
            return {"ok": True}

        @control.get("/state")
        async def state() -> dict[str, Any]:
            return self.snapshot()

        @control.get("/config")
        async def get_config() -> dict[str, Any]:
            return self.config.model_dump()

        @control.post("/config")
        async def set_config(request: Request) -> dict[str, Any]:
            body = await request.json()
            if not isinstance(body, dict):
                raise SandboxHTTPError(422, {"error": "config must be an object"})
            unknown = set(body) - set(InstantlyConfig.model_fields)
            if unknown:
                raise SandboxHTTPError(422, {"error": f"unknown config keys {sorted(unknown)}"})
            try:
                self.config = InstantlyConfig.model_validate({**self.config.model_dump(), **body})
            except ValidationError as exc:
                raise SandboxHTTPError(
                    422, {"error": "invalid config", "details": json.loads(exc.json())}
                ) from None
            self._configure_buckets()
            return self.config.model_dump()

        @control.get("/faults")
        async def list_faults() -> list[dict[str, Any]]:
            return [f.api() for f in self.faults]

        @control.post("/faults")
        async def add_fault(request: Request) -> dict[str, Any]:
            spec: FaultRequest = _parse_control(FaultRequest, await request.json())
            fault = Fault(
                next(self._fault_ids),
                spec.mode,
                spec.count,
                spec.target,
                spec.path,
                spec.delay,
                spec.retry_after,
            )
            self.faults.append(fault)
            return fault.api()

        @control.delete("/faults")
        async def clear_faults() -> dict[str, Any]:
            self.faults.clear()
            return {"ok": True}

        @control.get("/campaigns")
        async def campaigns() -> list[dict[str, Any]]:
            return [self._control_campaign(c) for c in self.campaigns.values()]

        @control.post("/campaigns/{campaign_id}/status")
        async def set_status(campaign_id: str, request: Request) -> dict[str, Any]:
            spec: StatusRequest = _parse_control(StatusRequest, await request.json())
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                raise SandboxHTTPError(404, {"error": f"campaign {campaign_id} not found"})
            self._set_status(campaign, spec.status)
            return self._control_campaign(campaign)

        @control.get("/leads")
        async def leads(campaign_id: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
            found = self._find(campaign_id, [email] if email else None)
            return [{**lead.api(), "steps_sent": lead.steps_sent, "pending": lead.pending} for lead in found]

        @control.post("/send-pending")
        async def send_pending() -> dict[str, Any]:
            sent = 0
            for lead in sorted(self.leads.values(), key=lambda x: x.id):
                if self._send_first_step(lead.id):
                    sent += 1
            return {"sent": sent}

        @control.post("/events")
        async def force_event(request: Request) -> dict[str, Any]:
            spec: EventRequest = _parse_control(EventRequest, await request.json())
            lead = self._control_lead(spec)
            text = spec.text
            if text is None and spec.kind is not None:
                if spec.kind not in REPLIES:
                    raise SandboxHTTPError(
                        422, {"error": f"unknown kind {spec.kind!r}", "kinds": sorted(REPLIES)}
                    )
                text = pick_reply(self._manual, spec.kind)
            if spec.event_type in ("campaign_completed", "account_error"):
                campaign = self.campaigns.get(spec.campaign_id or (lead.campaign if lead else "") or "")
                if campaign is None:
                    raise SandboxHTTPError(404, {"error": "campaign not found"})
                if spec.event_type == "campaign_completed":
                    self._set_status(campaign, 3)
                self._emit(campaign, None, spec.event_type, {})
                return {"event_type": spec.event_type}
            if lead is None:
                raise SandboxHTTPError(404, {"error": "lead not found"})
            return self._react(lead, spec.event_type, text)

        @control.get("/webhook-deliveries")
        async def deliveries() -> list[dict[str, Any]]:
            return list(self.deliveries)

    def _control_lead(self, spec: EventRequest) -> LeadRecord | None:
        if spec.lead_id:
            return self.leads.get(spec.lead_id)
        if spec.email:
            found = self._find(spec.campaign_id, [spec.email])
            return found[-1] if found else None
        return None
