"""The actions of automation documents (and the event triggers they share with goals and
waits); see `documents.py`."""

from __future__ import annotations

import re
from typing import Any

from postillon.automations import model as am
from postillon.automations.document_values import _EVENT, _KEY, MAX_ACTIONS, Values
from postillon.filters import model as fm


class Actions(Values):
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
