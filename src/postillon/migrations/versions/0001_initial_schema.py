"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:17:11.236400
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import postillon.kit.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_digest", name=op.f("uq_api_keys_secret_digest")),
    )
    op.create_table(
        "attribute_definitions",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("created_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_attribute_definitions")),
    )
    op.create_table(
        "contact_imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("options", postillon.kit.types.JSONDocument, nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("updated_count", sa.Integer(), nullable=False),
        sa.Column("unchanged_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", postillon.kit.types.JSONDocument, nullable=False),
        sa.Column("started_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_imports")),
    )
    op.create_table(
        "contact_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("merged_contact_id", sa.Uuid(), nullable=False),
        sa.Column("merged_snapshot", postillon.kit.types.JSONDocument, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("merged_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_merges_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_contact_merges_merged_contact_id"), ["merged_contact_id"], unique=False
        )

    op.create_table(
        "suppressions",
        sa.Column("address_digest", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address_digest", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("attributes", postillon.kit.types.JSONDocument, nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=50), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("created_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_contacts_owner_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("email", name=op.f("uq_contacts_email")),
        sa.UniqueConstraint("external_id", name=op.f("uq_contacts_external_id")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_phone"), ["phone"], unique=False)

    op.create_table(
        "contact_consents",
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("changed_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_consents_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "channel", name=op.f("pk_contact_consents")),
    )
    op.create_table(
        "contact_import_touches",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_import_touches_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["contact_imports.id"],
            name=op.f("fk_contact_import_touches_import_id_contact_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "contact_id", name=op.f("pk_contact_import_touches")),
    )
    with op.batch_alter_table("contact_import_touches", schema=None) as batch_op:
        batch_op.create_index("ix_contact_import_touches_contact", ["contact_id"], unique=False)

    op.create_table(
        "contact_tags",
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("added_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_tags_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "tag", name=op.f("pk_contact_tags")),
    )
    with op.batch_alter_table("contact_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("anonymous_id", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("properties", postillon.kit.types.JSONDocument, nullable=False),
        sa.Column("context", postillon.kit.types.JSONDocument, nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("occurred_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", postillon.kit.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_events_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_events_message_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_anonymous_id"), ["anonymous_id"], unique=False)
        batch_op.create_index(
            "ix_events_contact_timeline", ["contact_id", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_contact_timeline")
        batch_op.drop_index(batch_op.f("ix_events_anonymous_id"))

    op.drop_table("events")
    with op.batch_alter_table("contact_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_tags_tag"))

    op.drop_table("contact_tags")
    with op.batch_alter_table("contact_import_touches", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_import_touches_contact")

    op.drop_table("contact_import_touches")
    op.drop_table("contact_consents")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_phone"))

    op.drop_table("contacts")
    op.drop_table("users")
    op.drop_table("suppressions")
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_merges_merged_contact_id"))
        batch_op.drop_index(batch_op.f("ix_contact_merges_contact_id"))

    op.drop_table("contact_merges")
    op.drop_table("contact_imports")
    op.drop_table("attribute_definitions")
    op.drop_table("api_keys")
