"""reach: must-read posts and acknowledgements, readership counts, the survey, offices' quiet hours

Revision ID: 0011_reach
Revises: 0010_push
Create Date: 2026-12-03

- offices: time_zone (IANA), quiet_start / quiet_end ("HH:MM"): no push in those hours.
- must_reads: a post's must-read mark, its audience (office, staff-only), end and reminder times.
- acknowledgements: one "got it" per person per must-read post.
- read_counts: views and post-page opens per day, post and office (no reader kept).
- feed_readers, feed_subscribers: distinct feed clients per day (salted hashes), aggregators' subscriber counts.
- surveys, survey_tallies, survey_responders: the one-question survey, answers as counts apart from who answered.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_reach"
down_revision = "0010_push"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- offices: quiet hours ---
    with op.batch_alter_table("offices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("quiet_start", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("quiet_end", sa.String(length=5), nullable=True))

    # --- must-read posts and acknowledgements ---
    op.create_table(
        "must_reads",
        sa.Column("post_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("staff_only", sa.Boolean(), nullable=False),
        sa.Column("marked_by", sa.String(length=50), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["office_id"], ["offices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id"),
    )
    with op.batch_alter_table("must_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_must_reads_office_id"), ["office_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_must_reads_remind_at"), ["remind_at"], unique=False)
    op.create_table(
        "acknowledgements",
        sa.Column("post_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["must_reads.post_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "user_id"),
    )
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acknowledgements_user_id"), ["user_id"], unique=False)

    # --- readership ---
    op.create_table(
        "read_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("post_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("office_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "kind", "post_id", "office_id"),
    )
    op.create_table(
        "feed_readers",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feed", sa.String(length=80), nullable=False),
        sa.Column("client", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day", "feed", "client"),
    )
    op.create_table(
        "feed_subscribers",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feed", sa.String(length=80), nullable=False),
        sa.Column("aggregator", sa.String(length=60), nullable=False),
        sa.Column("subscribers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "feed", "aggregator"),
    )

    # --- the survey ---
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("started_by", sa.String(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(["office_id"], ["offices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("surveys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_surveys_office_id"), ["office_id"], unique=False)
    op.create_table(
        "survey_tallies",
        sa.Column("survey_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("option", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("survey_id", "option"),
    )
    op.create_table(
        "survey_responders",
        sa.Column("survey_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("responder", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("survey_id", "responder"),
    )


def downgrade() -> None:
    for table in ("survey_responders", "survey_tallies", "surveys", "feed_subscribers", "feed_readers",
                  "read_counts", "acknowledgements", "must_reads"):
        op.drop_table(table)
    with op.batch_alter_table("offices", schema=None) as batch_op:
        batch_op.drop_column("quiet_end")
        batch_op.drop_column("quiet_start")
        batch_op.drop_column("time_zone")
