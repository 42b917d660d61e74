"""Score decay: scores of inactive contacts shrink.

A model with `decay_percent` and `decay_after_days` takes `decay_percent` % (rounded toward
zero) off the positive score of every contact that has been inactive for `decay_after_days`.
Inactive means: not seen (`contacts.last_seen_at`, which tracked events move; for a contact
never seen, its `created_at`) and no change of this score (by a rule, by hand, by a merge or
by an earlier decay) within those days. A decay is itself a change, so a contact decays at
most once per `decay_after_days` of inactivity: after 30, 60, 90 … days without activity.
Negative scores are left alone (decay forgives no penalty), and a score too small to lose a
whole point keeps it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from postillon.scoring import repository
from postillon.scoring.ledger import MAIN_MODEL, Change, Reason, apply_changes


def decay_scores(session: Session, *, now: datetime, limit: int) -> int:
    """Decay up to `limit` scores due at `now`, in the caller's transaction; returns how
    many. Run it again while it returns `limit`: what it decayed is not due any more."""
    repository.serialize_scoring(session)
    done = 0
    for model in repository.decaying_models(session):
        assert model.decay_percent is not None and model.decay_after_days is not None
        cutoff = now - timedelta(days=model.decay_after_days)
        due = repository.decay_candidates(
            session, model, is_main=model.key == MAIN_MODEL, cutoff=cutoff, limit=limit - done
        )
        changes = [
            Change(
                contact_id=contact_id,
                model=model,
                delta=-(score * model.decay_percent // 100),
                reason=Reason.decay,
            )
            for contact_id, score in due
        ]
        apply_changes(session, changes, now=now)
        done += len(due)
        if done >= limit:
            break
    return done
