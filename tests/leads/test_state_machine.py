"""The lead state machine against real PostgreSQL: every allowed move, every forbidden one,
history rows, same-state no-ops, and validation against the database's state, not a stale copy."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from cerniq.errors import InvalidTransition
from cerniq.kit.db import transaction
from cerniq.leads.state import TRANSITIONS, allowed_transitions, transition, transition_locked_many
from cerniq.models import GoldCompany, GoldLeadJourney, LeadStateHistory
from cerniq.models.enums import LeadState

S = LeadState

# The digest's §3 table, written out independently of the code, plus COLD -> WARM_REPLY.
EXPECTED = {
    S.COLD: {S.CONTACTED_WA, S.CONTACTED_EMAIL, S.WARM_REPLY, S.DEAD},
    S.CONTACTED_WA: {S.WARM_REPLY, S.CONTACTED_EMAIL, S.DEAD},
    S.CONTACTED_EMAIL: {S.WARM_REPLY, S.CONTACTED_WA, S.DEAD},
    S.WARM_REPLY: {S.NEGOTIATION, S.DEAD, S.PAUSED},
    S.NEGOTIATION: {S.CONVERTED, S.DEAD, S.PAUSED, S.WARM_REPLY},
    S.CONVERTED: set(),
    S.DEAD: {S.COLD},
    S.PAUSED: {S.COLD, S.WARM_REPLY, S.NEGOTIATION},
}
ALLOWED = [(a, b) for a, targets in EXPECTED.items() for b in sorted(targets)]
FORBIDDEN = [(a, b) for a in S for b in S if a != b and b not in EXPECTED[a]]


async def make_journeys(tenant: Any, states: list[LeadState]) -> list[uuid.UUID]:
    """One company and journey per state given; returns the journey ids in order."""
    ids = []
    async with transaction() as session:
        for n, state in enumerate(states):
            company = GoldCompany(tenant_id=tenant.id, denumire=f"Ferma {n}", cui=f"{n + 10:02d}")
            session.add(company)
            await session.flush()
            journey = GoldLeadJourney(tenant_id=tenant.id, lead_id=company.id, current_state=state)
            session.add(journey)
            await session.flush()
            ids.append(journey.id)
    return ids


async def history_of(journey_id: uuid.UUID) -> list[LeadStateHistory]:
    async with transaction() as session:
        rows = await session.execute(
            select(LeadStateHistory)
            .where(LeadStateHistory.lead_journey_id == journey_id)
            .order_by(LeadStateHistory.created_at)
        )
        return list(rows.scalars())


def test_table_matches_the_digest() -> None:
    assert {state: set(targets) for state, targets in TRANSITIONS.items()} == EXPECTED
    assert allowed_transitions(S.CONVERTED) == set()
    assert allowed_transitions(S.COLD) == EXPECTED[S.COLD]


async def test_every_allowed_transition_moves_the_lead_and_writes_history(tenant: Any) -> None:
    ids = await make_journeys(tenant, [a for a, _ in ALLOWED])
    async with transaction() as session:
        for journey_id, (_, to_state) in zip(ids, ALLOWED, strict=True):
            journey = await session.get(GoldLeadJourney, journey_id)
            assert journey is not None
            changed = await transition(
                session, journey, to_state, trigger="MANUAL", reason="test", actor="user:ana"
            )
            assert changed is True
    async with transaction() as session:
        for journey_id, (from_state, to_state) in zip(ids, ALLOWED, strict=True):
            journey = await session.get(GoldLeadJourney, journey_id)
            assert journey is not None
            assert (journey.previous_state, journey.current_state) == (from_state, to_state)
            assert journey.engagement_stage == to_state  # the runbook's column follows
            assert journey.state_changed_at is not None
            assert journey.state_change_reason == "test"
            assert (journey.converted_at is not None) == (to_state == S.CONVERTED)
            (entry,) = await history_of(journey_id)
            assert (entry.from_state, entry.to_state) == (from_state, to_state)
            assert (entry.trigger, entry.reason, entry.actor) == ("MANUAL", "test", "user:ana")
            assert entry.tenant_id == tenant.id


async def test_forbidden_transitions_raise_409_and_change_nothing(tenant: Any) -> None:
    ids = await make_journeys(tenant, [a for a, _ in FORBIDDEN])
    async with transaction() as session:
        for journey_id, (from_state, to_state) in zip(ids, FORBIDDEN, strict=True):
            journey = await session.get(GoldLeadJourney, journey_id)
            assert journey is not None
            with pytest.raises(InvalidTransition) as caught:
                await transition(session, journey, to_state, trigger="MANUAL")
            error = caught.value
            assert error.status_code == 409
            assert error.error_code == "INVALID_TRANSITION"
            assert error.details == {
                "from": from_state.value,
                "to": to_state.value,
                "allowed": sorted(s.value for s in EXPECTED[from_state]),
            }
            assert journey.current_state == from_state
    async with transaction() as session:
        count = await session.scalar(select(func.count()).select_from(LeadStateHistory))
        assert count == 0
        states = dict(
            (await session.execute(select(GoldLeadJourney.id, GoldLeadJourney.current_state))).all()
        )
    assert [states[i] for i in ids] == [a for a, _ in FORBIDDEN]


async def test_same_state_is_a_no_op(tenant: Any) -> None:
    (journey_id,) = await make_journeys(tenant, [S.WARM_REPLY])
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        # A second reply of a lead already in WARM_REPLY is not an error.
        assert await transition(session, journey, S.WARM_REPLY, trigger="WEBHOOK_REPLY") is False
        assert journey.previous_state is None
    assert await history_of(journey_id) == []


async def test_a_lead_may_write_first(tenant: Any) -> None:
    (journey_id,) = await make_journeys(tenant, [S.COLD])
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        assert await transition(session, journey, S.WARM_REPLY, trigger="WEBHOOK_REPLY", reason="inbound")
    (entry,) = await history_of(journey_id)
    assert (entry.from_state, entry.to_state, entry.trigger, entry.actor) == (
        S.COLD,
        S.WARM_REPLY,
        "WEBHOOK_REPLY",
        "system",
    )


async def test_a_path_through_the_funnel_keeps_every_step(tenant: Any) -> None:
    (journey_id,) = await make_journeys(tenant, [S.COLD])
    path = [
        S.CONTACTED_WA,
        S.CONTACTED_EMAIL,
        S.WARM_REPLY,
        S.NEGOTIATION,
        S.PAUSED,
        S.NEGOTIATION,
        S.CONVERTED,
    ]
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        for state in path:
            assert await transition(session, journey, state, trigger="SYSTEM")
        with pytest.raises(InvalidTransition):  # CONVERTED is terminal
            await transition(session, journey, S.DEAD, trigger="MANUAL")
    history = await history_of(journey_id)
    assert [(h.from_state, h.to_state) for h in history] == list(zip([S.COLD, *path[:-1]], path, strict=True))


async def test_validates_against_the_database_not_a_stale_copy(tenant: Any) -> None:
    (journey_id,) = await make_journeys(tenant, [S.CONTACTED_WA])
    async with transaction() as session:
        stale = await session.get(GoldLeadJourney, journey_id)
        assert stale is not None
        # Meanwhile, another transaction (an operator) marks the lead DEAD and commits.
        async with transaction() as other:
            fresh = await other.get(GoldLeadJourney, journey_id)
            assert fresh is not None
            await transition(other, fresh, S.DEAD, trigger="MANUAL", reason="not interested")
        # The reply path still holds the CONTACTED_WA copy: DEAD -> WARM_REPLY is not allowed.
        with pytest.raises(InvalidTransition) as caught:
            await transition(session, stale, S.WARM_REPLY, trigger="WEBHOOK_REPLY")
        assert caught.value.details["from"] == "DEAD"


async def test_unknown_trigger_is_a_programming_error(tenant: Any) -> None:
    (journey_id,) = await make_journeys(tenant, [S.COLD])
    async with transaction() as session:
        journey = await session.get(GoldLeadJourney, journey_id)
        assert journey is not None
        with pytest.raises(ValueError, match="trigger"):
            await transition(session, journey, S.DEAD, trigger="WHATEVER")


async def test_several_locked_leads_move_together_and_a_lead_given_twice_moves_once(tenant: Any) -> None:
    cold, emailed, contacted = await make_journeys(tenant, [S.COLD, S.CONTACTED_EMAIL, S.CONTACTED_WA])
    async with transaction() as session:
        journeys = [
            await session.get(GoldLeadJourney, i, with_for_update=True) for i in (cold, emailed, contacted)
        ]
        assert all(j is not None for j in journeys)
        moved = await transition_locked_many(
            session, [*journeys, journeys[0]], S.CONTACTED_WA, trigger="SEND", reason="first WhatsApp message"
        )
    assert moved == 2  # the lead already in CONTACTED_WA stays, and is not written to history
    assert [(h.from_state, h.to_state) for h in await history_of(cold)] == [(S.COLD, S.CONTACTED_WA)]
    assert [(h.from_state, h.to_state) for h in await history_of(emailed)] == [
        (S.CONTACTED_EMAIL, S.CONTACTED_WA)
    ]
    assert await history_of(contacted) == []


async def test_a_forbidden_move_in_a_batch_writes_nothing(tenant: Any) -> None:
    cold, converted = await make_journeys(tenant, [S.COLD, S.CONVERTED])
    async with transaction() as session:
        journeys = [await session.get(GoldLeadJourney, i) for i in (cold, converted)]
        with pytest.raises(InvalidTransition):
            await transition_locked_many(session, [j for j in journeys if j], S.CONTACTED_WA, trigger="SEND")
        assert journeys[0] is not None and journeys[0].current_state == S.COLD
