"""daily figure indexes: leads first contacted, converted and marked dead in a day

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:04:00+00:00

Today's figures (the dashboard, computed on every view, and the roll-up every 15 minutes)
count the leads first contacted, converted and marked DEAD since midnight. Without an index
each count reads every journey or every state change of the tenant (1M+ rows at 1M leads).
The three indexes are partial: they hold only the leads ever contacted or converted and the
DEAD transitions, and are written once per lead at most.

On a live database with many leads, build them first with ``CREATE INDEX CONCURRENTLY IF NOT
EXISTS`` and the same definitions; this revision then only records them.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    "ix_gold_lead_journey_first_contact ON gold_lead_journey (tenant_id, first_contact_at) "
    "WHERE first_contact_at IS NOT NULL",
    "ix_gold_lead_journey_converted ON gold_lead_journey (tenant_id, converted_at) "
    "WHERE converted_at IS NOT NULL",
    "ix_lead_state_history_tenant_dead ON lead_state_history (tenant_id, created_at) WHERE to_state = 'DEAD'",
)


def upgrade() -> None:
    for index in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {index}")


def downgrade() -> None:
    for index in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {index.split(' ', 1)[0]}")
