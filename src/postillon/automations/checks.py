"""What a document names must exist: the checks `documents.py` cannot make alone.

A document is first made plain JSON (`json_ready`: text keys, dates as ISO text, no
sets, bounded size and depth), so that what is checked is exactly what is stored and
what a published version is parsed from later. Then `reference_problems` walks it, as
written, for the names of templates, journeys, date attributes, stages, score models and
segments, each problem with its path (`steps[2].send.template`). The walk reads the
document defensively: a part of the wrong shape is the parser's problem, reported by it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from postillon.automations import model as am
from postillon.contacts.fields import (
    AttributeType,
    FieldError,
    check_attribute_name,
    coerce_attribute,
)
from postillon.errors import FieldProblem

MAX_VALUES = 20_000
MAX_DEPTH = 40


class _TooLarge(Exception):
    pass


def json_ready(doc: Any) -> tuple[Any, list[FieldProblem]]:
    """The document as plain JSON values, and what could not be made so."""
    problems: list[FieldProblem] = []
    count = 0

    def convert(value: Any, at: str, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > MAX_VALUES:
            raise _TooLarge
        if depth > MAX_DEPTH:
            problems.append(FieldProblem(at or "document", f"nests deeper than {MAX_DEPTH}"))
            return None
        if isinstance(value, str):
            return _text(value, at)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                problems.append(FieldProblem(at or "document", "is too large a number"))
                return None
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                problems.append(FieldProblem(at or "document", "must be a finite number"))
                return None
            return value
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    where = f"{at}.{key}" if at else str(key)
                    problems.append(
                        FieldProblem(where, "names must be text (quote yes, no, on, off, numbers)")
                    )
                    continue
                where = f"{at}.{key}" if at else key
                out[_text(key, where)] = convert(item, where, depth + 1)
            return out
        if isinstance(value, list):
            return [convert(item, f"{at}[{i}]", depth + 1) for i, item in enumerate(value)]
        problems.append(FieldProblem(at or "document", "must be text, a number, a list or a map"))
        return None

    def _text(value: str, at: str) -> str:
        # Neither PostgreSQL nor JSON in UTF-8 can hold these.
        if "\x00" in value:
            problems.append(FieldProblem(at or "document", "must not contain the NUL character"))
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(FieldProblem(at or "document", "must be valid Unicode text"))
        return value

    try:
        converted = convert(doc, "", 0)
        return converted, [FieldProblem(_printable(p.location), p.message) for p in problems]
    except _TooLarge:
        return None, [FieldProblem("document", f"has more than {MAX_VALUES:,} values")]


def _printable(location: str) -> str:
    return location.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Known:
    """What exists that documents may name (loaded in a few queries per save)."""

    templates: Collection[str]
    # key → (kind, status) of every automation a document names.
    automations: Mapping[str, tuple[str, str]]
    attribute_types: Mapping[str, str]
    stages: Collection[str]
    score_models: Collection[str]
    segments: Collection[str]
    # Journeys being saved together with this document (files published at once).
    also_journeys: Collection[str] = ()


@dataclass
class Names:
    """The names a document uses, by kind, to load only those (see `names_in`)."""

    templates: set[str] = field(default_factory=set)
    automations: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)


def names_in(doc: Any) -> Names:
    names = Names()
    _walk(doc, _Collect(names))
    return names


def reference_problems(doc: Any, known: Known) -> list[FieldProblem]:
    """Every name in the document that does not name what it must, with its path."""
    check = _Check(known, self_key=doc.get("key") if isinstance(doc, dict) else None)
    _walk(doc, check)
    return check.problems


# --- the walk: where names are in a document ---


class _Visitor:
    def template(self, name: str, at: str) -> None: ...
    def journey(self, name: str, at: str) -> None: ...
    def date_attribute(self, name: str, at: str) -> None: ...
    def attribute_value(self, name: str, value: Any, at: str) -> None: ...
    def stage(self, name: str, at: str) -> None: ...
    def score_model(self, name: str, at: str) -> None: ...
    def segment(self, name: str, at: str) -> None: ...


def _walk(doc: Any, visit: _Visitor) -> None:
    if not isinstance(doc, dict):
        return
    _trigger(doc.get("trigger"), "trigger", visit)
    if doc.get("kind") == "rule":
        _actions(doc.get("actions"), "actions", visit)
        return
    if doc.get("kind") != "journey":
        return
    for key in ("goal",):
        if isinstance(doc.get(key), dict):
            _trigger(doc[key], key, visit)
    exits = doc.get("exit_when")
    if isinstance(exits, list):
        for i, item in enumerate(exits):
            _trigger(item, f"exit_when[{i}]", visit)
    steps = doc.get("steps")
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        at = f"steps[{i}]"
        if "send" in step:
            _send(step["send"], f"{at}.send", visit)
        if "update" in step:
            _actions(step["update"], f"{at}.update", visit)
        if isinstance(step.get("move_to"), str):
            visit.journey(step["move_to"], f"{at}.move_to")
        wait = step.get("wait")
        if isinstance(wait, dict) and isinstance(wait.get("attribute"), str):
            visit.date_attribute(wait["attribute"], f"{at}.wait.attribute")
        if isinstance(step.get("wait_for"), dict):
            _trigger(step["wait_for"], f"{at}.wait_for", visit)


def _trigger(raw: Any, at: str, visit: _Visitor) -> None:
    if not isinstance(raw, dict):
        return
    date_trigger = raw.get("date")
    if isinstance(date_trigger, dict) and isinstance(date_trigger.get("attribute"), str):
        visit.date_attribute(date_trigger["attribute"], f"{at}.date.attribute")
    shorthands: dict[str, tuple[str, Callable[[str, str], None]]] = {
        "journey_entered": ("journey", visit.journey),
        "stage_changed": ("to", visit.stage),
        "segment_entered": ("segment", visit.segment),
        "segment_exited": ("segment", visit.segment),
    }
    for kind, (prop, check) in shorthands.items():
        value = raw.get(kind)
        if isinstance(value, str):
            check(value, f"{at}.{kind}")
        elif isinstance(value, dict):
            for name in (prop, "from") if kind == "stage_changed" else (prop,):
                if isinstance(value.get(name), str):
                    check(value[name], f"{at}.{kind}.{name}")


def _actions(raw: Any, at: str, visit: _Visitor) -> None:
    if not isinstance(raw, list):
        return
    for i, action in enumerate(raw):
        if not isinstance(action, dict) or len(action) != 1:
            continue
        ((kind, value),) = action.items()
        where = f"{at}[{i}].{kind}"
        if kind == "send":
            _send(value, where, visit)
        elif kind == "stage" and isinstance(value, str):
            visit.stage(value.strip(), where)
        elif kind == "score" and isinstance(value, dict) and isinstance(value.get("model"), str):
            visit.score_model(value["model"], f"{where}.model")
        elif kind in ("journey_add", "journey_remove") and isinstance(value, str):
            visit.journey(value, where)
        elif kind == "set" and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(name, str):
                    visit.attribute_value(name, item, f"{where}.{name}")


def _send(raw: Any, at: str, visit: _Visitor) -> None:
    if isinstance(raw, str):
        visit.template(raw.strip(), at)
    elif isinstance(raw, dict) and isinstance(raw.get("template"), str):
        visit.template(raw["template"].strip(), f"{at}.template")


class _Collect(_Visitor):
    def __init__(self, names: Names) -> None:
        self.names = names

    def template(self, name: str, at: str) -> None:
        self.names.templates.add(name)

    def journey(self, name: str, at: str) -> None:
        self.names.automations.add(name)

    def date_attribute(self, name: str, at: str) -> None:
        self.names.attributes.add(name)

    def attribute_value(self, name: str, value: Any, at: str) -> None:
        self.names.attributes.add(name)


class _Check(_Visitor):
    def __init__(self, known: Known, *, self_key: Any) -> None:
        self.known = known
        self.self_key = self_key
        self.problems: list[FieldProblem] = []

    def problem(self, at: str, message: str) -> None:
        self.problems.append(FieldProblem(at, message))

    def template(self, name: str, at: str) -> None:
        if name and name not in self.known.templates:
            self.problem(at, f"no template has the key {name!r}{_near(name, self.known.templates)}")

    def journey(self, name: str, at: str) -> None:
        if name == self.self_key or name in self.known.also_journeys:
            return
        found = self.known.automations.get(name)
        if found is None:
            journeys = [k for k, (kind, _) in self.known.automations.items() if kind == "journey"]
            self.problem(at, f"no journey has the key {name!r}{_near(name, journeys)}")
        elif found[0] != "journey":
            self.problem(at, f"{name!r} is a {found[0]}, not a journey")
        elif found[1] == "archived":
            self.problem(at, f"journey {name!r} is archived")

    def date_attribute(self, name: str, at: str) -> None:
        kind = self.known.attribute_types.get(name)
        if kind is not None and kind != AttributeType.date:
            self.problem(at, f"attribute {name!r} holds {kind} values; a date attribute is needed")

    def attribute_value(self, name: str, value: Any, at: str) -> None:
        try:
            check_attribute_name(name)
            kind = self.known.attribute_types.get(name)
            if kind is not None and value is not None:
                coerce_attribute(value, AttributeType(kind))
        except FieldError as error:
            self.problem(at, str(error))

    def stage(self, name: str, at: str) -> None:
        if name and name not in self.known.stages:
            stages = ", ".join(self.known.stages)
            self.problem(at, f"no lifecycle stage has the key {name!r} (stages: {stages})")

    def score_model(self, name: str, at: str) -> None:
        if name not in self.known.score_models:
            self.problem(
                at, f"no score model has the key {name!r}{_near(name, self.known.score_models)}"
            )

    def segment(self, name: str, at: str) -> None:
        if name not in self.known.segments:
            self.problem(at, f"no segment has the key {name!r}{_near(name, self.known.segments)}")


def _near(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def journey_step_ids(tree: am.Automation) -> list[str]:
    return [step.id for step in tree.steps] if isinstance(tree, am.Journey) else []
