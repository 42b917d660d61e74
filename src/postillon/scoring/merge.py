"""Scores on a contact merge: the survivor gains the absorbed contact's score in every model."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.scoring import repository
from postillon.scoring.ledger import MAIN_MODEL, Change, Reason, apply_changes


def fold_scores(
    session: Session, *, survivor_id: uuid.UUID, absorbed_id: uuid.UUID, now: datetime
) -> None:
    """Add the absorbed contact's scores to the survivor's (history rows with reason
    `merge`), and give the survivor the absorbed contact's score history, so that "once"
    rules and daily limits count for the one person. Call it before the absorbed contact
    is deleted."""
    models = repository.all_models(session)
    named = repository.model_scores(session, {m.id for m in models}, [absorbed_id])
    main = repository.main_scores(session, [absorbed_id]).get(absorbed_id, 0)
    repository.move_history(session, source=absorbed_id, target=survivor_id)
    note = f"merged contact {absorbed_id}"
    apply_changes(
        session,
        [
            Change(
                contact_id=survivor_id,
                model=model,
                delta=main if model.key == MAIN_MODEL else named.get((model.id, absorbed_id), 0),
                reason=Reason.merge,
                note=note,
            )
            for model in models
        ],
        now=now,
    )
