"""Automation documents (YAML files or JSON) → the checked tree of `model.py`.

Every problem is collected with its path (`steps[3].wait_for.timeout`); documents read
from text get the line of each path (`journey.yaml line 14: steps[3].wait_for.timeout`).
Filters inside (conditions, branches, goals) are parsed by the filter language, through
`parse_filter` given by the caller, so stages, score models and segments they name are
checked against what exists.

What the parser cannot know — that templates, journeys and attributes named exist — is
checked by `service.py` when a document is saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postillon.automations import model as am
from postillon.errors import FieldProblem, InvalidInput
from postillon.filters import model as fm
from postillon.filters.documents import load_yaml, with_lines
from postillon.filters.parsing import parse_filter as plain_parse_filter
from postillon.filters.parsing import parse_property_filter

FilterParser = Callable[[Any, str], fm.Filter]
T = TypeVar("T")

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
_EVENT = re.compile(r"^[A-Za-z0-9_.:$ -]{1,200}$")
_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_STEPS = 200
MAX_ACTIONS = 50
MAX_WAIT = timedelta(days=3 * 366)


def parse_automation_text(
    text: str, *, source: str = "document", parse_filter: FilterParser | None = None
) -> am.Automation:
    """A document as written (YAML or JSON) → its tree; problems name their lines."""
    doc = load_yaml(text, source=source)
    try:
        return parse_automation(doc, parse_filter=parse_filter)
    except InvalidInput as error:
        raise with_lines(error, text, source=source) from None


def parse_automation(doc: Any, *, parse_filter: FilterParser | None = None) -> am.Automation:
    """A document (parsed JSON/YAML) → its tree, or InvalidInput naming every problem."""
    checker = _Checker(parse_filter or (lambda d, at: plain_parse_filter(d, where=at)))
    tree = checker.automation(doc)
    if checker.problems or tree is None:
        raise InvalidInput.of(checker.problems or [FieldProblem("document", "is empty")])
    return tree


def parse_duration(raw: Any) -> timedelta | None:
    """`90m`, `1h`, `3d`, `2w`, `1d12h` (or a number of seconds) → timedelta."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) and raw > 0:
        return _seconds(raw)
    if not isinstance(raw, str):
        return None
    text = raw.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    return _seconds(seconds) if seconds > 0 else None


def _seconds(seconds: int) -> timedelta:
    # Longer than timedelta can hold: as long as it can (callers refuse it as too long).
    return timedelta(seconds=seconds) if seconds < 10**14 else timedelta.max


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in _UNITS.items():
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


@dataclass
class _Checker:
    parse_filter: FilterParser
    problems: list[FieldProblem] = field(default_factory=list)

    def problem(self, at: str, message: str) -> None:
        self.problems.append(FieldProblem(at, message))

    # --- small values ---

    def obj(self, doc: Any, at: str, allowed: set[str]) -> Mapping[str, Any] | None:
        if not isinstance(doc, dict):
            self.problem(at, "must be an object")
            return None
        for key in sorted(set(doc) - allowed, key=str):
            self.problem(_join(at, key), f"is not known here (known: {', '.join(sorted(allowed))})")
        return doc

    def text(
        self,
        doc: Mapping[str, Any],
        key: str,
        at: str,
        *,
        required: bool = True,
        longest: int = 200,
    ) -> str | None:
        raw = doc.get(key)
        if raw is None:
            if required:
                self.problem(_join(at, key), "is required")
            return None
        if not isinstance(raw, str) or not raw.strip() or len(raw) > longest:
            self.problem(_join(at, key), f"must be text of 1 to {longest} characters")
            return None
        return raw.strip()

    def duration(self, raw: Any, at: str) -> timedelta | None:
        value = parse_duration(raw)
        if value is None:
            self.problem(at, "must be a duration such as 30m, 1h, 3d, 2w or 1d12h")
        elif value > MAX_WAIT:
            self.problem(at, "must be at most 3 years")
            return None
        return value

    def time_of_day(self, raw: Any, at: str) -> time | None:
        if isinstance(raw, str):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw.strip())
            if match and int(match[1]) < 24 and int(match[2]) < 60:
                return time(int(match[1]), int(match[2]))
        self.problem(at, "must be a local time of day such as 09:00")
        return None

    def weekdays(self, raw: Any, at: str) -> tuple[int, ...] | None:
        items = raw if isinstance(raw, list) else [raw]
        days: list[int] = []
        for item in items:
            name = item.strip().lower() if isinstance(item, str) else None
            if name not in _WEEKDAYS:
                self.problem(at, f"must be weekdays among {', '.join(_WEEKDAYS)}")
                return None
            days.append(_WEEKDAYS.index(name))
        if not days:
            self.problem(at, "must name at least one weekday")
            return None
        return tuple(sorted(set(days)))

    def integer(self, raw: Any, at: str, low: int, high: int) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            self.problem(at, f"must be a whole number from {low} to {high}")
            return None
        return raw

    def choice(self, raw: Any, at: str, enum: type[T]) -> T | None:
        try:
            return enum(raw)  # type: ignore[call-arg]
        except ValueError:
            names = ", ".join(str(e.value) for e in enum)  # type: ignore[attr-defined]
            self.problem(at, f"must be one of {names}")
            return None

    def boolean(self, doc: Mapping[str, Any], key: str, at: str) -> bool:
        raw = doc.get(key, False)
        if not isinstance(raw, bool):
            self.problem(_join(at, key), "must be true or false")
            return False
        return raw

    def filter(self, raw: Any, at: str) -> fm.Filter | None:
        try:
            return self.parse_filter(raw, at)
        except InvalidInput as error:
            self.problems.extend(error.problems)
            return None

    def property_filter(self, raw: Any, at: str) -> fm.PropertyFilter | None:
        try:
            return parse_property_filter(raw, where=at)
        except InvalidInput as error:
            self.problems.extend(error.problems)
            return None

    # --- the document ---

    def automation(self, doc: Any) -> am.Automation | None:
        if not isinstance(doc, dict):
            self.problem("document", "must be an object with kind, key, name …")
            return None
        kind = doc.get("kind")
        if kind == "rule":
            return self.rule(doc)
        if kind == "journey":
            return self.journey(doc)
        self.problem("kind", "must be rule or journey")
        return None

    def key(self, doc: Mapping[str, Any]) -> str | None:
        key = doc.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            self.problem(
                "key", "must be 1-100 of a-z, 0-9, - and _, starting with a letter or digit"
            )
            return None
        return key

    def rule(self, doc: Mapping[str, Any]) -> am.Rule | None:
        self.obj(
            doc,
            "",
            {
                "kind",
                "key",
                "name",
                "description",
                "trigger",
                "conditions",
                "actions",
                "once_per_contact",
                "cooldown",
                "transactional",
            },
        )
        key = self.key(doc)
        name = self.text(doc, "name", "")
        trigger = self.trigger(doc.get("trigger"), "trigger", journey=False)
        conditions = self.filter(doc["conditions"], "conditions") if "conditions" in doc else None
        actions = self.actions(doc.get("actions"), "actions", sends=True)
        cooldown = self.duration(doc["cooldown"], "cooldown") if "cooldown" in doc else None
        once = self.boolean(doc, "once_per_contact", "")
        transactional = self.boolean(doc, "transactional", "")
        description = self.text(doc, "description", "", required=False, longest=2000) or ""
        if (
            key is None
            or name is None
            or not isinstance(trigger, am.EventTrigger)
            or actions is None
        ):
            return None
        return am.Rule(
            key=key,
            name=name,
            trigger=trigger,
            actions=actions,
            description=description,
            conditions=conditions,
            once_per_contact=once,
            cooldown=cooldown,
            transactional=transactional,
        )

    def journey(self, doc: Mapping[str, Any]) -> am.Journey | None:
        self.obj(
            doc,
            "",
            {
                "kind",
                "key",
                "name",
                "description",
                "trigger",
                "conditions",
                "entry",
                "goal",
                "exit_when",
                "transactional",
                "on_cap",
                "quiet_hours",
                "exclusive",
                "timezone",
                "steps",
            },
        )
        key = self.key(doc)
        name = self.text(doc, "name", "")
        trigger = self.trigger(doc.get("trigger"), "trigger", journey=True)
        conditions = self.filter(doc["conditions"], "conditions") if "conditions" in doc else None
        if isinstance(trigger, am.ScheduleTrigger) and conditions is None:
            self.problem("conditions", "a journey on a schedule needs conditions: who enters")
        entry = self.entry(doc.get("entry"), "entry") if "entry" in doc else am.Entry()
        goal = self.goal(doc["goal"], "goal") if "goal" in doc else None
        exits: list[am.Goal] = []
        if "exit_when" in doc:
            raw_exits = doc["exit_when"]
            if not isinstance(raw_exits, list):
                self.problem("exit_when", "must be a list of events or filters")
            else:
                exits = [
                    g
                    for i, item in enumerate(raw_exits)
                    if (g := self.goal(item, f"exit_when[{i}]")) is not None
                ]
        on_cap = self.choice(doc.get("on_cap", "wait"), "on_cap", am.OnCap)
        quiet = (
            self.quiet_hours(doc["quiet_hours"], "quiet_hours") if "quiet_hours" in doc else None
        )
        exclusive = self.exclusive(doc["exclusive"], "exclusive") if "exclusive" in doc else None
        timezone = self.text(doc, "timezone", "", required=False, longest=64) or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem("timezone", f"unknown time zone {timezone!r}")
        steps = self.steps(doc.get("steps"))
        transactional = self.boolean(doc, "transactional", "")
        description = self.text(doc, "description", "", required=False, longest=2000) or ""
        if key is None or name is None or trigger is None or steps is None or on_cap is None:
            return None
        if entry is None:
            return None
        return am.Journey(
            key=key,
            name=name,
            trigger=trigger,
            steps=steps,
            description=description,
            conditions=conditions,
            entry=entry,
            goal=goal,
            exit_when=tuple(exits),
            transactional=transactional,
            on_cap=on_cap,
            quiet_hours=quiet,
            exclusive=exclusive,
            timezone=timezone,
        )

    # --- triggers ---

    def trigger(self, raw: Any, at: str, *, journey: bool) -> am.Trigger | None:
        if raw is None:
            self.problem(at, "is required")
            return None
        if not isinstance(raw, dict) or not raw:
            self.problem(at, "must be an object such as {event: order_completed}")
            return None
        kinds = [k for k in raw if k in {"event", "date", "schedule", *am.TRIGGER_EVENTS}]
        if len(kinds) != 1:
            known = ", ".join(
                ["event", *am.TRIGGER_EVENTS, *(("date", "schedule") if journey else ())]
            )
            self.problem(at, f"must name one trigger: {known}")
            return None
        (kind,) = kinds
        if kind in ("date", "schedule"):
            if not journey:
                self.problem(f"{at}.{kind}", "only journeys start on dates and schedules")
                return None
            self.obj(raw, at, {kind})
            return (
                self.date_trigger(raw[kind], f"{at}.date")
                if kind == "date"
                else self.schedule_trigger(raw[kind], f"{at}.schedule")
            )
        return self.event_trigger(raw, at)

    def event_trigger(self, raw: Any, at: str) -> am.EventTrigger | None:
        if not isinstance(raw, dict):
            self.problem(at, "must be an object such as {event: order_completed}")
            return None
        if "event" in raw:
            self.obj(raw, at, {"event", "where"})
            name = raw["event"]
            if not isinstance(name, str) or not _EVENT.match(name):
                self.problem(f"{at}.event", "must be an event name")
                return None
            where = self.property_filter(raw["where"], f"{at}.where") if "where" in raw else None
            return am.EventTrigger(name, where)
        kinds = [k for k in raw if k in am.TRIGGER_EVENTS]
        if len(kinds) != 1:
            self.problem(at, f"must name one of event, {', '.join(am.TRIGGER_EVENTS)}")
            return None
        (kind,) = kinds
        self.obj(raw, at, {kind, "where"})
        event, prop = am.TRIGGER_EVENTS[kind]
        value = raw[kind]
        conditions: list[fm.PropertyFilter] = []
        if isinstance(value, dict):
            for name, expected in value.items():
                allowed = {
                    "attribute_changed": {"attribute", "to", "from"},
                    "stage_changed": {"to", "from"},
                    "score_reached": {"threshold", "model"},
                }.get(kind, {prop})
                if name not in allowed:
                    self.problem(
                        f"{at}.{kind}.{name}",
                        f"is not known here (known: {', '.join(sorted(a for a in allowed if a))})",
                    )
                    continue
                conditions.append(fm.PropertyCondition((str(name),), fm.Test(fm.Op.eq, expected)))
        elif value is not True and value is not None:
            if prop is None:
                self.problem(f"{at}.{kind}", "takes no value (write true)")
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                conditions.append(fm.PropertyCondition((prop,), fm.Test(fm.Op.eq, value)))
            else:
                self.problem(f"{at}.{kind}", "must be a name, a number or an object")
        if "where" in raw:
            where = self.property_filter(raw["where"], f"{at}.where")
            if where is not None:
                conditions.append(where)
        if not conditions:
            return am.EventTrigger(event)
        return am.EventTrigger(
            event, conditions[0] if len(conditions) == 1 else fm.PropertyAll(tuple(conditions))
        )

    def date_trigger(self, raw: Any, at: str) -> am.DateTrigger | None:
        doc = self.obj(raw, at, {"attribute", "recurrence", "offset_days", "at"})
        if doc is None:
            return None
        attribute = self.text(doc, "attribute", at, longest=100)
        recurrence = self.choice(doc.get("recurrence", "yearly"), f"{at}.recurrence", am.Recurrence)
        offset = self.integer(doc.get("offset_days", 0), f"{at}.offset_days", -366, 366)
        moment = self.time_of_day(doc.get("at", "09:00"), f"{at}.at")
        if attribute is None or recurrence is None or offset is None or moment is None:
            return None
        return am.DateTrigger(attribute, recurrence, offset, moment)

    def schedule_trigger(self, raw: Any, at: str) -> am.ScheduleTrigger | None:
        doc = self.obj(
            raw, at, {"frequency", "at", "weekday", "weekdays", "day_of_month", "nth", "local"}
        )
        if doc is None:
            return None
        frequency = self.choice(doc.get("frequency"), f"{at}.frequency", am.Frequency)
        moment = self.time_of_day(doc.get("at", "09:00"), f"{at}.at")
        weekdays: tuple[int, ...] = ()
        for key in ("weekday", "weekdays"):
            if key in doc:
                weekdays = self.weekdays(doc[key], f"{at}.{key}") or ()
        day = (
            self.integer(doc["day_of_month"], f"{at}.day_of_month", 1, 31)
            if "day_of_month" in doc
            else None
        )
        nth = self.integer(doc["nth"], f"{at}.nth", -1, 5) if "nth" in doc else None
        if nth == 0:
            self.problem(f"{at}.nth", "must be 1 to 5, or -1 for the last")
        local = self.boolean(doc, "local", at)
        if frequency is am.Frequency.weekly and not weekdays:
            self.problem(at, "a weekly schedule names its weekday(s)")
        if frequency is am.Frequency.monthly:
            if (day is None) == (nth is None):
                self.problem(at, "a monthly schedule takes day_of_month, or nth and weekday")
            elif nth is not None and len(weekdays) != 1:
                self.problem(
                    at, "nth takes exactly one weekday (first monday: nth 1, weekday monday)"
                )
        if frequency is None or moment is None:
            return None
        return am.ScheduleTrigger(frequency, moment, weekdays, day, nth, local)

    # --- journey settings ---

    def entry(self, raw: Any, at: str) -> am.Entry | None:
        doc = self.obj(raw, at, {"policy", "cooldown", "key"})
        if doc is None:
            return None
        policy = self.choice(doc.get("policy", "once_at_a_time"), f"{at}.policy", am.EntryPolicy)
        cooldown = self.duration(doc["cooldown"], f"{at}.cooldown") if "cooldown" in doc else None
        key = None
        if "key" in doc:
            raw_key = doc["key"]
            if not isinstance(raw_key, str) or not raw_key.strip():
                self.problem(f"{at}.key", "must be an event property path such as cart_id")
            else:
                key = tuple(raw_key.strip().split("."))
        return am.Entry(policy, cooldown, key) if policy is not None else None

    def goal(self, raw: Any, at: str) -> am.Goal | None:
        if not isinstance(raw, dict):
            self.problem(at, "must be an event ({event: …}) or a filter ({filter: …})")
            return None
        if "filter" in raw:
            self.obj(raw, at, {"filter"})
            node = self.filter(raw["filter"], f"{at}.filter")
            return am.Goal(filter=node) if node is not None else None
        trigger = self.event_trigger(raw, at)
        return am.Goal(event=trigger) if trigger is not None else None

    def quiet_hours(self, raw: Any, at: str) -> am.QuietHours | None:
        doc = self.obj(raw, at, {"start", "end", "action"})
        if doc is None:
            return None
        start = self.time_of_day(doc.get("start"), f"{at}.start")
        end = self.time_of_day(doc.get("end"), f"{at}.end")
        action = self.choice(doc.get("action", "hold"), f"{at}.action", am.OnQuietHours)
        if start == end and start is not None:
            self.problem(at, "start and end must differ")
            return None
        if start is None or end is None or action is None:
            return None
        return am.QuietHours(start, end, action)

    def exclusive(self, raw: Any, at: str) -> am.Exclusive | None:
        if raw is True:
            return am.Exclusive()
        doc = self.obj(raw, at, {"priority", "on_busy"})
        if doc is None:
            return None
        priority = self.integer(doc.get("priority", 0), f"{at}.priority", -1000, 1000)
        on_busy = self.choice(doc.get("on_busy", "queue"), f"{at}.on_busy", am.OnBusy)
        if priority is None or on_busy is None:
            return None
        return am.Exclusive(priority, on_busy)

    # --- actions ---

    def actions(self, raw: Any, at: str, *, sends: bool) -> tuple[am.Action, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.problem(at, "must be a non-empty list of actions")
            return None
        if len(raw) > MAX_ACTIONS:
            self.problem(at, f"at most {MAX_ACTIONS} actions")
            return None
        parsed = [self.action(item, f"{at}[{i}]", sends=sends) for i, item in enumerate(raw)]
        return tuple(a for a in parsed if a is not None) if all(parsed) else None

    def action(self, raw: Any, at: str, *, sends: bool) -> am.Action | None:
        known = (
            "send",
            "tags_add",
            "tags_remove",
            "set",
            "score",
            "stage",
            "journey_add",
            "journey_remove",
            "notify",
            "webhook",
        )
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in known:
            self.problem(at, f"must be one action: {', '.join(known)}")
            return None
        ((kind, value),) = raw.items()
        at = f"{at}.{kind}"
        if kind == "send":
            if not sends:
                self.problem(at, "use a send step to send in a journey")
                return None
            return self.send(value, at)
        if kind in ("tags_add", "tags_remove"):
            tags = value if isinstance(value, list) else [value]
            if not tags or not all(
                isinstance(t, str) and t.strip() and len(t) <= 100 for t in tags
            ):
                self.problem(at, "must be a tag or a list of tags")
                return None
            clean = tuple(t.strip().lower() for t in tags)
            return am.TagAction(add=clean) if kind == "tags_add" else am.TagAction(remove=clean)
        if kind == "set":
            if (
                not isinstance(value, dict)
                or not value
                or not all(isinstance(k, str) for k in value)
            ):
                self.problem(at, "must map attribute names to values")
                return None
            return am.SetAttributesAction(dict(value))
        if kind == "score":
            if isinstance(value, dict):
                doc = self.obj(value, at, {"points", "model"}) or {}
                points = self.integer(doc.get("points"), f"{at}.points", -1_000_000, 1_000_000)
                model = doc.get("model", "main")
            else:
                points, model = self.integer(value, at, -1_000_000, 1_000_000), "main"
            return am.ScoreAction(points, str(model)) if points is not None else None
        if kind == "stage":
            if not isinstance(value, str) or not value.strip():
                self.problem(at, "must be a lifecycle stage key")
                return None
            return am.StageAction(value.strip())
        if kind in ("journey_add", "journey_remove"):
            if not isinstance(value, str) or not _KEY.match(value):
                self.problem(at, "must be a journey key")
                return None
            return am.JourneyAction(value, remove=kind == "journey_remove")
        if kind == "notify":
            return self.notify(value, at)
        return self.webhook(value, at)

    def send(self, raw: Any, at: str) -> am.SendAction | None:
        if isinstance(raw, str):
            raw = {"template": raw}
        doc = self.obj(raw, at, {"template", "channel", "context"})
        if doc is None:
            return None
        template = self.text(doc, "template", at, longest=100)
        channel = doc.get("channel", "email")
        if channel != "email":
            self.problem(f"{at}.channel", "must be email (other channels come later)")
        context = doc.get("context", {})
        if not isinstance(context, dict):
            self.problem(f"{at}.context", "must be an object")
            context = {}
        return am.SendAction(template, "email", dict(context)) if template else None

    def notify(self, raw: Any, at: str) -> am.NotifyAction | None:
        doc = self.obj(raw, at, {"subject", "to", "fallback", "note"})
        if doc is None:
            return None
        subject = self.text(doc, "subject", at, longest=300)
        to = doc.get("to", [])
        to = [to] if isinstance(to, str) else to
        if not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
            self.problem(f"{at}.to", "must be an email address or a list of them")
            to = []
        fallback = self.text(doc, "fallback", at, required=False, longest=320)
        if fallback is not None and "@" not in fallback:
            self.problem(f"{at}.fallback", "must be an email address")
        note = self.text(doc, "note", at, required=False, longest=2000)
        if not to and fallback is None:
            pass  # the owner only: contacts without one are reported as not notified
        return am.NotifyAction(subject, tuple(to), fallback, note) if subject else None

    def webhook(self, raw: Any, at: str) -> am.WebhookAction | None:
        if isinstance(raw, str):
            raw = {"url": raw}
        doc = self.obj(raw, at, {"url", "headers"})
        if doc is None:
            return None
        url = self.text(doc, "url", at, longest=2000)
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            self.problem(f"{at}.url", "must be an http or https URL")
            return None
        headers = doc.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            self.problem(f"{at}.headers", "must map header names to text")
            headers = {}
        return am.WebhookAction(url, dict(headers)) if url else None

    # --- steps ---

    def steps(self, raw: Any) -> tuple[am.Step, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.problem("steps", "must be a non-empty list of steps")
            return None
        if len(raw) > MAX_STEPS:
            self.problem("steps", f"at most {MAX_STEPS} steps")
            return None
        parsed = [self.step(item, f"steps[{i}]") for i, item in enumerate(raw)]
        if not all(parsed):
            return None
        steps = tuple(s for s in parsed if s is not None)
        self.check_graph(steps)
        return steps

    def step(self, raw: Any, at: str) -> am.Step | None:
        kinds = ("send", "update", "wait", "wait_for", "branch", "if", "split", "move_to", "exit")
        if not isinstance(raw, dict):
            self.problem(at, f"must be an object with an id and one of {', '.join(kinds)}")
            return None
        step_id = raw.get("id")
        if not isinstance(step_id, str) or not _STEP_ID.match(step_id):
            self.problem(f"{at}.id", "is required: 1-60 of letters, digits, - and _")
            return None
        present = [k for k in kinds if k in raw]
        if len(present) != 1:
            self.problem(at, f"must have exactly one of {', '.join(kinds)}")
            return None
        (kind,) = present
        nxt = self.next_id(raw, at)
        if kind == "send":
            self.obj(raw, at, {"id", "send", "next"})
            action = self.send(raw["send"], f"{at}.send")
            return am.SendStep(step_id, action, nxt) if action else None
        if kind == "update":
            self.obj(raw, at, {"id", "update", "next"})
            actions = self.actions(raw["update"], f"{at}.update", sends=False)
            return am.UpdateStep(step_id, actions, nxt) if actions else None
        if kind == "wait":
            return self.wait(raw, at, step_id, nxt)
        if kind == "wait_for":
            return self.wait_for(raw, at, step_id)
        if kind == "if":
            self.obj(raw, at, {"id", "if", "then", "else"})
            node = self.filter(raw["if"], f"{at}.if")
            then = self.step_ref(raw.get("then"), f"{at}.then", required=True)
            otherwise = self.step_ref(raw.get("else"), f"{at}.else")
            if node is None or then is None:
                return None
            return am.BranchStep(step_id, (am.BranchCase(node, then),), otherwise)
        if kind == "branch":
            return self.branch(raw, at, step_id)
        if kind == "split":
            return self.split(raw, at, step_id)
        if kind == "move_to":
            self.obj(raw, at, {"id", "move_to"})
            target = raw["move_to"]
            if not isinstance(target, str) or not _KEY.match(target):
                self.problem(f"{at}.move_to", "must be a journey key")
                return None
            return am.MoveStep(step_id, target)
        self.obj(raw, at, {"id", "exit"})
        return am.ExitStep(step_id)

    def next_id(self, raw: Mapping[str, Any], at: str) -> str | None:
        return self.step_ref(raw.get("next"), f"{at}.next") if "next" in raw else None

    def step_ref(self, raw: Any, at: str, *, required: bool = False) -> str | None:
        if raw is None:
            if required:
                self.problem(at, "is required: the id of a step")
            return None
        if not isinstance(raw, str) or not _STEP_ID.match(raw):
            self.problem(at, "must be the id of a step")
            return None
        return raw

    def wait(
        self, raw: Mapping[str, Any], at: str, step_id: str, nxt: str | None
    ) -> am.WaitStep | None:
        self.obj(raw, at, {"id", "wait", "next"})
        value = raw["wait"]
        if not isinstance(value, dict):
            duration = self.duration(value, f"{at}.wait")
            return (
                am.WaitStep(step_id, am.WaitKind.duration, duration=duration, next=nxt)
                if duration
                else None
            )
        at = f"{at}.wait"
        doc = self.obj(value, at, {"duration", "until", "weekdays", "attribute", "offset_days"})
        if doc is None:
            return None
        if "duration" in doc:
            duration = self.duration(doc["duration"], f"{at}.duration")
            return (
                am.WaitStep(step_id, am.WaitKind.duration, duration=duration, next=nxt)
                if duration
                else None
            )
        moment = self.time_of_day(doc.get("until"), f"{at}.until")
        if "attribute" in doc:
            attribute = self.text(doc, "attribute", at, longest=100)
            offset = self.integer(doc.get("offset_days", 0), f"{at}.offset_days", -366, 366)
            if attribute is None or offset is None or moment is None:
                return None
            return am.WaitStep(
                step_id,
                am.WaitKind.date,
                at=moment,
                attribute=attribute,
                offset_days=offset,
                next=nxt,
            )
        days = (
            self.weekdays(doc["weekdays"], f"{at}.weekdays")
            if "weekdays" in doc
            else (0, 1, 2, 3, 4, 5, 6)
        )
        if moment is None or days is None:
            return None
        return am.WaitStep(step_id, am.WaitKind.time_of_day, at=moment, weekdays=days, next=nxt)

    def wait_for(self, raw: Mapping[str, Any], at: str, step_id: str) -> am.WaitForEventStep | None:
        self.obj(raw, at, {"id", "wait_for", "on_event", "on_timeout"})
        value = raw["wait_for"]
        at_w = f"{at}.wait_for"
        if not isinstance(value, dict):
            self.problem(at_w, "must be an object: event, where, timeout, message_step")
            return None
        trigger = self.event_trigger(
            {k: v for k, v in value.items() if k not in ("timeout", "message_step")}, at_w
        )
        timeout = self.duration(value.get("timeout"), f"{at_w}.timeout")
        message_step = (
            self.step_ref(value.get("message_step"), f"{at_w}.message_step")
            if "message_step" in value
            else None
        )
        on_event = self.step_ref(raw.get("on_event"), f"{at}.on_event")
        on_timeout = self.step_ref(raw.get("on_timeout"), f"{at}.on_timeout")
        if trigger is None or timeout is None:
            return None
        return am.WaitForEventStep(step_id, trigger, timeout, message_step, on_event, on_timeout)

    def branch(self, raw: Mapping[str, Any], at: str, step_id: str) -> am.BranchStep | None:
        self.obj(raw, at, {"id", "branch", "otherwise"})
        cases_raw = raw["branch"]
        if not isinstance(cases_raw, list) or not cases_raw:
            self.problem(f"{at}.branch", "must be a non-empty list of {when: filter, next: step}")
            return None
        cases: list[am.BranchCase] = []
        for i, case in enumerate(cases_raw):
            case_at = f"{at}.branch[{i}]"
            doc = self.obj(case, case_at, {"when", "next"})
            if doc is None:
                continue
            node = self.filter(doc.get("when"), f"{case_at}.when")
            target = self.step_ref(doc.get("next"), f"{case_at}.next", required=True)
            if node is not None and target is not None:
                cases.append(am.BranchCase(node, target))
        otherwise = self.step_ref(raw.get("otherwise"), f"{at}.otherwise")
        return (
            am.BranchStep(step_id, tuple(cases), otherwise)
            if len(cases) == len(cases_raw)
            else None
        )

    def split(self, raw: Mapping[str, Any], at: str, step_id: str) -> am.SplitStep | None:
        self.obj(raw, at, {"id", "split"})
        items = raw["split"]
        if not isinstance(items, list) or not items:
            self.problem(f"{at}.split", "must be a list of {name, percent, next}")
            return None
        variants: list[am.SplitVariant] = []
        for i, item in enumerate(items):
            item_at = f"{at}.split[{i}]"
            doc = self.obj(item, item_at, {"name", "percent", "next"})
            if doc is None:
                continue
            name = self.text(doc, "name", item_at, longest=50)
            percent = self.integer(doc.get("percent"), f"{item_at}.percent", 1, 100)
            target = self.step_ref(doc.get("next"), f"{item_at}.next", required=True)
            if name and percent and target:
                variants.append(am.SplitVariant(name, percent, target))
        if len(variants) != len(items):
            return None
        if sum(v.percent for v in variants) > 100:
            self.problem(f"{at}.split", "the percentages add up to more than 100")
        if len({v.name for v in variants}) != len(variants):
            self.problem(f"{at}.split", "variant names must differ")
        return am.SplitStep(step_id, tuple(variants))

    def check_graph(self, steps: tuple[am.Step, ...]) -> None:
        """Ids unique, every reference a step, message_step a send step, and no loop
        that a run could go round without waiting."""
        index: dict[str, int] = {}
        for i, step in enumerate(steps):
            if step.id in index:
                self.problem(
                    f"steps[{i}].id", f"{step.id!r} is the id of steps[{index[step.id]}] already"
                )
            index.setdefault(step.id, i)
        graph: dict[str, list[str]] = {}
        for i, step in enumerate(steps):
            targets = _targets(step)
            for where, target in targets:
                if target not in index:
                    self.problem(f"steps[{i}].{where}", f"no step has the id {target!r}")
            if isinstance(step, am.WaitForEventStep) and step.message_step is not None:
                sender = steps[index[step.message_step]] if step.message_step in index else None
                if not isinstance(sender, am.SendStep):
                    self.problem(
                        f"steps[{i}].wait_for.message_step", "must be the id of a send step"
                    )
            following = steps[i + 1].id if i + 1 < len(steps) else None
            nexts = [t for _, t in targets if t in index]
            if _falls_through(step) and following is not None:
                nexts.append(following)
            # Waiting steps break loops: a run stops there until later.
            graph[step.id] = [] if isinstance(step, am.WaitStep | am.WaitForEventStep) else nexts
        self.check_loops(graph, index)

    def check_loops(self, graph: dict[str, list[str]], index: dict[str, int]) -> None:
        state: dict[str, int] = {}

        def visit(node: str) -> str | None:
            """The first step found to be on a loop below `node`, if any."""
            state[node] = 1
            for target in graph.get(node, []):
                if state.get(target) == 1:
                    return target
                if state.get(target) is None and (found := visit(target)) is not None:
                    return found
            state[node] = 2
            return None

        for node in graph:
            if state.get(node) is None and (on_loop := visit(node)) is not None:
                self.problem(
                    f"steps[{index[on_loop]}]",
                    "is part of a loop without a wait: a run would never stop",
                )
                return


def _join(at: str, key: object) -> str:
    """The path of `key` inside `at` (the document itself when `at` is empty)."""
    return f"{at}.{key}" if at else str(key)


def _targets(step: am.Step) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(step, am.SendStep | am.UpdateStep | am.WaitStep) and step.next:
        out.append(("next", step.next))
    elif isinstance(step, am.WaitForEventStep):
        out += [
            (k, v) for k, v in (("on_event", step.on_event), ("on_timeout", step.on_timeout)) if v
        ]
    elif isinstance(step, am.BranchStep):
        out += [(f"branch[{i}].next", c.next) for i, c in enumerate(step.cases)]
        if step.otherwise:
            out.append(("otherwise", step.otherwise))
    elif isinstance(step, am.SplitStep):
        out += [(f"split[{i}].next", v.next) for i, v in enumerate(step.variants)]
    return out


def _falls_through(step: am.Step) -> bool:
    """Whether the step can go on with the step after it in the list."""
    if isinstance(step, am.SendStep | am.UpdateStep | am.WaitStep):
        return step.next is None
    if isinstance(step, am.WaitForEventStep):
        return step.on_event is None or step.on_timeout is None
    if isinstance(step, am.BranchStep):
        return step.otherwise is None
    return False
