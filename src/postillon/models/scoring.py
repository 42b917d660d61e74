from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import BigIntId, JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base


class ScoreModel(Base):
    """A named score. The model with key `main` is the contact's own `contacts.score`;
    the others (Mautic's point groups) keep their values in `contact_scores`."""

    __tablename__ = "score_models"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # Decay: the score loses `decay_percent` % after `decay_after_days` without activity.
    decay_percent: Mapped[int | None] = mapped_column(Integer)
    decay_after_days: Mapped[int | None] = mapped_column(Integer)
    # Crossing one of these upwards emits `score_reached`.
    thresholds: Mapped[list[int]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactScore(Base):
    """A contact's value in a named score model (not `main`)."""

    __tablename__ = "contact_scores"
    __table_args__ = (Index("ix_contact_scores_model", "model_id", "score"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("score_models.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer, default=0)


class ScoringRule(Base):
    """Event (with a property filter) → ± points in a score model."""

    __tablename__ = "scoring_rules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    model_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("score_models.id", ondelete="CASCADE")
    )
    event: Mapped[str] = mapped_column(String(200), index=True)
    # A property filter of the filter language, or none (every such event counts).
    where: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    points: Mapped[int] = mapped_column(Integer)
    # once: at most once per contact, ever; repeatable: every matching event.
    frequency: Mapped[str] = mapped_column(String(20), default="repeatable")
    # The most points this rule gives one contact in a (UTC) day; none for no limit.
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScoreChange(Base):
    """One change of one score of one contact: the score history."""

    __tablename__ = "score_changes"
    __table_args__ = (
        Index("ix_score_changes_contact", "contact_id", "model_id", "changed_at"),
        Index("ix_score_changes_rule", "rule_id", "contact_id", "changed_at"),
        # An automation's change carries its action's deterministic key as the note:
        # a replayed action adds no points twice (see automations/actions.py).
        Index(
            "uq_score_changes_automation",
            "note",
            unique=True,
            sqlite_where=text("reason = 'automation'"),
            postgresql_where=text("reason = 'automation'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    model_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("score_models.id", ondelete="CASCADE")
    )
    delta: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    # rule, decay, api, merge, automation
    reason: Mapped[str] = mapped_column(String(20))
    # Free text given with a change made by hand or through the API ("called sales").
    note: Mapped[str | None] = mapped_column(String(200))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("scoring_rules.id", ondelete="SET NULL")
    )
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
