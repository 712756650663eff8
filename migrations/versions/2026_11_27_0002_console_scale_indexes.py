"""console scale indexes: the tenant's messages by last update

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:02:00+00:00

``ix_gold_communication_log_tenant_updated`` (tenant_id, updated_at) serves the console's live
activity feed (the tenant's newest created or updated messages, polled every 2 seconds by every
open console) and today's figures of the dashboard (messages touched since midnight), which
otherwise read every message of the tenant (see bench/bench_console_scale.py). It is the only
index added on the log: every index is one more write per message insert and update.

``CREATE INDEX`` (not ``CONCURRENTLY``: migrations run in one transaction) blocks writes to
the log while it builds, about a minute at 10M messages. On a live database, build it first
with ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` and the same definition; this revision then
only records it.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_gold_communication_log_tenant_updated "
        "ON gold_communication_log (tenant_id, updated_at)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gold_communication_log_tenant_updated")
