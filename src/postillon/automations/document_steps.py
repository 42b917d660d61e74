"""The steps of journey documents and the checks of their graph; see `documents.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from postillon.automations import model as am
from postillon.automations.document_actions import Actions
from postillon.automations.document_values import _KEY, _STEP_ID, MAX_STEPS


class Steps(Actions):
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
