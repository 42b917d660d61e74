"""journey_runs: the due index holds only the running states, in due order

Claiming due runs asks for the running states (active, waiting) in due order. An index
on (state, due_at) serves that as two ranges to be merged and sorted: every claim read
every due run. A partial index on due_at over the running states hands them out in
order, a claim reads only what it takes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_RUNNING = "journey_runs.state IN ('active', 'waiting')"


def upgrade() -> None:
    with op.batch_alter_table("journey_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_runs_due")
        batch_op.create_index(
            "ix_journey_runs_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text(_RUNNING),
            postgresql_where=sa.text(_RUNNING),
        )


def downgrade() -> None:
    with op.batch_alter_table("journey_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_runs_due")
        batch_op.create_index("ix_journey_runs_due", ["state", "due_at"], unique=False)
