"""lead search and filter indexes: pg_trgm GIN indexes for the searched text, btree for filters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:01:00+00:00

The lead list searches ``ILIKE '%term%'`` on the company's name, CUI, email and phone and on
the journey's email and WhatsApp number; without trigram indexes every search reads every lead
of the tenant (see bench/bench_lead_search.py). ``has reply`` and ``channel`` get btree indexes.

``CREATE INDEX`` (not ``CONCURRENTLY``: migrations run in one transaction) blocks writes to the
two tables while it builds, about a minute at 1M leads. On a live database, build them first
with ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` and the same definitions; this revision then
only records them.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM: tuple[tuple[str, str, str], ...] = (
    ("ix_gold_companies_denumire_trgm", "gold_companies", "denumire"),
    ("ix_gold_companies_cui_trgm", "gold_companies", "cui"),
    ("ix_gold_companies_email_trgm", "gold_companies", "email_principal"),
    ("ix_gold_companies_telefon_trgm", "gold_companies", "telefon_principal"),
    ("ix_gold_lead_journey_email_trgm", "gold_lead_journey", "email"),
    ("ix_gold_lead_journey_mobile_trgm", "gold_lead_journey", "mobile_e164"),
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in TRIGRAM:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} gin_trgm_ops)")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_gold_lead_journey_tenant_channel "
        "ON gold_lead_journey (tenant_id, last_channel_used)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_gold_lead_journey_has_reply "
        "ON gold_lead_journey (tenant_id) WHERE reply_count > 0"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gold_lead_journey_has_reply")
    op.execute("DROP INDEX IF EXISTS ix_gold_lead_journey_tenant_channel")
    for name, _, _ in reversed(TRIGRAM):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    # Left in place: other objects of the database may use the extension (DROP would fail).
