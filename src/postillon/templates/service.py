"""Email templates: saving them checked, previewing them, and rendering messages in sets."""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.filters.facts import ContactFacts, load_facts
from postillon.filters.service import FilterService
from postillon.kit.ids import new_id
from postillon.messages.links import LinkSigner
from postillon.models import EmailTemplate, Message
from postillon.templates import repository
from postillon.templates.checks import check_jinja, compile_mjml
from postillon.templates.rendering import (
    CompiledTemplate,
    Environments,
    MessageData,
    RenderedEmail,
    RenderFailure,
    compile_template,
    contact_variables,
    failure_of,
    message_variables,
    render,
)
from postillon.templates.sandbox import build_environments
from postillon.templates.schemas import (
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TemplateSummary,
)

_KEY = re.compile(r"[a-z0-9_-]{1,100}")
# Compiled template versions kept per process; a newsletter and a few journeys fit easily.
_CACHED_VERSIONS = 256
_EDITABLE = (
    "name", "format", "subject", "preheader", "body", "text_body", "from_address",
    "reply_to", "kind", "topic",
)  # fmt: skip

Functions = Mapping[str, Callable[..., Any]]


class TemplateService:
    def __init__(self, clock: Clock, links: LinkSigner, filters: FilterService) -> None:
        self.clock = clock
        self.links = links
        self.filters = filters
        html, text = build_environments()
        self.environments = Environments(html=html, text=text)
        self._compiled: OrderedDict[tuple[uuid.UUID, int], CompiledTemplate] = OrderedDict()

    # Saving and reading

    def create(self, session: Session, data: TemplateIn) -> TemplateOut:
        """A new template; 409 if its key is taken."""
        if repository.template_by_key(session, data.key) is not None:
            raise Conflict(
                f"a template with key {data.key!r} exists already",
                [FieldProblem("key", "is taken")],
            )
        return self.save(session, data)[0]

    def save(self, session: Session, data: TemplateIn) -> tuple[TemplateOut, bool]:
        """Create or replace the template of `data.key`; the version rises on a change.
        Returns the template and whether it was created."""
        if not _KEY.fullmatch(data.key):
            raise InvalidInput.at("key", "must be 1-100 of a-z, 0-9, - and _")
        fields = data.model_dump(exclude={"key"})
        fields["name"] = fields["name"] or data.key
        existing = repository.template_by_key(session, data.key)
        return self._store(session, data.key, fields, existing), existing is None

    def update(self, session: Session, key: str, data: TemplatePatch) -> TemplateOut:
        """Change some fields of a template; the version rises if anything changed."""
        template = self._template(session, key)
        fields = {name: getattr(template, name) for name in _EDITABLE}
        fields.update(data.model_dump(exclude_unset=True))
        fields["name"] = fields["name"] or key
        return self._store(session, key, fields, template)

    def get(self, session: Session, key: str) -> TemplateOut:
        return TemplateOut.model_validate(self._template(session, key), from_attributes=True)

    def list(self, session: Session) -> list[TemplateSummary]:
        return [
            TemplateSummary.model_validate(template, from_attributes=True)
            for template in repository.all_templates(session)
        ]

    def delete(self, session: Session, key: str) -> None:
        """Delete a template no message was made from (409 otherwise: messages keep it)."""
        template = self._template(session, key)
        if repository.is_referenced(session, template.id):
            raise Conflict(f"messages were made from template {key!r}; it cannot be deleted")
        repository.delete_template(session, template.id)

    def _template(self, session: Session, key: str) -> EmailTemplate:
        template = repository.template_by_key(session, key)
        if template is None:
            raise NotFound(f"no template has the key {key!r}")
        return template

    def _store(
        self,
        session: Session,
        key: str,
        fields: dict[str, Any],
        template: EmailTemplate | None,
    ) -> TemplateOut:
        fields["compiled_html"] = self.check(session, fields)
        now = self.clock.now()
        if template is None:
            template = EmailTemplate(
                id=new_id(), key=key, version=1, created_at=now, updated_at=now, **fields
            )
            repository.add_template(session, template)
        elif any(getattr(template, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(template, name, value)
            template.version += 1
            template.updated_at = now
            session.flush()
        return TemplateOut.model_validate(template, from_attributes=True)

    def check(self, session: Session, fields: Mapping[str, Any]) -> str:
        """The compiled HTML of a template's fields, or InvalidInput naming each problem
        with its field and line."""
        problems: list[FieldProblem] = []
        for field in ("subject", "preheader", "body", "text_body"):
            source = fields.get(field)
            if not source:
                if field in {"subject", "body"}:
                    problems.append(FieldProblem(field, "must not be empty"))
                continue
            environment = self.environments.html if field == "body" else self.environments.text
            found, _ = check_jinja(environment, source, field)
            problems.extend(found)
        if problems:
            raise InvalidInput.of(problems)
        body: str = fields["body"]
        if fields["format"] != "mjml":
            return body
        compiled, problems = compile_mjml(body)
        if compiled is None:
            raise InvalidInput.of(problems)
        return compiled

    # Rendering

    def render_messages(
        self, session: Session, messages: Sequence[Message]
    ) -> dict[uuid.UUID, RenderedEmail | RenderFailure]:
        """Each message rendered from its template, contact and context: the data of all
        of them loaded in a few queries, whatever their number."""
        results: dict[uuid.UUID, RenderedEmail | RenderFailure] = {}
        templates = repository.templates_by_id(
            session, {m.template_id for m in messages if m.template_id is not None}
        )
        catalog = self.filters.catalog(session)
        facts = load_facts(session, {m.contact_id for m in messages}, catalog=catalog)
        contacts: dict[uuid.UUID, dict[str, Any]] = {}
        now = self.clock.now()
        for message in messages:
            template = templates.get(message.template_id) if message.template_id else None
            one = facts.get(message.contact_id)
            if template is None:
                results[message.id] = RenderFailure("the message has no template")
                continue
            if one is None:
                results[message.id] = RenderFailure("the contact does not exist")
                continue
            if message.contact_id not in contacts:
                contacts[message.contact_id] = contact_variables(one)
            data = MessageData(
                message_id=message.id,
                sent_at=now,
                event=message.context or {},
                unsubscribe_url=self.links.unsubscribe_url(message.id),
                preferences_url=self.links.preferences_url(message.contact_id),
            )
            results[message.id] = self._render_one(
                template, message_variables(contacts[message.contact_id], data, {})
            )
        return results

    def preview(self, session: Session, key: str, data: PreviewIn) -> PreviewOut:
        """The template rendered for one contact and context, assigning nothing."""
        template = self._template(session, key)
        contact_id = data.contact_id
        if contact_id is None and data.email is not None:
            contact_id = repository.contact_id_by_email(session, data.email.strip().lower())
        if contact_id is None:
            where = "email" if data.email is not None else "contact_id"
            raise InvalidInput.at(where, "names no contact")
        facts = load_facts(session, [contact_id], catalog=self.filters.catalog(session))
        one: ContactFacts | None = facts.get(contact_id)
        if one is None:
            raise InvalidInput.at("contact_id", "names no contact")
        preview_id = new_id()
        variables = message_variables(
            contact_variables(one),
            MessageData(
                message_id=preview_id,
                sent_at=self.clock.now(),
                event=data.context,
                unsubscribe_url=self.links.unsubscribe_url(preview_id),
                preferences_url=self.links.preferences_url(contact_id),
            ),
            {},
        )
        rendered = self._render_one(template, variables)
        if isinstance(rendered, RenderFailure):
            raise InvalidInput.at("template", rendered.reason)
        return PreviewOut(
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
        )

    def _render_one(
        self, template: EmailTemplate, variables: dict[str, Any]
    ) -> RenderedEmail | RenderFailure:
        try:
            return render(self._compiled_version(template), variables)
        except Exception as error:  # a template must fail its message, never the batch
            return failure_of(error)

    def _compiled_version(self, template: EmailTemplate) -> CompiledTemplate:
        cache_key = (template.id, template.version)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            compiled = compile_template(self.environments, template)
            self._compiled[cache_key] = compiled
            if len(self._compiled) > _CACHED_VERSIONS:
                self._compiled.popitem(last=False)
        return compiled
