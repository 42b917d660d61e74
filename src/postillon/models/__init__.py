"""The ORM tables, one a module. Import from here so every table is registered on Base."""

from postillon.models.api_key import ApiKey
from postillon.models.attribute_definition import AttributeDefinition
from postillon.models.automation import (
    Automation,
    AutomationHistory,
    AutomationVersion,
    FrequencyCap,
    JourneyRun,
    WebhookDelivery,
)
from postillon.models.base import Base
from postillon.models.broadcast import Broadcast, BroadcastVariant
from postillon.models.contact import Contact
from postillon.models.contact_consent import ContactConsent
from postillon.models.contact_import import ContactImport, ContactImportTouch
from postillon.models.contact_merge import ContactMerge
from postillon.models.contact_tag import ContactTag
from postillon.models.contact_trait import ContactTrait
from postillon.models.content_block import ContentBlock
from postillon.models.email_template import EmailTemplate
from postillon.models.email_topic import ContactTopic, EmailTopic
from postillon.models.event import Event
from postillon.models.event_queue import EventQueueItem, IdSequence
from postillon.models.lifecycle import LifecycleStage, StageChange
from postillon.models.message import Message
from postillon.models.scoring import ContactScore, ScoreChange, ScoreModel, ScoringRule
from postillon.models.segment import ContactRefresh, Segment, SegmentMembership
from postillon.models.suppression import Suppression
from postillon.models.user import User
from postillon.models.visitor import Visitor
from postillon.models.voucher import VoucherCode, VoucherPool
from postillon.models.worker_schedule import WorkerSchedule

__all__ = [
    "ApiKey",
    "AttributeDefinition",
    "Automation",
    "AutomationHistory",
    "AutomationVersion",
    "Base",
    "Broadcast",
    "BroadcastVariant",
    "Contact",
    "ContactConsent",
    "ContactImport",
    "ContactImportTouch",
    "ContactMerge",
    "ContactRefresh",
    "ContactScore",
    "ContactTag",
    "ContactTopic",
    "ContactTrait",
    "ContentBlock",
    "EmailTemplate",
    "EmailTopic",
    "Event",
    "EventQueueItem",
    "FrequencyCap",
    "IdSequence",
    "JourneyRun",
    "LifecycleStage",
    "Message",
    "ScoreChange",
    "ScoreModel",
    "ScoringRule",
    "Segment",
    "SegmentMembership",
    "StageChange",
    "Suppression",
    "User",
    "Visitor",
    "VoucherCode",
    "VoucherPool",
    "WebhookDelivery",
    "WorkerSchedule",
]
