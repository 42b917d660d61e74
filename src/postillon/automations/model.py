"""The checked tree of an automation document: a rule or a journey.

Built by `documents.py` from YAML or JSON (every problem named with its line and path);
read by the engine. The tree is immutable and holds no database ids, so a published
version can be rebuilt from its stored document at any time and gives the same tree.

Every trigger but the date and schedule triggers is an event on the contact's timeline
(`EventTrigger`): "tag added" is the `tag_added` event where `tag` is the tag, "segment
entered" is `segment_entered` where `segment` is the key, and so on (`TRIGGER_EVENTS`
says which event and property each shorthand means). One mechanism, the `automations`
event consumer, therefore starts rules and journeys, resumes waits and ends runs on goals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

from postillon.filters import model as fm

# --- triggers ---

# The internal events that stand for contact changes, and the property each shorthand
# trigger compares (`tag_added: vip` = the `tag_added` event where `tag` = "vip").
TRIGGER_EVENTS: dict[str, tuple[str, str | None]] = {
    "contact_created": ("contact_created", None),
    "attribute_changed": ("attribute_changed", "attribute"),
    "tag_added": ("tag_added", "tag"),
    "tag_removed": ("tag_removed", "tag"),
    "segment_entered": ("segment_entered", "segment"),
    "segment_exited": ("segment_exited", "segment"),
    "score_reached": ("score_reached", "threshold"),
    "stage_changed": ("stage_changed", "to"),
    "journey_entered": ("journey_entered", "journey"),
}


@dataclass(frozen=True)
class EventTrigger:
    """An event of this name whose properties match `where` (None: any)."""

    event: str
    where: fm.PropertyFilter | None = None


class Recurrence(StrEnum):
    yearly = "yearly"  # the anniversary of the date (birthday, signup)
    once = "once"  # the date itself (N days before a contract ends)


@dataclass(frozen=True)
class DateTrigger:
    """Contacts enter on a date taken from a date attribute, shifted by `offset_days`
    (negative: before), at `at` local time in the contact's time zone (the journey's
    `timezone` when the contact has none). Yearly: every anniversary; a 29 February is
    celebrated on 28 February in other years."""

    attribute: str
    recurrence: Recurrence
    offset_days: int
    at: time


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


@dataclass(frozen=True)
class ScheduleTrigger:
    """Everyone matching the journey's `conditions` enters at each occurrence.

    daily at `at`; weekly on `weekdays` (0 = Monday); monthly on `day_of_month`, or on
    the `nth` (1-5, -1 = last) `weekdays[0]` of the month ("first Monday").
    `local`: at `at` in each contact's time zone, else in the journey's `timezone`."""

    frequency: Frequency
    at: time
    weekdays: tuple[int, ...] = ()
    day_of_month: int | None = None
    nth: int | None = None
    local: bool = False


Trigger = EventTrigger | DateTrigger | ScheduleTrigger


# --- actions (rules, and a journey's `update` and `send` steps) ---


@dataclass(frozen=True)
class SendAction:
    """Send a message through a channel (email now; sms, push and webhook later).
    `context` is data for the template beside the triggering event's properties."""

    template: str
    channel: str = "email"
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TagAction:
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetAttributesAction:
    # Attribute name → value (None removes the attribute).
    values: dict[str, Any]


@dataclass(frozen=True)
class ScoreAction:
    points: int
    model: str = "main"


@dataclass(frozen=True)
class StageAction:
    stage: str


@dataclass(frozen=True)
class JourneyAction:
    """Add the contact to a journey (it enters as by its trigger, under its entry
    policy), or remove them from it (their run ends as `exited`)."""

    journey: str
    remove: bool = False


@dataclass(frozen=True)
class NotifyAction:
    """Mail a summary of the contact card to the contact's owner, else to `fallback`
    (a sales address); `to` names fixed addresses instead of the owner."""

    subject: str
    to: tuple[str, ...] = ()
    fallback: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class WebhookAction:
    """POST the contact and the triggering event as JSON to `url`, signed (HMAC-SHA256
    of the body with the automation secret, in `Postillon-Signature`), retried."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


Action = (
    SendAction
    | TagAction
    | SetAttributesAction
    | ScoreAction
    | StageAction
    | JourneyAction
    | NotifyAction
    | WebhookAction
)


# --- journeys ---


class EntryPolicy(StrEnum):
    once = "once"  # once ever
    once_at_a_time = "once_at_a_time"  # again after the previous run ended
    unlimited = "unlimited"  # any number of runs at once


@dataclass(frozen=True)
class Entry:
    policy: EntryPolicy = EntryPolicy.once_at_a_time
    cooldown: timedelta | None = None
    # The event property whose value keys an entry (e.g. `cart_id`); the same key never
    # starts this journey twice. Default: the triggering event's message id.
    key: tuple[str, ...] | None = None


class OnCap(StrEnum):
    wait = "wait"  # hold the step until the cap allows it
    skip = "skip"  # skip the send, go on with the next step
    exit = "exit"  # end the run as exited


class OnQuietHours(StrEnum):
    hold = "hold"  # send when the window opens
    skip = "skip"


@dataclass(frozen=True)
class QuietHours:
    start: time  # e.g. 21:00
    end: time  # e.g. 08:00 (the window wraps over midnight when end <= start)
    action: OnQuietHours = OnQuietHours.hold


class OnBusy(StrEnum):
    queue = "queue"  # start when the contact's current exclusive journey ends
    take_over = "take_over"  # end the current one if this journey's priority is higher


@dataclass(frozen=True)
class Exclusive:
    priority: int = 0
    on_busy: OnBusy = OnBusy.queue


@dataclass(frozen=True)
class Goal:
    """An event (with a property filter) or a filter on the contact."""

    event: EventTrigger | None = None
    filter: fm.Filter | None = None


# Steps. Each has an `id` unique in the journey; `next` is the id of the step that
# follows (None: the step after it in the list; after the last step the run completes).


@dataclass(frozen=True)
class SendStep:
    id: str
    action: SendAction
    next: str | None = None


@dataclass(frozen=True)
class UpdateStep:
    """Update the contact: any actions but `send` (tags, attributes, score, stage,
    journeys, notify, webhook)."""

    id: str
    actions: tuple[Action, ...]
    next: str | None = None


class WaitKind(StrEnum):
    duration = "duration"
    time_of_day = "time_of_day"  # until the next `at` local time on one of `weekdays`
    date = "date"  # until a date attribute ± offset, at `at` local time


@dataclass(frozen=True)
class WaitStep:
    id: str
    kind: WaitKind
    duration: timedelta | None = None
    at: time | None = None
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    attribute: str | None = None
    offset_days: int = 0
    next: str | None = None


@dataclass(frozen=True)
class WaitForEventStep:
    """Wait until the contact does `event` (matching `where`; when `message_step` names
    a send step of this journey, only events about the message that step sent, e.g.
    "opened mail 1") or `timeout` passes: then go to `on_event` or `on_timeout`."""

    id: str
    event: EventTrigger
    timeout: timedelta
    message_step: str | None = None
    on_event: str | None = None
    on_timeout: str | None = None


@dataclass(frozen=True)
class BranchCase:
    filter: fm.Filter
    next: str


@dataclass(frozen=True)
class BranchStep:
    """The first case whose filter the contact matches, else `otherwise`
    (if / else is one case and `otherwise`)."""

    id: str
    cases: tuple[BranchCase, ...]
    otherwise: str | None = None


@dataclass(frozen=True)
class SplitVariant:
    name: str
    percent: int
    next: str


@dataclass(frozen=True)
class SplitStep:
    """Random split A/B/n by percentages (a stable hash of run and step); what the
    variants leave to 100 % is the control group, whose runs end as `control`."""

    id: str
    variants: tuple[SplitVariant, ...]


@dataclass(frozen=True)
class MoveStep:
    """End this run (`moved`) and enter the contact into another journey."""

    id: str
    journey: str


@dataclass(frozen=True)
class ExitStep:
    id: str


Step = (
    SendStep
    | UpdateStep
    | WaitStep
    | WaitForEventStep
    | BranchStep
    | SplitStep
    | MoveStep
    | ExitStep
)


@dataclass(frozen=True)
class Journey:
    key: str
    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    description: str = ""
    # Who may enter (the filter language); with a schedule trigger, who enters.
    conditions: fm.Filter | None = None
    entry: Entry = Entry()
    goal: Goal | None = None
    exit_when: tuple[Goal, ...] = ()
    # Transactional journeys send transactional messages and are exempt from caps.
    transactional: bool = False
    on_cap: OnCap = OnCap.wait
    quiet_hours: QuietHours | None = None
    exclusive: Exclusive | None = None
    # The zone of times of day for contacts without one.
    timezone: str = "UTC"

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {step.id: index for index, step in enumerate(self.steps)}

    def step(self, step_id: str) -> Step:
        return self.steps[self._positions[step_id]]

    def following(self, step_id: str) -> str | None:
        """The id of the step after `step_id` in the list, None after the last."""
        index = self._positions[step_id] + 1
        return self.steps[index].id if index < len(self.steps) else None


# --- rules ---


@dataclass(frozen=True)
class Rule:
    """When `trigger` happens to a contact matching `conditions`, do `actions`.
    `once_per_contact`: never again for the same contact; `cooldown`: not again within."""

    key: str
    name: str
    trigger: EventTrigger
    actions: tuple[Action, ...]
    description: str = ""
    conditions: fm.Filter | None = None
    once_per_contact: bool = False
    cooldown: timedelta | None = None
    transactional: bool = False


Automation = Rule | Journey
