"""``cerniq reviews``: the human review queue from the terminal (runbook §5)."""

from __future__ import annotations

import getpass
import json
import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from cerniq.cli.common import console, resolve_tenant_id, run
from cerniq.models.enums import ReviewPriority

app = typer.Typer(
    help="Human review queue: list, show, assign, resolve, escalate, SLA check.", no_args_is_help=True
)

TenantOption = Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")]
_STYLE = {"URGENT": "bold red", "HIGH": "yellow", "MEDIUM": "cyan", "LOW": "dim"}


def _cli_principal(tenant_id: uuid.UUID) -> Any:
    """The person at the terminal: a human actor (``cli:<login>``), so their actions count for
    the SLA."""
    from cerniq.auth.principal import Principal
    from cerniq.models.enums import Role

    try:
        login = getpass.getuser()
    except Exception:
        login = "cli"
    return Principal(
        tenant_id=tenant_id, role=Role.ADMIN, actor_type="cli", actor_id=login, actor_label=login
    )


def _review_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise typer.BadParameter(f"not a review id: {raw!r}") from None


def _print_review(item: dict[str, Any]) -> None:
    style = _STYLE.get(item["priority"], "")
    console.print(
        f"[{style}]{item['priority']}[/{style}] {item['status']}  review {item['id']}  "
        f"{(item.get('company') or {}).get('denumire') or ''}"
    )
    console.print(
        f"  reason {item['reason']} · SLA {item['slaDueAt']}"
        + (" [red](breached)[/red]" if item["slaBreached"] else "")
        + f" · assigned {item.get('assignedTo') or '-'} · escalated {item.get('escalatedTo') or '-'}"
        f" (level {item['escalationLevel']})"
    )
    if item.get("resolutionAction"):
        console.print(
            f"  resolved {item['resolutionAction']} by {item['resolvedBy']} at {item['resolvedAt']}"
        )


@app.command("list")
def list_reviews(
    status: Annotated[
        str | None, typer.Option(help="Status(es), comma-separated; OPEN (default) or ALL")
    ] = None,
    priority: Annotated[str | None, typer.Option(help="URGENT, HIGH, MEDIUM, LOW (comma-separated)")] = None,
    breached: Annotated[bool, typer.Option("--breached", help="Only reviews past their SLA")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON")] = False,
    tenant: TenantOption = None,
) -> None:
    """The review queue, URGENT first then by SLA deadline, with the open counts."""
    from cerniq.kit.db import transaction
    from cerniq.kit.pagination import PageParams
    from cerniq.reviews import service

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            result = await service.list_view(
                session,
                _cli_principal(tenant_id),
                status=status,
                priority=priority,
                sla_breached=True if breached else None,
                page=PageParams(page=1, limit=limit),
            )
        if as_json:
            console.print_json(json.dumps(result))
            return
        table = Table(
            "priority", "status", "id", "company", "reason", "SLA due (UTC)", "breached", "assigned"
        )
        for item in result["reviews"]:
            style = _STYLE.get(item["priority"], "")
            table.add_row(
                f"[{style}]{item['priority']}[/{style}]",
                item["status"],
                item["id"],
                (item["company"] or {}).get("denumire") or "",
                item["reason"],
                item["slaDueAt"],
                "yes" if item["slaBreached"] else "",
                item["assignedTo"] or "",
            )
        console.print(table)
        counts = result["counts"]
        console.print(
            f"{result['meta']['total']} listed · open {counts['total']} "
            f"(URGENT {counts['URGENT']}, HIGH {counts['HIGH']}, MEDIUM {counts['MEDIUM']}, "
            f"LOW {counts['LOW']}) · SLA breached {counts['slaBreached']}"
        )

    run(action)


@app.command("show")
def show(
    review_id: Annotated[str, typer.Argument(help="Review id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    tenant: TenantOption = None,
) -> None:
    """One review: the lead, the last messages, the suggested answer and the audit trail."""
    from cerniq.kit.db import transaction
    from cerniq.reviews import service

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            item = await service.detail_view(session, tenant_id, _review_id(review_id))
        if as_json:
            console.print_json(json.dumps(item))
            return
        _print_review(item)
        console.print(f"  lead {item['lead']['id']} ({item['lead']['currentState']})")
        console.print(f"  trigger: {item['triggerContent'] or ''}", markup=False)
        if item["suggestedResponse"]:
            console.print(f"  suggested: {item['suggestedResponse']}", markup=False)
        console.print("[bold]Conversation[/bold]")
        for message in item["messages"]:
            arrow = "<-" if message["direction"] == "INBOUND" else "->"
            console.print(
                f"  {message['createdAt']} {arrow} {message['channel']} {message['status']}: "
                f"{(message['content'] or '')[:200]}",
                markup=False,
            )
        console.print("[bold]Audit trail[/bold]")
        for entry in item["auditTrail"]:
            console.print(
                f"  {entry['performedAt']} {entry['action']} by {entry['performedBy']}: "
                f"{entry['notes'] or ''}",
                markup=False,
            )

    run(action)


@app.command("assign")
def assign(
    review_id: Annotated[str, typer.Argument(help="Review id")],
    user: Annotated[str, typer.Argument(help="The user's email (or id)")],
    notes: Annotated[str | None, typer.Option(help="Why")] = None,
    tenant: TenantOption = None,
) -> None:
    """Give a review to a user: ASSIGNED."""
    from cerniq.kit.db import transaction
    from cerniq.reviews import service

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            target = await service.resolve_user(session, tenant_id, user)
            review = await service.assign(
                session, _cli_principal(tenant_id), _review_id(review_id), target.id, notes=notes
            )
            item = await service.view_of(session, review)
        _print_review(item)

    run(action)


@app.command("resolve")
def resolve(
    review_id: Annotated[str, typer.Argument(help="Review id")],
    action_name: Annotated[
        str,
        typer.Option(
            "--action", help="APPROVE, EDIT, CUSTOM, REJECT, MARK_DEAD, PAUSE_LEAD, TAKEOVER or IGNORE"
        ),
    ],
    text: Annotated[str | None, typer.Option(help="The text to send (EDIT, CUSTOM)")] = None,
    notes: Annotated[str | None, typer.Option(help="Notes kept with the review")] = None,
    tenant: TenantOption = None,
) -> None:
    """Resolve a review; APPROVE, EDIT and CUSTOM send the answer through the send path."""
    from pydantic import ValidationError

    from cerniq.kit.db import transaction
    from cerniq.reviews import service
    from cerniq.reviews.schemas import ResolveAction, ResolveBody

    try:
        body = ResolveBody.model_validate({"action": action_name, "notes": notes})
    except ValidationError:
        raise typer.BadParameter(
            f"--action must be one of {', '.join(a.value for a in ResolveAction)}", param_hint="--action"
        ) from None
    if body.action == ResolveAction.EDIT:
        body.editedContent = text
    elif body.action == ResolveAction.CUSTOM:
        body.customResponse = text

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            result = await service.resolve(session, _cli_principal(tenant_id), _review_id(review_id), body)
        _print_review(result["review"])
        console.print(
            f"lead state {result['newLeadState']}"
            + (f" · message {result['messageId']} queued" if result["messageSent"] else " · nothing sent")
        )

    run(action)


@app.command("escalate")
def escalate(
    review_id: Annotated[str, typer.Argument(help="Review id")],
    to: Annotated[str, typer.Option("--to", help="manager, team_lead, on_call or a user id")],
    reason: Annotated[str, typer.Option(help="Why (at least 10 characters, e.g. SLA_BREACH_UNRESPONDED)")],
    tenant: TenantOption = None,
) -> None:
    """Escalate a review (runbook 5.1 step 4)."""
    from cerniq.kit.db import transaction
    from cerniq.reviews import service

    if len(reason.strip()) < 10:
        raise typer.BadParameter("the reason needs at least 10 characters", param_hint="--reason")

    async def action() -> None:
        tenant_id = await resolve_tenant_id(tenant)
        async with transaction() as session:
            review = await service.escalate(
                session,
                _cli_principal(tenant_id),
                _review_id(review_id),
                escalate_to=to,
                reason=reason.strip(),
            )
            item = await service.view_of(session, review)
        _print_review(item)

    run(action)


@app.command("sla-check")
def sla_check() -> None:
    """Run the SLA monitor now (it also runs every minute in the worker)."""
    from cerniq.reviews import service

    async def action() -> None:
        report = await service.check_slas()
        table = Table("what", "count")
        for key, value in report.as_dict().items():
            if key != "queue_size":
                table.add_row(key.replace("_", " "), str(value))
        console.print(table)
        sizes = ", ".join(f"{p.value} {report.queue_size.get(p.value, 0)}" for p in reversed(ReviewPriority))
        console.print(f"open reviews: {sizes}")

    run(action)
