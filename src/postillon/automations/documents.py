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

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postillon.automations import model as am
from postillon.automations.document_steps import Steps
from postillon.automations.document_values import (
    _KEY,
    FilterParser,
    format_duration,
    parse_duration,
)
from postillon.errors import FieldProblem, InvalidInput
from postillon.filters.documents import load_yaml, with_lines
from postillon.filters.parsing import parse_filter as plain_parse_filter

__all__ = ["format_duration", "parse_automation", "parse_automation_text", "parse_duration"]


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


class _Checker(Steps):
    """The whole document: rules, journeys, triggers and journey settings."""

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
