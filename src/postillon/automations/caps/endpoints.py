"""HTTP routes for the frequency caps. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from postillon.automations.caps.schemas import FrequencyCapIn, FrequencyCapOut
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["automations"], dependencies=[Depends(require_admin)])


@router.get("/frequency-caps")
def list_caps(runtime: RuntimeDep, session: ReadSession) -> list[FrequencyCapOut]:
    """The channels with caps. A channel not listed has none."""
    return runtime.frequency_caps.list(session)


@router.put("/frequency-caps/{channel}")
def set_cap(
    channel: str, data: FrequencyCapIn, runtime: RuntimeDep, session: WriteSession
) -> FrequencyCapOut:
    """At most `per_day` marketing messages per contact and local day on the channel, and
    `per_week` per local week (Monday first), across every journey, rule and broadcast
    (broadcasts count, but are not held). Null removes a cap."""
    return runtime.frequency_caps.set(
        session, channel, per_day=data.per_day, per_week=data.per_week
    )
