"""Everything a process needs, built once: settings, clock, database and the services."""

from __future__ import annotations

from dataclasses import dataclass

from postillon.auth.service import ApiKeyService
from postillon.automations.actions import ActionRunner
from postillon.automations.caps.service import FrequencyCapService
from postillon.automations.collision import SendGate
from postillon.automations.definitions import DefinitionStore
from postillon.automations.journeys.engine import JourneyEngine
from postillon.automations.rules import RuleEngine
from postillon.automations.service import AutomationService
from postillon.bounces.service import BounceService
from postillon.broadcasts.service import BroadcastService
from postillon.clock import Clock, SystemClock
from postillon.contacts.service import ContactService
from postillon.demo.service import DemoService
from postillon.filters.service import FilterService
from postillon.imports.service import ImportService
from postillon.kit.db import Database
from postillon.lifecycle.service import LifecycleService
from postillon.messages.links import LinkSigner
from postillon.messages.sending import SendingService
from postillon.messages.service import MessageService
from postillon.messages.tracking import EmailTracking
from postillon.privacy.service import PrivacyService
from postillon.scoring.service import ScoringService
from postillon.segments.service import SegmentService
from postillon.settings import Settings
from postillon.subscriptions.optin import DoubleOptIn
from postillon.subscriptions.pages import FormTokens
from postillon.subscriptions.service import SubscriptionService
from postillon.templates.service import TemplateService
from postillon.tracking.limits import RateLimiter
from postillon.tracking.service import TrackingService
from postillon.traits.service import TraitsService
from postillon.users.service import UserService
from postillon.vouchers.service import VoucherService


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    database: Database
    contacts: ContactService
    imports: ImportService
    privacy: PrivacyService
    api_keys: ApiKeyService
    users: UserService
    tracking: TrackingService
    ingest_limiter: RateLimiter
    lifecycle: LifecycleService
    traits: TraitsService
    filters: FilterService
    segments: SegmentService
    demo: DemoService
    scoring: ScoringService
    links: LinkSigner
    messages: MessageService
    templates: TemplateService
    vouchers: VoucherService
    sending: SendingService
    broadcasts: BroadcastService
    email_tracking: EmailTracking
    subscriptions: SubscriptionService
    opt_in: DoubleOptIn
    form_tokens: FormTokens
    bounces: BounceService
    definitions: DefinitionStore
    automations: AutomationService
    send_gate: SendGate
    frequency_caps: FrequencyCapService
    actions: ActionRunner
    journeys: JourneyEngine
    rules: RuleEngine

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = Database(settings.resolved_database_url)
        contacts = ContactService(settings, clock)
        filters = FilterService(settings, clock)
        links = LinkSigner(settings.secret_key, settings.public_url)
        vouchers = VoucherService(clock, links)
        templates = TemplateService(clock, links, filters, vouchers)
        messages = MessageService(clock)
        opt_in = DoubleOptIn(settings, clock, contacts, links, messages)
        contacts.confirmations = opt_in
        subscriptions = SubscriptionService(settings, clock, contacts)
        lifecycle = LifecycleService(clock)
        definitions = DefinitionStore()
        send_gate = SendGate(clock, default_timezone=settings.default_timezone)
        actions = ActionRunner(settings, clock, contacts, lifecycle, messages, send_gate)
        journeys = JourneyEngine(
            settings, clock, filters, messages, actions, send_gate, definitions=definitions
        )
        actions.journeys = journeys
        actions.definitions = definitions
        return cls(
            settings=settings,
            clock=clock,
            database=database,
            contacts=contacts,
            imports=ImportService(contacts, clock, chunk_rows=settings.import_batch_rows),
            privacy=PrivacyService(settings, clock, contacts),
            api_keys=ApiKeyService(clock),
            users=UserService(clock),
            tracking=TrackingService(settings, clock),
            ingest_limiter=RateLimiter(settings.ingest_rate_per_second, settings.ingest_burst),
            lifecycle=lifecycle,
            traits=TraitsService(settings, clock),
            filters=filters,
            segments=SegmentService(filters, clock),
            demo=DemoService(contacts, clock),
            scoring=ScoringService(clock),
            links=links,
            vouchers=vouchers,
            messages=messages,
            templates=templates,
            sending=SendingService(
                settings,
                clock,
                links,
                renderer=templates,
                subscriptions=subscriptions,
                contacts=contacts,
            ),
            broadcasts=BroadcastService(clock, chunk_size=settings.broadcast_chunk_size),
            email_tracking=EmailTracking(settings, clock),
            subscriptions=subscriptions,
            opt_in=opt_in,
            form_tokens=FormTokens(settings.secret_key, clock),
            bounces=BounceService(settings, clock, contacts, links),
            definitions=definitions,
            automations=AutomationService(settings, clock, filters, definitions, journeys),
            send_gate=send_gate,
            frequency_caps=FrequencyCapService(clock),
            actions=actions,
            journeys=journeys,
            rules=RuleEngine(clock, filters, actions),
        )

    def close(self) -> None:
        self.sending.close()
        self.database.dispose()
