"""hro_repairs and repair_photos: the Housing Repairs Online facade's triage values per
repair, and residents' photos (gateway/hro/)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hro_repairs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("repair_type", sa.String(length=16), nullable=False),
        sa.Column("property_id", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("council", "reference", name="uq_hro_repair"),
    )
    op.create_index("ix_hro_repairs_property_id", "hro_repairs", ["property_id"])
    op.create_table(
        "repair_photos",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("council", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_repair_photos_reference", "repair_photos", ["reference"])
    op.create_index("ix_repair_photos_purge_after", "repair_photos", ["purge_after"])


def downgrade() -> None:
    op.drop_index("ix_repair_photos_purge_after", table_name="repair_photos")
    op.drop_index("ix_repair_photos_reference", table_name="repair_photos")
    op.drop_table("repair_photos")
    op.drop_index("ix_hro_repairs_property_id", table_name="hro_repairs")
    op.drop_table("hro_repairs")
