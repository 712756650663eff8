"""open WhatsApp messages index: the delivery poll's pick is one short index range

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 03:10:00+00:00

Every 2 minutes the delivery poll picks up to 200 of our WhatsApp messages still SENT or
DELIVERED and sent within the last three days, new ones whose chat is unknown first
(``cerniq.webhooks.repository.messages_to_poll``). Without an index for that, PostgreSQL reads
every message without a chat, or every SENT one, of the whole table: a quarter of a second at
1M messages (see bench/bench_quota_ledger.py). The index is partial: only open outbound
WhatsApp messages, by send time.

On a live database with many messages, build it first with ``CREATE INDEX CONCURRENTLY IF NOT
EXISTS`` and the same definition; this revision then only records it.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = (
    "ix_gold_communication_log_wa_open ON gold_communication_log (sent_at)"
    " WHERE channel = 'WHATSAPP' AND direction = 'OUTBOUND' AND status IN ('SENT', 'DELIVERED')"
)


def upgrade() -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gold_communication_log_wa_open")
