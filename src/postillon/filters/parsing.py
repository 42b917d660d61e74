"""Filter documents (JSON, or YAML from files) checked and turned into the tree of `model`.

Every problem is reported with the path of the node it is in (`filter.all[2].value`), all
at once. With `References`, names that must exist (lifecycle stages, score models,
segments) are checked as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from postillon.errors import FieldProblem, InvalidInput
from postillon.filters import model as m
from postillon.filters.documents import load_yaml
from postillon.filters.model import Kind, Op, Test
from postillon.filters.operands import MAX_DAYS, Wrong, check_operand, instant, is_int

FIELDS: dict[str, Kind] = {
    "email": Kind.text,
    "phone": Kind.text,
    "first_name": Kind.text,
    "last_name": Kind.text,
    "external_id": Kind.text,
    "timezone": Kind.text,
    "locale": Kind.text,
    "state": Kind.text,
    "score": Kind.number,
    "lifecycle_stage": Kind.stage,
    "created_at": Kind.timestamp,
    "updated_at": Kind.timestamp,
    "last_seen_at": Kind.timestamp,
    "monitored_at": Kind.timestamp,
}
LAST_SEEN_KEYS = ("device", "os", "browser", "country")

TRAITS: dict[str, Kind] = {
    "rfm_recency": Kind.number,
    "rfm_frequency": Kind.number,
    "rfm_monetary": Kind.number,
    "rfm_cell": Kind.text,
    "engagement": Kind.text,
    "purchase_count": Kind.number,
    "clv": Kind.number,
    "average_order_value": Kind.number,
    "purchase_frequency": Kind.number,
    "first_purchase_at": Kind.timestamp,
    "last_purchase_at": Kind.timestamp,
    "days_since_last_purchase": Kind.days_since,
}

CONSENT_CHANNELS = ("email", "sms", "push")
CONSENT_STATUSES = (
    "subscribed",
    "pending",
    "unsubscribed",
    "bounced",
    "complained",
    "unknown",
)
PURCHASE_MEASURES = ("revenue", "count", "average_order_value")

_COMPARE = {Op.eq, Op.ne, Op.lt, Op.le, Op.gt, Op.ge, Op.in_, Op.not_in, Op.between}
_PRESENCE = {Op.exists, Op.empty}
_TEXT = {Op.contains, Op.starts_with, Op.ends_with, Op.matches}
_DAYS = {Op.within_last_days, Op.more_than_days_ago}
_DATES = {Op.before, Op.after, *_DAYS}
OPS_BY_KIND: dict[Kind, frozenset[Op]] = {
    Kind.json: frozenset(Op),
    Kind.text: frozenset(_COMPARE | _PRESENCE | _TEXT),
    Kind.number: frozenset(_COMPARE | _PRESENCE),
    Kind.stage: frozenset(_COMPARE | _PRESENCE),
    Kind.days_since: frozenset(_COMPARE | _PRESENCE),
    Kind.timestamp: frozenset(_DATES | _PRESENCE | {Op.between}),
}
_OP_SPELLINGS = {op.value: op for op in Op} | {
    "==": Op.eq,
    "<>": Op.ne,
    "not in": Op.not_in,
    "starts with": Op.starts_with,
    "ends with": Op.ends_with,
    "within last days": Op.within_last_days,
    "more than days ago": Op.more_than_days_ago,
    "anniversary within days": Op.anniversary_within_days,
    "age between": Op.age_between,
}

__all__ = ["References", "load_yaml", "parse_filter", "parse_property_filter"]

MAX_NODES = 200
MAX_DEPTH = 12
_PATH_PART = re.compile(r"^[^.\"\\\x00]{1,100}$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class References:
    """What the names in a filter may refer to. Checked when given."""

    stages: tuple[str, ...] = ()
    score_models: Collection[str] = ()
    segments: Collection[str] = ()


def parse_filter(
    doc: Any, *, where: str = "filter", references: References | None = None
) -> m.Filter:
    """The checked tree of a filter document, or InvalidInput naming every bad node."""
    parser = _Parser(references)
    node = parser.condition(doc, where, depth=0)
    parser.raise_problems()
    assert node is not None
    return node


def parse_property_filter(doc: Any, *, where: str = "where") -> m.PropertyFilter:
    """An event property filter (what scoring rules and `performed … where` take)."""
    parser = _Parser(None)
    node = parser.property_filter(doc, where, depth=0)
    parser.raise_problems()
    assert node is not None
    return node


@dataclass
class _Parser:
    references: References | None
    problems: list[FieldProblem] = field(default_factory=list)
    nodes: int = 0

    def problem(self, at: str, message: str) -> None:
        self.problems.append(FieldProblem(at, message))

    def raise_problems(self) -> None:
        if self.problems:
            raise InvalidInput.of(self.problems)

    # --- structure ---

    def _object(self, doc: Any, at: str, depth: int) -> Mapping[str, Any] | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.problem(at, f"a filter has at most {MAX_NODES} conditions")
            return None
        if depth > MAX_DEPTH:
            self.problem(at, f"groups nest at most {MAX_DEPTH} deep")
            return None
        if not isinstance(doc, dict) or not doc:
            self.problem(at, "must be an object with one condition or group")
            return None
        return doc

    def _group(
        self,
        doc: Mapping[str, Any],
        at: str,
        depth: int,
        item: Callable[[Any, str, int], Any],
    ) -> tuple[str, Any] | None:
        """`all` / `any` (lists) and `not` (one item), shared by both kinds of filter."""
        (key,) = doc.keys() & {"all", "any", "not"} or (None,)
        if key is None:
            return None
        self._only(doc, at, {key})
        if key == "not":
            return key, item(doc["not"], f"{at}.not", depth + 1)
        items = doc[key]
        if not isinstance(items, list) or not items:
            self.problem(f"{at}.{key}", "must be a non-empty list of conditions")
            return key, None
        parsed = [item(sub, f"{at}.{key}[{i}]", depth + 1) for i, sub in enumerate(items)]
        return key, tuple(parsed) if all(p is not None for p in parsed) else None

    def _only(self, doc: Mapping[str, Any], at: str, allowed: Collection[str]) -> None:
        extra = sorted(set(doc) - set(allowed))
        if extra:
            self.problem(
                f"{at}.{extra[0]}",
                f"is not part of this condition (it takes {', '.join(sorted(allowed))})",
            )

    def condition(self, doc: Any, at: str, depth: int) -> m.Filter | None:
        obj = self._object(doc, at, depth)
        if obj is None:
            return None
        if len(obj.keys() & {"all", "any", "not"}) > 1:
            self.problem(at, "use one of all, any and not per object")
            return None
        group = self._group(obj, at, depth, self.condition)
        if group is not None:
            key, parsed = group
            if parsed is None:
                return None
            if key == "not":
                return m.Not(parsed)
            return m.All(parsed) if key == "all" else m.AnyOf(parsed)
        for key, build in self._conditions.items():
            if key in obj:
                return build(self, obj, at)
        self.problem(
            at,
            "is not a condition: use one of all, any, not, " + ", ".join(self._conditions),
        )
        return None

    def property_filter(self, doc: Any, at: str, depth: int) -> m.PropertyFilter | None:
        obj = self._object(doc, at, depth)
        if obj is None:
            return None
        group = self._group(obj, at, depth, self.property_filter)
        if group is not None:
            key, parsed = group
            if parsed is None:
                return None
            if key == "not":
                return m.PropertyNot(parsed)
            return m.PropertyAll(parsed) if key == "all" else m.PropertyAny(parsed)
        if "property" not in obj:
            self.problem(at, "is not a property condition: use all, any, not or property")
            return None
        self._only(obj, at, {"property", "op", "value"})
        path = self._path(obj["property"], f"{at}.property")
        test = self.test(obj, at, Kind.json)
        return m.PropertyCondition(path, test) if path and test else None

    # --- conditions ---

    def _field(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"field", "op", "value"})
        name = doc["field"]
        if isinstance(name, str) and name.startswith("last_seen."):
            if name.removeprefix("last_seen.") not in LAST_SEEN_KEYS:
                self.problem(f"{at}.field", f"last_seen has {', '.join(LAST_SEEN_KEYS)}")
                return None
            kind = Kind.json
        elif isinstance(name, str) and name in FIELDS:
            kind = FIELDS[name]
        else:
            known = ", ".join([*FIELDS, *(f"last_seen.{k}" for k in LAST_SEEN_KEYS)])
            self.problem(f"{at}.field", f"unknown field {name!r}; fields are {known}")
            return None
        test = self.test(doc, at, kind)
        return m.FieldCondition(name, kind, test) if test else None

    def _attribute(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"attribute", "op", "value"})
        path = self._path(doc["attribute"], f"{at}.attribute")
        test = self.test(doc, at, Kind.json)
        return m.AttributeCondition(path, test) if path and test else None

    def _tag(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"tag"})
        tag = doc["tag"]
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
            self.problem(f"{at}.tag", "must be a tag name (text, at most 100 characters)")
            return None
        return m.TagCondition(tag.strip().lower())

    def _consent(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"consent", "status"})
        channel = doc["consent"]
        if channel not in CONSENT_CHANNELS:
            self.problem(f"{at}.consent", f"must be one of {', '.join(CONSENT_CHANNELS)}")
            return None
        raw = doc.get("status", "subscribed")
        statuses = raw if isinstance(raw, list) else [raw]
        bad = [s for s in statuses if s not in CONSENT_STATUSES]
        if bad or not statuses:
            self.problem(f"{at}.status", f"must be one or a list of {', '.join(CONSENT_STATUSES)}")
            return None
        return m.ConsentCondition(channel, frozenset(statuses))

    def _score(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"score", "op", "value"})
        key = self._key(doc["score"], f"{at}.score", "a score model key")
        if key and self.references and key not in self.references.score_models:
            self.problem(f"{at}.score", f"no score model {key!r}")
        test = self.test(doc, at, Kind.number)
        return m.ScoreCondition(key, test) if key and test else None

    def _segment(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"in_segment"})
        key = self._key(doc["in_segment"], f"{at}.in_segment", "a segment key")
        if key and self.references and key not in self.references.segments:
            self.problem(f"{at}.in_segment", f"no segment {key!r}")
        return m.SegmentCondition(key) if key else None

    def _trait(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"trait", "op", "value"})
        name = doc["trait"]
        if not isinstance(name, str) or name not in TRAITS:
            self.problem(f"{at}.trait", f"unknown trait; traits are {', '.join(TRAITS)}")
            return None
        test = self.test(doc, at, TRAITS[name])
        return m.TraitCondition(name, TRAITS[name], test) if test else None

    def _performed(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        key = "performed" if "performed" in doc else "never_performed"
        self._only(doc, at, {key, "where", "times", "within_last_days", "between"})
        event = self._event_name(doc[key], f"{at}.{key}")
        where = self._where(doc, at)
        window = self._window(doc, at)
        if key == "never_performed":
            if "times" in doc:
                self.problem(f"{at}.times", "never_performed takes no times")
            count: Test | None = Test(Op.eq, 0)
        else:
            count = self._times(doc.get("times", 1), f"{at}.times")
        if event is None or count is None or window is None or isinstance(where, bool):
            return None
        return m.Performed(event, where, count, window)

    def _visited(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"visited", "times", "within_last_days", "between"})
        spec = doc["visited"]
        if isinstance(spec, str):
            spec = {"op": "contains", "value": spec}
        if not isinstance(spec, dict):
            self.problem(
                f"{at}.visited", "must be a URL test such as {op: contains, value: /shoes}"
            )
            return None
        self._only(spec, f"{at}.visited", {"op", "value"})
        test = self.test(spec, f"{at}.visited", Kind.text)
        count = self._times(doc.get("times", 1), f"{at}.times")
        window = self._window(doc, at)
        if test is None or count is None or window is None:
            return None
        url = m.PropertyCondition(("url",), test)
        return m.Performed(m.PAGE_VIEW_EVENT, url, count, window)

    def _occurrence(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        key = "first_performed" if "first_performed" in doc else "last_performed"
        self._only(doc, at, {key, "where", "op", "value"})
        event = self._event_name(doc[key], f"{at}.{key}")
        where = self._where(doc, at)
        test = self.test(doc, at, Kind.timestamp)
        if event is None or test is None or isinstance(where, bool):
            return None
        return m.Occurrence(event, where, key.removesuffix("_performed"), test)

    def _purchases(self, doc: Mapping[str, Any], at: str) -> m.Filter | None:
        self._only(doc, at, {"purchases", "op", "value", "within_last_days", "between"})
        measure = doc["purchases"]
        if measure not in PURCHASE_MEASURES:
            self.problem(f"{at}.purchases", f"must be one of {', '.join(PURCHASE_MEASURES)}")
            return None
        test = self.test(doc, at, Kind.number)
        window = self._window(doc, at)
        if test is None or window is None:
            return None
        return m.Purchases(measure, test, window)

    _conditions: ClassVar[
        dict[str, Callable[[_Parser, Mapping[str, Any], str], m.Filter | None]]
    ] = {
        "field": _field,
        "attribute": _attribute,
        "tag": _tag,
        "consent": _consent,
        "score": _score,
        "in_segment": _segment,
        "trait": _trait,
        "performed": _performed,
        "never_performed": _performed,
        "visited": _visited,
        "first_performed": _occurrence,
        "last_performed": _occurrence,
        "purchases": _purchases,
    }

    # --- parts ---

    def _path(self, raw: Any, at: str) -> tuple[str, ...] | None:
        parts = raw.split(".") if isinstance(raw, str) else []
        if not parts or len(parts) > 5 or not all(_PATH_PART.match(p) for p in parts):
            self.problem(at, "must be a name, or a dotted path of up to 5 names (a.b)")
            return None
        return tuple(parts)

    def _key(self, raw: Any, at: str, what: str) -> str | None:
        if not isinstance(raw, str) or not _KEY.match(raw):
            self.problem(at, f"must be {what} (letters, digits, - and _)")
            return None
        return raw

    def _event_name(self, raw: Any, at: str) -> str | None:
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
            self.problem(at, "must be an event name")
            return None
        return raw.strip()

    def _where(self, doc: Mapping[str, Any], at: str) -> m.PropertyFilter | bool | None:
        if "where" not in doc:
            return None
        parsed = self.property_filter(doc["where"], f"{at}.where", depth=1)
        return False if parsed is None else parsed

    def _times(self, raw: Any, at: str) -> Test | None:
        if is_int(raw) and raw >= 0:
            return Test(Op.ge, raw)
        ops = {"at_least": Op.ge, "at_most": Op.le, "exactly": Op.eq}
        if isinstance(raw, dict) and len(raw) == 1:
            ((key, value),) = raw.items()
            if key in ops and is_int(value) and 0 <= value <= 1_000_000:
                return Test(ops[key], value)
        self.problem(at, "must be {at_least: N}, {at_most: N} or {exactly: N} (N ≥ 0)")
        return None

    def _window(self, doc: Mapping[str, Any], at: str) -> m.Window | None:
        if "within_last_days" in doc and "between" in doc:
            self.problem(at, "give within_last_days or between, not both")
            return None
        if "within_last_days" in doc:
            days = doc["within_last_days"]
            if not is_int(days) or not 0 < days <= MAX_DAYS:
                self.problem(f"{at}.within_last_days", f"must be a whole number 1…{MAX_DAYS}")
                return None
            return m.Window(days=days)
        if "between" in doc:
            bounds = doc["between"]
            if isinstance(bounds, list) and len(bounds) == 2:
                start, end = (instant(b, upper=i == 1) for i, b in enumerate(bounds))
                if start is not None and end is not None and start < end:
                    return m.Window(start=start, end=end)
            self.problem(f"{at}.between", "must be [from, to]: two dates or date-times, in order")
            return None
        return m.Window()

    def test(self, doc: Mapping[str, Any], at: str, kind: Kind) -> Test | None:
        raw_op = doc.get("op")
        op = _OP_SPELLINGS.get(raw_op) if isinstance(raw_op, str) else None
        if op is None or op not in OPS_BY_KIND[kind]:
            allowed = ", ".join(o.value for o in Op if o in OPS_BY_KIND[kind])
            self.problem(f"{at}.op", f"must be one of {allowed}")
            return None
        value_at = f"{at}.value"
        raw = doc.get("value")
        if op in _PRESENCE:
            if raw is not None:
                self.problem(value_at, f"{op.value} takes no value")
                return None
            return Test(op)
        if "value" not in doc:
            self.problem(value_at, f"is required for {op.value}")
            return None
        value = check_operand(op, raw, kind)
        if isinstance(value, Wrong):
            self.problem(value_at, value.message)
            return None
        if kind is Kind.stage and self.references:
            stages = self.references.stages
            names = value if isinstance(value, tuple) else (value,)
            for name in names:
                if name not in stages:
                    self.problem(value_at, f"no stage {name!r}; stages are {', '.join(stages)}")
                    return None
        return Test(op, value)
