"""Rules and journeys as the marketer keeps them: save drafts (checked, with every
problem's line and path), publish versions, pause, resume, archive, list; explain."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postillon.automations.definitions import DefinitionStore
    from postillon.clock import Clock
    from postillon.filters.service import FilterService
    from postillon.settings import Settings


class AutomationService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        filters: FilterService,
        definitions: DefinitionStore,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.filters = filters
        self.definitions = definitions
