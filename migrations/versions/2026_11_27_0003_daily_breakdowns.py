"""daily breakdowns: per phone, template and sequence figures of each day

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:03:00+00:00

``outreach_daily_stats.breakdowns`` keeps, for a rolled-up day, the messages sent, new
contacts, leads contacted and leads that replied (all and positively) per phone, template and
sequence. The analytics views add up these stored days and compute only the days without one
(today, or days never rolled up), instead of aggregating every message of the range. Adding a
nullable column is instant; rows from before stay NULL and are computed when read.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outreach_daily_stats", sa.Column("breakdowns", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("outreach_daily_stats", "breakdowns")
