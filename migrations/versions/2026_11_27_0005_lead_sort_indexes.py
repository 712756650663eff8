"""lead sort indexes: one page of the leads list is one index range, in every sort

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 00:05:00+00:00

The leads list sorts by next action, last contact, sentiment, creation or company name. Without
an index that starts with the tenant and holds the sort column, PostgreSQL reads and sorts every
lead of the tenant for each page (half a second at 1M leads; see bench/bench_console_scale.py).
With these, a page is a walk along the index (``leads.repository._page_ids`` asks for the
leads with a value and those without apart, because an index yields DESC NULLS FIRST, never
DESC NULLS LAST). Each is written when its column changes: next action and last contact once
per message sent, sentiment once per reply.

On a live database with many leads, build them first with ``CREATE INDEX CONCURRENTLY IF NOT
EXISTS`` and the same definitions; this revision then only records them.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    "ix_gold_lead_journey_tenant_next_action_id ON gold_lead_journey (tenant_id, next_action_at, id)",
    "ix_gold_lead_journey_tenant_last_contact_id ON gold_lead_journey (tenant_id, last_contact_at, id)",
    "ix_gold_lead_journey_tenant_sentiment_id ON gold_lead_journey (tenant_id, sentiment_score, id)",
    "ix_gold_companies_tenant_denumire ON gold_companies (tenant_id, denumire)",
)


def upgrade() -> None:
    for index in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {index}")


def downgrade() -> None:
    for index in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {index.split(' ', 1)[0]}")
