"""Lead scoring: score models, scoring rules, changing scores, reading them and their history."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.filters import parse_property_filter
from postillon.kit.ids import new_id, sorted_ids
from postillon.kit.pagination import Page, decode_cursor, encode_cursor
from postillon.models import ScoreModel, ScoringRule
from postillon.scoring import repository
from postillon.scoring.decay import decay_scores
from postillon.scoring.ledger import MAIN_MODEL, Change, Reason, apply_changes
from postillon.scoring.schemas import (
    ContactScoreOut,
    ScoreChangeOut,
    ScoreModelIn,
    ScoreModelOut,
    ScoreModelPatch,
    ScoringRuleIn,
    ScoringRuleOut,
    ScoringRulePatch,
)

_KEY = re.compile(r"[a-z0-9_-]{1,100}")
MAX_POINTS = 1_000_000
MAX_THRESHOLDS = 50
_MAX_THRESHOLD = 1_000_000_000


class ScoringService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    # Score models

    def list_models(self, session: Session) -> list[ScoreModelOut]:
        return [_model_out(m) for m in repository.all_models(session)]

    def get_model(self, session: Session, key: str) -> ScoreModelOut:
        return _model_out(self._model(session, key))

    def create_model(self, session: Session, data: ScoreModelIn) -> ScoreModelOut:
        problems = _model_problems(data.model_dump())
        if not _KEY.fullmatch(data.key):
            problems.insert(0, FieldProblem("key", "must be 1-100 of a-z, 0-9, - and _"))
        if problems:
            raise InvalidInput.of(problems)
        if repository.model_by_key(session, data.key) is not None:
            raise Conflict(
                f"a score model with key {data.key!r} exists already",
                [FieldProblem("key", "is taken")],
            )
        now = self.clock.now()
        model = ScoreModel(
            id=new_id(),
            key=data.key,
            name=data.name.strip(),
            description=data.description,
            decay_percent=data.decay_percent,
            decay_after_days=data.decay_after_days,
            thresholds=sorted(set(data.thresholds)),
            created_at=now,
            updated_at=now,
        )
        session.add(model)
        session.flush()
        return _model_out(model)

    def update_model(self, session: Session, key: str, data: ScoreModelPatch) -> ScoreModelOut:
        model = self._model(session, key)
        changed = data.model_dump(include=data.model_fields_set)
        if changed.get("name", "") is None:
            raise InvalidInput.at("name", "cannot be cleared")
        if changed.get("thresholds", []) is None:
            changed["thresholds"] = []
        merged = {**_model_fields(model), **changed}
        problems = _model_problems(merged)
        if problems:
            raise InvalidInput.of(problems)
        for name, value in changed.items():
            setattr(model, name, sorted(set(value)) if name == "thresholds" else value)
        model.name = model.name.strip()
        model.updated_at = self.clock.now()
        session.flush()
        return _model_out(model)

    def delete_model(self, session: Session, key: str) -> None:
        """A model with its rules, values and history; `main` stays."""
        model = self._model(session, key)
        if model.key == MAIN_MODEL:
            raise Conflict("the main score model cannot be deleted")
        repository.delete_model(session, model.id)

    def _model(self, session: Session, key: str) -> ScoreModel:
        model = repository.model_by_key(session, key)
        if model is None:
            raise NotFound(f"no score model with key {key!r}")
        return model

    # Rules

    def list_rules(
        self, session: Session, *, event: str | None = None, model: str | None = None
    ) -> list[ScoringRuleOut]:
        model_id = self._model(session, model).id if model is not None else None
        rules = repository.rules_page(session, event=event, model_id=model_id)
        keys = {m.id: m.key for m in repository.all_models(session)}
        return [_rule_out(rule, keys[rule.model_id]) for rule in rules]

    def get_rule(self, session: Session, rule_id: uuid.UUID) -> ScoringRuleOut:
        rule = self._rule(session, rule_id)
        return _rule_out(rule, self._key_of(session, rule.model_id))

    def create_rule(self, session: Session, data: ScoringRuleIn) -> ScoringRuleOut:
        fields = data.model_dump()
        model = self._checked_rule(session, fields)
        now = self.clock.now()
        rule = ScoringRule(
            id=new_id(),
            name=data.name.strip(),
            model_id=model.id,
            event=data.event,
            where=data.where,
            points=data.points,
            frequency=data.frequency,
            daily_limit=data.daily_limit,
            enabled=data.enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(rule)
        session.flush()
        return _rule_out(rule, model.key)

    def update_rule(
        self, session: Session, rule_id: uuid.UUID, data: ScoringRulePatch
    ) -> ScoringRuleOut:
        rule = self._rule(session, rule_id)
        changed = data.model_dump(include=data.model_fields_set)
        for name in ("name", "model", "event", "points", "frequency", "enabled"):
            if name in changed and changed[name] is None:
                raise InvalidInput.at(name, "cannot be cleared")
        current = {
            "name": rule.name, "model": self._key_of(session, rule.model_id), "event": rule.event,
            "where": rule.where, "points": rule.points, "frequency": rule.frequency,
            "daily_limit": rule.daily_limit, "enabled": rule.enabled,
        }  # fmt: skip
        merged = {**current, **changed}
        model = self._checked_rule(session, merged)
        rule.name = merged["name"].strip()
        rule.model_id = model.id
        rule.event = merged["event"]
        rule.where = merged["where"]
        rule.points = merged["points"]
        rule.frequency = merged["frequency"]
        rule.daily_limit = merged["daily_limit"]
        rule.enabled = merged["enabled"]
        rule.updated_at = self.clock.now()
        session.flush()
        return _rule_out(rule, model.key)

    def delete_rule(self, session: Session, rule_id: uuid.UUID) -> None:
        """The rule goes; the history it wrote stays (without the rule)."""
        self._rule(session, rule_id)
        repository.delete_rule(session, rule_id)

    def _rule(self, session: Session, rule_id: uuid.UUID) -> ScoringRule:
        rule = repository.get_rule(session, rule_id)
        if rule is None:
            raise NotFound(f"no scoring rule with id {rule_id}")
        return rule

    def _key_of(self, session: Session, model_id: uuid.UUID) -> str:
        return repository.models_by_id(session, [model_id])[model_id].key

    def _checked_rule(self, session: Session, fields: dict[str, Any]) -> ScoreModel:
        """The rule's model; InvalidInput naming every problem of `fields`."""
        problems = []
        if not 1 <= len(fields["name"].strip()) <= 200:
            problems.append(FieldProblem("name", "must be 1-200 characters"))
        if not 1 <= len(fields["event"]) <= 200:
            problems.append(FieldProblem("event", "must be 1-200 characters"))
        if fields["where"] is not None:
            try:
                parse_property_filter(fields["where"], where="where")
            except InvalidInput as error:
                problems.extend(error.problems)
        if fields["points"] == 0 or abs(fields["points"]) > MAX_POINTS:
            problems.append(
                FieldProblem("points", f"must be 1 to {MAX_POINTS} or -1 to -{MAX_POINTS}")
            )
        limit = fields["daily_limit"]
        if limit is not None and not 1 <= limit <= _MAX_THRESHOLD:
            problems.append(FieldProblem("daily_limit", "must be a positive whole number"))
        model = repository.model_by_key(session, fields["model"])
        if model is None:
            problems.append(FieldProblem("model", f"no score model with key {fields['model']!r}"))
        if problems:
            raise InvalidInput.of(problems)
        assert model is not None
        return model

    # Scores

    def adjust(
        self,
        session: Session,
        contact_ids: Collection[uuid.UUID],
        model_key: str,
        delta: int,
        reason: Reason = Reason.api,
        *,
        note: str | None = None,
        now: datetime | None = None,
    ) -> dict[uuid.UUID, int]:
        """Add `delta` to the `model_key` score of every contact in `contact_ids` (in sets:
        a few queries for any number); returns their new scores. Contacts that do not
        exist are left out; crossing a threshold emits `score_reached`."""
        if abs(delta) > MAX_POINTS:
            raise InvalidInput.at("delta", f"must be between -{MAX_POINTS} and {MAX_POINTS}")
        model = repository.model_by_key(session, model_key)
        if model is None:
            raise InvalidInput.at("model", f"no score model with key {model_key!r}")
        when = now or self.clock.now()
        changes = [
            Change(contact_id=cid, model=model, delta=delta, reason=reason, note=note)
            for cid in sorted_ids(set(contact_ids))
        ]
        applied = apply_changes(session, changes, now=when)
        return {cid: score for (_, cid), score in applied.scores.items()}

    def scores_of(self, session: Session, contact_id: uuid.UUID) -> list[ContactScoreOut]:
        """The contact's value in every score model (0 where it has none yet)."""
        if not repository.existing_contacts(session, [contact_id]):
            raise NotFound(f"no contact with id {contact_id}")
        models = repository.all_models(session)
        values = repository.model_scores(session, {m.id for m in models}, [contact_id])
        main = repository.main_scores(session, [contact_id])[contact_id]
        return [
            ContactScoreOut(
                model=m.key,
                name=m.name,
                score=main if m.key == MAIN_MODEL else values.get((m.id, contact_id), 0),
            )
            for m in models
        ]

    def history(
        self,
        session: Session,
        contact_id: uuid.UUID,
        *,
        model: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ScoreChangeOut]:
        """One page of the contact's score changes, newest first."""
        if not repository.existing_contacts(session, [contact_id]):
            raise NotFound(f"no contact with id {contact_id}")
        model_id = self._model(session, model).id if model is not None else None
        before_id = None
        if cursor:
            values = decode_cursor(cursor)
            if len(values) != 1 or not isinstance(values[0], int):
                raise InvalidInput.at("cursor", "not a cursor returned by this API")
            before_id = values[0]
        rows = repository.history_page(
            session, contact_id, model_id=model_id, before_id=before_id, limit=limit + 1
        )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1][0].id)
        items = [
            ScoreChangeOut(
                id=change.id,
                model=key,
                delta=change.delta,
                score=change.score,
                reason=change.reason,
                note=change.note,
                rule_id=change.rule_id,
                event_id=change.event_id,
                changed_at=change.changed_at,
            )
            for change, key in rows
        ]
        return Page(items, next_cursor)

    def decay(self, session: Session, *, now: datetime, limit: int) -> int:
        """Decay up to `limit` inactive contacts' scores (see `decay.decay_scores`)."""
        return decay_scores(session, now=now, limit=limit)


def _model_fields(model: ScoreModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "decay_percent": model.decay_percent,
        "decay_after_days": model.decay_after_days,
        "thresholds": list(model.thresholds or []),
    }


def _model_problems(fields: dict[str, Any]) -> list[FieldProblem]:
    problems = []
    if not 1 <= len(fields["name"].strip()) <= 200:
        problems.append(FieldProblem("name", "must be 1-200 characters"))
    if fields["description"] is not None and len(fields["description"]) > 2000:
        problems.append(FieldProblem("description", "must be at most 2000 characters"))
    percent, days = fields["decay_percent"], fields["decay_after_days"]
    if (percent is None) != (days is None):
        problems.append(
            FieldProblem("decay_percent", "decay needs both decay_percent and decay_after_days")
        )
    if percent is not None and not 1 <= percent <= 100:
        problems.append(FieldProblem("decay_percent", "must be 1 to 100"))
    if days is not None and not 1 <= days <= 3650:
        problems.append(FieldProblem("decay_after_days", "must be 1 to 3650"))
    thresholds = fields["thresholds"]
    if len(thresholds) > MAX_THRESHOLDS:
        problems.append(FieldProblem("thresholds", f"at most {MAX_THRESHOLDS}"))
    for index, value in enumerate(thresholds):
        if abs(value) > _MAX_THRESHOLD:
            problems.append(FieldProblem(f"thresholds[{index}]", "is out of range"))
    return problems


def _model_out(model: ScoreModel) -> ScoreModelOut:
    return ScoreModelOut(
        id=model.id,
        key=model.key,
        **_model_fields(model),
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def _rule_out(rule: ScoringRule, model_key: str) -> ScoringRuleOut:
    return ScoringRuleOut(
        id=rule.id,
        name=rule.name,
        model=model_key,
        event=rule.event,
        where=rule.where,
        points=rule.points,
        frequency=rule.frequency,
        daily_limit=rule.daily_limit,
        enabled=rule.enabled,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )
