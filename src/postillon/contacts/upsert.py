"""Applying many contact changes at once: a fixed number of queries per batch, not per contact.

Create, upsert, update-by-id, the batch API and the CSV import all come through
`apply_changes`. It works in two phases so that a batch either fails before anything is
written or writes only the items that passed:

1. check: attribute types, suppression, owners, and who each item is (matched by
   external_id, then email; conflicts between items of the batch and stored contacts);
2. write: inserts and updates as executemany, tags and consents likewise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from postillon.contacts import fields
from postillon.contacts import repository as contacts_repository
from postillon.contacts.changes import ContactChanges
from postillon.contacts.fields import AttributeType, FieldError
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound, PostillonError
from postillon.events.service import InternalEvent, record_internal
from postillon.kit.ids import ordered_id_supply
from postillon.lifecycle.history import (
    StageMove,
    pipeline_positions,
    record_stage_changes,
    unknown_stage,
)
from postillon.privacy import repository as privacy_repository
from postillon.privacy.suppression import REASON_MESSAGES, SuppressionReason, address_digest
from postillon.segments.refresh_queue import queue_contacts

# How long a pending double opt-in waits before a new subscription asks again.
_ASK_AGAIN_AFTER = timedelta(hours=1)


class Mode(StrEnum):
    create = "create"  # always a new contact; an email or external_id in use is a conflict
    upsert = "upsert"  # the contact with this external_id, else this email, else a new one
    update = "update"  # the contact with `ContactChanges.contact_id`


class Action(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    failed = "failed"


@dataclass
class Outcome:
    action: Action
    contact_id: uuid.UUID | None = None
    error: PostillonError | None = None


@dataclass
class _Target:
    """One contact as the batch will leave it, next to how it was stored."""

    row: dict[str, Any]
    tags: set[str]
    consents: dict[str, dict[str, Any]]
    stored: bool
    original: dict[str, Any] = field(default_factory=dict)
    original_tags: set[str] = field(default_factory=set)
    original_consents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def snapshot(self) -> tuple[dict[str, Any], set[str], dict[str, dict[str, Any]]]:
        """A copy deep enough to compare against: `_apply` replaces values, never mutates
        them, except the attributes dict, which is copied."""
        row = dict(self.row)
        row["attributes"] = dict(row["attributes"])
        return row, set(self.tags), dict(self.consents)


@dataclass(frozen=True)
class ApplyContext:
    now: datetime
    secret_key: str
    source: str
    # Consent sources whose "subscribed" on email waits for a confirmation (double opt-in),
    # and who mails that confirmation (subscriptions/optin.py), in the same transaction.
    double_opt_in_sources: frozenset[str] = frozenset()
    confirmations: ConfirmationRequester | None = None
    # Record `contact_created`, `tag_added`, `tag_removed` and `attribute_changed` on the
    # timelines (what rules and journeys trigger on). A CSV import turns it off for speed
    # and hands the created contacts to `automations.hooks` when asked to.
    record_changes: bool = True


class ConfirmationRequester(Protocol):
    def request(
        self, session: Session, pending: Sequence[tuple[uuid.UUID, str]], *, now: datetime
    ) -> None:
        """Ask each (contact, consent source) now pending to confirm their subscription."""
        ...


def apply_changes(
    session: Session, items: Sequence[ContactChanges], *, mode: Mode, context: ApplyContext
) -> list[Outcome]:
    """Check and apply `items`; failed items are reported in their Outcome and not written."""
    outcomes = [Outcome(Action.failed) for _ in items]
    typed_attributes, new_types = _type_attributes(session, items)
    _check_suppression(session, items, context.secret_key)
    owners = _resolve_owners(session, items)
    stage_positions = _check_stages(session, items)
    targets = _load_targets(session, items, mode)
    by_email = {t.row["email"]: t for t in targets.values() if t.row["email"]}
    by_external = {t.row["external_id"]: t for t in targets.values() if t.row["external_id"]}
    consent_events: list[InternalEvent] = []
    fresh_ids = ordered_id_supply(block=min(len(items), 256) or 1)

    for index, item in enumerate(items):
        outcome = outcomes[index]
        if item.problems:
            outcome.error = InvalidInput.of(item.problems)
            continue
        target, error = _find_target(item, mode, targets, by_email, by_external)
        if error is not None:
            outcome.error = error
            continue
        created = target is None
        if target is None:
            target = _new_target(next(fresh_ids), context.now)
        before = None if created else target.snapshot()
        error = _claim_keys(item, target, by_email, by_external)
        if error is not None:
            outcome.error = error
            continue
        _apply(item, target, typed_attributes[index], owners, context, consent_events)
        targets[target.row["id"]] = target
        outcome.contact_id = target.row["id"]
        if created:
            outcome.action = Action.created
        elif target.snapshot() != before:
            outcome.action = Action.updated
        else:
            outcome.action = Action.unchanged

    _write(session, targets.values(), outcomes, new_types, context)
    changed = [o.contact_id for o in outcomes if o.action in (Action.created, Action.updated)]
    queue_contacts(session, [c for c in changed if c is not None], now=context.now)
    change_events = _change_events(targets, outcomes, context) if context.record_changes else []
    record_internal(session, change_events + consent_events, now=context.now)
    pending = [
        (e.contact_id, str(e.properties["source"]))
        for e in consent_events
        if e.properties["channel"] == "email" and e.properties["status"] == "pending"
    ]
    if pending and context.confirmations is not None:
        context.confirmations.request(session, pending, now=context.now)
    record_stage_changes(
        session,
        _stage_moves(targets.values(), outcomes),
        positions=stage_positions,
        source=context.source,
        now=context.now,
    )
    return outcomes


def _change_events(
    targets: dict[uuid.UUID, _Target], outcomes: Sequence[Outcome], context: ApplyContext
) -> list[InternalEvent]:
    """What the batch did to each contact, as timeline events: `contact_created` (and a
    `tag_added` per tag it was created with), `tag_added` / `tag_removed`, and one
    `attribute_changed` per custom attribute whose value changed (`from` null when it
    was not set, `to` null when it was removed). Setting a new contact's attributes is
    part of its creation, not a change."""
    events: list[InternalEvent] = []
    seen: set[uuid.UUID] = set()
    for outcome in outcomes:
        contact_id = outcome.contact_id
        if contact_id is None or contact_id in seen:
            continue
        if outcome.action not in (Action.created, Action.updated):
            continue
        seen.add(contact_id)
        target = targets[contact_id]
        if not target.stored:
            events.append(InternalEvent(contact_id, "contact_created", {"source": context.source}))
        events.extend(
            InternalEvent(contact_id, "tag_added", {"tag": tag})
            for tag in sorted(target.tags - target.original_tags)
        )
        events.extend(
            InternalEvent(contact_id, "tag_removed", {"tag": tag})
            for tag in sorted(target.original_tags - target.tags)
        )
        if not target.stored:
            continue
        before = target.original.get("attributes") or {}
        after = target.row["attributes"]
        events.extend(
            InternalEvent(
                contact_id,
                "attribute_changed",
                {"attribute": name, "from": before.get(name), "to": after.get(name)},
            )
            for name in sorted(before.keys() | after.keys())
            if before.get(name) != after.get(name)
        )
    return events


def raise_for_failures(outcomes: Sequence[Outcome]) -> None:
    """For all-or-nothing callers: one error that names every failed item."""
    failed = [o.error for o in outcomes if o.error is not None]
    if not failed:
        return
    if len(failed) == 1:
        raise failed[0]
    problems = [p for e in failed for p in (e.problems or (FieldProblem("body", e.message),))]
    summary = InvalidInput.of(problems).message
    if all(isinstance(e, Conflict) for e in failed):
        raise Conflict(summary, problems)
    raise InvalidInput(summary, problems)


def _type_attributes(
    session: Session, items: Sequence[ContactChanges]
) -> tuple[list[dict[str, Any]], dict[str, AttributeType]]:
    """Coerce every attribute value to its attribute's type; new attributes get one."""
    names = {name for item in items for name in item.attributes}
    known = {
        name: AttributeType(kind)
        for name, kind in contacts_repository.attribute_types(session, names).items()
    }
    new_types: dict[str, AttributeType] = {}
    typed: list[dict[str, Any]] = []
    for item in items:
        values: dict[str, Any] = {}
        for name, raw in item.attributes.items():
            if raw is None or (item.attributes_from_text and raw == ""):
                values[name] = None
                continue
            kind = known.get(name) or new_types.get(name)
            if kind is None:
                kind = item.declared_types.get(name) or (
                    AttributeType.string
                    if item.attributes_from_text
                    else fields.infer_attribute_type(raw)
                )
                new_types[name] = kind
            try:
                values[name] = fields.coerce_attribute(
                    raw, kind, from_text=item.attributes_from_text
                )
            except FieldError as exc:
                item.problem(f"attributes.{name}", f"{exc} (attribute {name!r} is a {kind})")
        typed.append(values)
    return typed, new_types


def _check_suppression(session: Session, items: Sequence[ContactChanges], secret_key: str) -> None:
    if not privacy_repository.any_erased(session):
        return
    digests: dict[str, list[ContactChanges]] = {}
    for item in items:
        email = item.values.get("email")
        if email and not item.problems:
            digest = address_digest(secret_key, "email", email)
            digests.setdefault(digest, []).append(item)
    for digest, reason in privacy_repository.suppressed(session, digests).items():
        if reason != SuppressionReason.erased:
            continue  # bounced or complaining addresses may be stored; they are not mailed
        for item in digests[digest]:
            item.problem("email", REASON_MESSAGES[SuppressionReason(reason)])


def _resolve_owners(session: Session, items: Sequence[ContactChanges]) -> dict[str, uuid.UUID]:
    emails = {item.owner_email for item in items if item.owner_email}
    owners = contacts_repository.user_ids_by_email(session, emails)
    for item in items:
        if item.owner_email and item.owner_email not in owners:
            item.problem("owner", f"no user with the email {item.owner_email}")
    return owners


def _check_stages(session: Session, items: Sequence[ContactChanges]) -> dict[str, int]:
    """The pipeline (stage → position), read once if any item sets a stage; a stage not
    in it is a problem of the item."""
    if not any("lifecycle_stage" in item.values for item in items):
        return {}
    positions = pipeline_positions(session, lock=True)
    for item in items:
        stage = item.values.get("lifecycle_stage")
        if stage is not None and stage not in positions:
            item.problem("lifecycle_stage", unknown_stage(stage, positions))
    return positions


def _stage_moves(targets: Iterable[_Target], outcomes: Sequence[Outcome]) -> list[StageMove]:
    touched = {o.contact_id for o in outcomes if o.contact_id is not None}
    return [
        StageMove(t.row["id"], t.original.get("lifecycle_stage"), t.row["lifecycle_stage"])
        for t in targets
        if t.row["id"] in touched and t.original.get("lifecycle_stage") != t.row["lifecycle_stage"]
    ]


def _load_targets(
    session: Session, items: Sequence[ContactChanges], mode: Mode
) -> dict[uuid.UUID, _Target]:
    """Every stored contact an item may match or collide with, in three queries at most."""
    emails = {item.values["email"] for item in items if item.values.get("email")}
    externals = {item.values["external_id"] for item in items if item.values.get("external_id")}
    ids = {item.contact_id for item in items if item.contact_id is not None}
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    for row in contacts_repository.rows_by_column(session, "email", emails):
        rows[row["id"]] = row
    for row in contacts_repository.rows_by_column(session, "external_id", externals):
        rows[row["id"]] = row
    if mode is Mode.update:
        for row in contacts_repository.rows_by_ids(session, ids - rows.keys()):
            rows[row["id"]] = row
    tags = contacts_repository.tags_of(session, rows.keys())
    consents = contacts_repository.consents_of(session, rows.keys())
    targets: dict[uuid.UUID, _Target] = {}
    for contact_id, row in rows.items():
        row["attributes"] = dict(row["attributes"] or {})
        target = _Target(
            row=row,
            tags=set(tags.get(contact_id, ())),
            consents=dict(consents.get(contact_id, {})),
            stored=True,
        )
        target.original, target.original_tags, target.original_consents = target.snapshot()
        targets[contact_id] = target
    return targets


def _find_target(
    item: ContactChanges,
    mode: Mode,
    targets: dict[uuid.UUID, _Target],
    by_email: dict[str, _Target],
    by_external: dict[str, _Target],
) -> tuple[_Target | None, PostillonError | None]:
    if mode is Mode.update:
        target = targets.get(item.contact_id) if item.contact_id else None
        if target is None:
            return None, NotFound(f"no contact with id {item.contact_id}")
        return target, None
    if mode is Mode.create:
        return None, None
    email = item.values.get("email")
    external_id = item.values.get("external_id")
    if not email and not external_id:
        message = "give an email or an external_id to find or create the contact by"
        return None, InvalidInput.at(item.where("email"), message)
    by_ext = by_external.get(external_id) if external_id else None
    by_mail = by_email.get(email) if email else None
    if by_ext is not None and by_mail is not None and by_ext is not by_mail:
        return None, _conflict(
            item, "email", f"belongs to another contact ({by_mail.row['id']}) than the external_id"
        )
    if by_ext is None and by_mail is not None and external_id:
        stored_external = by_mail.row["external_id"]
        if stored_external and stored_external != external_id:
            return None, _conflict(
                item,
                "external_id",
                f"the contact with this email has the external_id {stored_external!r}",
            )
    return by_ext or by_mail, None


def _claim_keys(
    item: ContactChanges,
    target: _Target,
    by_email: dict[str, _Target],
    by_external: dict[str, _Target],
) -> PostillonError | None:
    """Make sure the email and external_id the item gives are free or already the target's."""
    for name, index in (("email", by_email), ("external_id", by_external)):
        value = item.values.get(name)
        if value is None or name not in item.values:
            continue
        holder = index.get(value)
        if holder is not None and holder is not target:
            return _conflict(item, name, f"already belongs to contact {holder.row['id']}")
    for name, index in (("email", by_email), ("external_id", by_external)):
        if name not in item.values:
            continue
        old = target.row.get(name)
        if old and index.get(old) is target:
            del index[old]
        if item.values[name]:
            index[item.values[name]] = target
    return None


def _conflict(item: ContactChanges, name: str, message: str) -> Conflict:
    location = item.where(name)
    return Conflict(f"{location}: {message}", [FieldProblem(location, message)])


_EMPTY_ROW: dict[str, Any] = dict.fromkeys(contacts_repository.CONTACT_COLUMNS)


def _new_target(contact_id: uuid.UUID, now: datetime) -> _Target:
    row = _EMPTY_ROW.copy()
    row.update(
        id=contact_id, attributes={}, score=0, state="identified", created_at=now, updated_at=now
    )
    return _Target(row=row, tags=set(), consents={}, stored=False)


def _apply(
    item: ContactChanges,
    target: _Target,
    attributes: dict[str, Any],
    owners: dict[str, uuid.UUID],
    context: ApplyContext,
    consent_events: list[InternalEvent],
) -> None:
    row = target.row
    row.update(item.values)
    if item.owner_given:
        row["owner_id"] = owners.get(item.owner_email) if item.owner_email else None
    for name, value in attributes.items():
        if value is None:
            row["attributes"].pop(name, None)
        else:
            row["attributes"][name] = value
    target.tags.update(item.tags)
    target.tags.difference_update(item.removed_tags)
    consent = dict(item.consent)
    for channel, decision in item.default_consent.items():
        if channel not in target.consents and channel not in consent:
            consent[channel] = decision
    for channel, (asked, source) in consent.items():
        current = target.consents.get(channel)
        status = _double_opt_in(channel, asked, source or context.source, current, context)
        if _unchanged(current, status, context):
            continue
        target.consents[channel] = {
            "contact_id": row["id"],
            "channel": channel,
            "status": status,
            "changed_at": context.now,
            "source": source or context.source,
        }
        consent_events.append(
            InternalEvent(
                contact_id=row["id"],
                name="consent_changed",
                properties={
                    "channel": channel,
                    "status": status,
                    "previous_status": current["status"] if current else None,
                    "source": source or context.source,
                },
            )
        )


def _double_opt_in(
    channel: str,
    status: str,
    source: str,
    current: dict[str, Any] | None,
    context: ApplyContext,
) -> str:
    """Every consent decision passes here: a subscription to email from a double opt-in
    source is only `pending` (`apply_changes` then has the confirmation mailed, see
    subscriptions/optin.py); a contact already subscribed stays so, one already pending
    is not asked again."""
    if (
        channel == "email"
        and status == "subscribed"
        and source in context.double_opt_in_sources
        and (current is None or current["status"] != "subscribed")
    ):
        return "pending"
    return status


def _unchanged(current: dict[str, Any] | None, status: str, context: ApplyContext) -> bool:
    """Whether a decision leaves the consent as it is. A contact still pending who
    subscribes again (the first mail lost or expired) is asked again, at most once per
    `_ASK_AGAIN_AFTER`: the pending decision is renewed."""
    if current is None or current["status"] != status:
        return False
    return status != "pending" or current["changed_at"] + _ASK_AGAIN_AFTER > context.now


def _write(
    session: Session,
    targets: Iterable[_Target],
    outcomes: Sequence[Outcome],
    new_types: dict[str, AttributeType],
    context: ApplyContext,
) -> None:
    touched = {o.contact_id for o in outcomes if o.contact_id is not None}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    removed_tags: list[tuple[uuid.UUID, str]] = []
    new_consents: list[dict[str, Any]] = []
    changed_consents: list[dict[str, Any]] = []
    used_attributes: set[str] = set()
    for target in targets:
        contact_id = target.row["id"]
        if contact_id not in touched:
            continue
        used_attributes.update(target.row["attributes"])
        changed = (
            target.row != target.original
            or target.tags != target.original_tags
            or target.consents != target.original_consents
        )
        if not changed:
            continue
        target.row["updated_at"] = context.now
        (updates if target.stored else inserts).append(target.row)
        tag_rows.extend(
            {"contact_id": contact_id, "tag": tag, "added_at": context.now}
            for tag in sorted(target.tags - target.original_tags)
        )
        removed_tags.extend((contact_id, tag) for tag in sorted(target.original_tags - target.tags))
        for channel, consent in target.consents.items():
            if channel not in target.original_consents:
                new_consents.append(consent)
            elif consent != target.original_consents[channel]:
                changed_consents.append(consent)
    contacts_repository.define_attributes(
        session,
        [
            {"name": name, "type": kind.value, "created_at": context.now}
            for name, kind in new_types.items()
            if name in used_attributes
        ],
    )
    contacts_repository.insert_contacts(session, inserts)
    contacts_repository.update_contacts(session, updates)
    contacts_repository.add_tags(session, tag_rows)
    contacts_repository.delete_tags(session, removed_tags)
    contacts_repository.insert_consents(session, new_consents)
    contacts_repository.update_consents(session, changed_consents)
