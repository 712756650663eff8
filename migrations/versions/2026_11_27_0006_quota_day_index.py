"""quota day index: the ledger of one phone's business day is one index range

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 02:10:00+00:00

The quota ledger is the outbound WhatsApp rows holding a quota day (``quota_date``). The first
reservation of each phone's day counts that phone's new contacts of the day before it sends;
the midnight reset, ``cerniq quota resync`` and the reservation hashes count or list a day's
rows of every phone. Without an index on the day, each of these reads every message of the
phone (or of the table): tens of milliseconds at 1M messages, held inside the send batch's
transaction (see bench/bench_quota_ledger.py). The index is partial: only rows with a quota day,
written once when a row is marked SENDING.

On a live database with many messages, build it first with ``CREATE INDEX CONCURRENTLY IF NOT
EXISTS`` and the same definition; this revision then only records it.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = (
    "ix_gold_communication_log_quota_day ON gold_communication_log (quota_date, phone_id)"
    " WHERE quota_date IS NOT NULL"
)


def upgrade() -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gold_communication_log_quota_day")
