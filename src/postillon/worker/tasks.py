"""What a worker can run: tasks that find and do due work, in sets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from postillon.runtime import Runtime


class WorkerTask(Protocol):
    name: str

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        """Claim and do a batch of the work due at `now`; return how much was done."""
        ...


def default_tasks() -> list[WorkerTask]:
    """The tasks every worker runs. Features add theirs here as they gain due work
    (journey steps, sends and segment refreshes are next)."""
    from postillon.automations.consumer import AutomationsConsumer
    from postillon.automations.journeys.tasks import JourneyStepTask
    from postillon.automations.schedule_tasks import JourneyDateTask, JourneyScheduleTask
    from postillon.automations.webhooks import WebhookTask
    from postillon.broadcasts.tasks import BroadcastTask
    from postillon.contacts.activity import ContactActivityConsumer
    from postillon.events.queue import EventQueueTask
    from postillon.messages.sending import SendTask
    from postillon.scoring.consumer import LeadScoringConsumer
    from postillon.scoring.tasks import ScoreDecayTask
    from postillon.segments.tasks import (
        ContactRefreshTask,
        SegmentEventConsumer,
        SegmentScheduleTask,
    )
    from postillon.tracking.tasks import AnonymousPurgeTask
    from postillon.traits.tasks import TraitsRefreshTask

    # In this order: events are consumed (scores change; contacts to re-evaluate are
    # queued) before the segments are re-evaluated for them, in the same round.
    return [
        EventQueueTask(
            [
                ContactActivityConsumer(),
                LeadScoringConsumer(),
                SegmentEventConsumer(),
                AutomationsConsumer(),
            ]
        ),
        ContactRefreshTask(),
        SegmentScheduleTask(),
        AnonymousPurgeTask(),
        ScoreDecayTask(),
        TraitsRefreshTask(),
        BroadcastTask(),
        JourneyDateTask(),
        JourneyScheduleTask(),
        JourneyStepTask(),
        SendTask(),
        WebhookTask(),
    ]
