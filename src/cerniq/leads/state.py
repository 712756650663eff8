"""The lead state machine: the one function that moves a lead.

The allowed moves are the table of the digest (§3, worker #35), which its unit tests follow,
plus one addition: ``COLD -> WARM_REPLY``. A lead may write to us first (it saw a colleague's
message, an ad, a forwarded number) before we ever contacted it; refusing that reply would lose
the warmest lead we can get, so a reply moves a COLD lead straight to WARM_REPLY.

Moving to the state a lead is already in is not an error: it returns False and writes nothing
(a second reply of a lead in WARM_REPLY is normal, DESIGN §9). Anything else not in the table
raises :class:`~cerniq.errors.InvalidTransition` (409), never a silent ``success: false``.

Side effects of entering a state (stopping sequences on WARM_REPLY, notifying on CONVERTED) are
the callers' business: this function changes the journey row and appends ``lead_state_history``,
in the caller's transaction, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

from prometheus_client import Counter
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerniq.errors import InvalidTransition
from cerniq.kit.clock import utcnow
from cerniq.models import GoldLeadJourney, LeadStateHistory
from cerniq.models.enums import LeadState

__all__ = [
    "TRANSITIONS",
    "TRIGGERS",
    "allowed_transitions",
    "is_allowed",
    "transition",
    "transition_locked_many",
]

S = LeadState

TRANSITIONS: Final[dict[LeadState, frozenset[LeadState]]] = {
    # WARM_REPLY from COLD is our addition to the digest's table: a lead may write first.
    S.COLD: frozenset({S.CONTACTED_WA, S.CONTACTED_EMAIL, S.WARM_REPLY, S.DEAD}),
    S.CONTACTED_WA: frozenset({S.WARM_REPLY, S.CONTACTED_EMAIL, S.DEAD}),
    S.CONTACTED_EMAIL: frozenset({S.WARM_REPLY, S.CONTACTED_WA, S.DEAD}),
    S.WARM_REPLY: frozenset({S.NEGOTIATION, S.DEAD, S.PAUSED}),
    S.NEGOTIATION: frozenset({S.CONVERTED, S.DEAD, S.PAUSED, S.WARM_REPLY}),
    S.CONVERTED: frozenset(),  # terminal
    S.DEAD: frozenset({S.COLD}),  # resurrection
    S.PAUSED: frozenset({S.COLD, S.WARM_REPLY, S.NEGOTIATION}),
}

#: What caused a transition (``lead_state_history.trigger``).
TRIGGERS: Final[frozenset[str]] = frozenset(
    {"MANUAL", "WEBHOOK_REPLY", "SEND", "SEQUENCE", "REVIEW", "SYSTEM", "IMPORT"}
)

STAGE_TRANSITIONS = Counter(
    "cerniq_stage_transitions_total", "Lead state transitions", ["from_stage", "to_stage", "trigger"]
)


_HISTORY = cast(Table, LeadStateHistory.__table__)
# A Core INSERT built once (its id from the column default, created_at from the server's now(),
# as the ORM insert had them): cheaper than a unit-of-work insert on every send.
_INSERT_HISTORY = insert(_HISTORY).values(
    {
        name: bindparam(name, type_=_HISTORY.c[name].type)
        for name in ("tenant_id", "lead_journey_id", "from_state", "to_state", "trigger", "reason", "actor")
    }
)


def allowed_transitions(state: LeadState) -> set[LeadState]:
    """The states a lead in ``state`` may move to (not counting staying where it is)."""
    return set(TRANSITIONS[LeadState(state)])


def is_allowed(from_state: LeadState, to_state: LeadState) -> bool:
    """True when ``from_state -> to_state`` is in the table (a same-state move is not)."""
    return LeadState(to_state) in TRANSITIONS[LeadState(from_state)]


async def transition(
    session: AsyncSession,
    journey: GoldLeadJourney,
    to_state: LeadState,
    *,
    trigger: str,
    reason: str | None = None,
    actor: str = "system",
    already_locked: bool = False,
) -> bool:
    """Move ``journey`` to ``to_state``; the only way any code changes a lead's state.

    Locks the journey row (``SELECT ... FOR UPDATE``) and validates against the state the
    database holds, so two concurrent callers (a reply webhook and an operator) are serialized
    and the second one sees the first one's result. A caller that loaded ``journey`` with
    ``FOR UPDATE`` in this transaction passes ``already_locked=True``: the object then holds the
    state the database holds, and the extra round trip is skipped. Returns True when the state changed (the
    journey's ``previous_state``, ``current_state``, ``state_changed_at``,
    ``state_change_reason`` and, for CONVERTED, ``converted_at`` are set and a
    ``lead_state_history`` row is added), False when the lead already is in ``to_state``.

    Raises :class:`~cerniq.errors.InvalidTransition` (409, details ``{from, to, allowed}``) for
    a move the table forbids, and ValueError for a ``trigger`` outside :data:`TRIGGERS` (a bug in
    the caller, not bad input). Never commits: the caller owns the transaction.
    """
    target = LeadState(to_state)
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown transition trigger {trigger!r}; use one of {sorted(TRIGGERS)}")
    if journey.id is None:  # a new journey: give it its row (and id) first
        await session.flush()
    locked = (
        None
        if already_locked
        else (
            await session.execute(
                select(GoldLeadJourney.current_state)
                .where(GoldLeadJourney.id == journey.id)
                .with_for_update()
            )
        ).scalar_one_or_none()
    )
    current = LeadState(locked) if locked is not None else LeadState(journey.current_state)
    if current == target:
        return False
    _check(current, target)
    history = _move(journey, current, target, trigger=trigger, reason=reason, actor=actor)
    await session.flush()  # the lead's row (and whatever else the caller changed), then its history
    await session.execute(_INSERT_HISTORY, history)
    STAGE_TRANSITIONS.labels(current.value, target.value, trigger).inc()
    return True


async def transition_locked_many(
    session: AsyncSession,
    journeys: Sequence[GoldLeadJourney],
    to_state: LeadState,
    *,
    trigger: str,
    reason: str | None = None,
    actor: str = "system",
) -> int:
    """:func:`transition` for several leads the caller loaded ``FOR UPDATE`` in this
    transaction (``already_locked``): the same checks and the same rows, with one flush and
    one multi-row history INSERT for all of them. A lead given twice moves once. A forbidden
    move raises before anything is written. Returns how many leads changed state."""
    target = LeadState(to_state)
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown transition trigger {trigger!r}; use one of {sorted(TRIGGERS)}")
    moving = list({id(j): j for j in journeys if LeadState(j.current_state) != target}.values())
    for journey in moving:
        _check(LeadState(journey.current_state), target)
    history = [
        _move(journey, LeadState(journey.current_state), target, trigger=trigger, reason=reason, actor=actor)
        for journey in moving
    ]
    if not history:
        return 0
    await session.flush()
    await session.execute(_INSERT_HISTORY, history)
    for row in history:
        STAGE_TRANSITIONS.labels(row["from_state"].value, target.value, trigger).inc()
    return len(history)


def _check(current: LeadState, target: LeadState) -> None:
    allowed = TRANSITIONS[current]
    if target not in allowed:
        raise InvalidTransition(
            f"a lead in {current.value} cannot move to {target.value}",
            details={
                "from": current.value,
                "to": target.value,
                "allowed": sorted(s.value for s in allowed),
            },
        )


def _move(
    journey: GoldLeadJourney,
    current: LeadState,
    target: LeadState,
    *,
    trigger: str,
    reason: str | None,
    actor: str,
) -> dict[str, Any]:
    """Set the journey's state fields for ``current -> target``; its history row's values."""
    now = utcnow()
    journey.previous_state = current
    journey.current_state = target
    journey.state_changed_at = now
    journey.state_change_reason = reason
    if target == LeadState.CONVERTED:
        journey.converted_at = now
    return {
        "tenant_id": journey.tenant_id,
        "lead_journey_id": journey.id,
        "from_state": current,
        "to_state": target,
        "trigger": trigger,
        "reason": reason,
        "actor": actor,
    }
