"""Email templates: saving them checked, previewing them, and rendering messages in sets."""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2.exceptions import TemplateSyntaxError
from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.fields import FieldError, normalise_email
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.filters.facts import load_facts
from postillon.filters.service import FilterService
from postillon.kit.ids import new_id
from postillon.messages.links import LinkSigner
from postillon.models import EmailTemplate
from postillon.templates import repository
from postillon.templates.blocks import CompiledVariant, ContentBlockService, matching_variants
from postillon.templates.checks import (
    FunctionCall,
    check_jinja,
    check_mailbox,
    compile_mjml,
    function_calls,
)
from postillon.templates.functions import bind_functions
from postillon.templates.rendering import (
    CompiledTemplate,
    Environments,
    MessageData,
    MessageToRender,
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
from postillon.vouchers import repository as vouchers_repository
from postillon.vouchers.service import Voucher, VoucherService

_KEY = re.compile(r"[a-z0-9_-]{1,100}")
# Compiled template versions kept per process; a newsletter and a few journeys fit easily.
_CACHED_VERSIONS = 256
_EDITABLE = (
    "name", "format", "subject", "preheader", "body", "text_body", "from_address",
    "reply_to", "kind", "topic",
)  # fmt: skip


class TemplateService:
    def __init__(
        self, clock: Clock, links: LinkSigner, filters: FilterService, vouchers: VoucherService
    ) -> None:
        self.clock = clock
        self.links = links
        self.filters = filters
        self.vouchers = vouchers
        html, text = build_environments()
        self.environments = Environments(html=html, text=text)
        self.blocks = ContentBlockService(clock, filters, self.environments)
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

    def list_templates(self, session: Session) -> list[TemplateSummary]:
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

    def delete_block(self, session: Session, key: str) -> None:
        """Delete a content block no template names (409 otherwise: they would render it
        empty)."""
        users = [
            template.key
            for template in repository.all_templates(session)
            if key in self._named(template, "content", "content_variants")
        ]
        if users:
            raise Conflict(f"content block {key!r} is used by templates {', '.join(users)}")
        self.blocks.delete(session, key)

    def _named(self, template: EmailTemplate, *functions: str) -> set[str]:
        """The keys `template` passes to the given functions."""
        sources = (template.subject, template.preheader, template.body, template.text_body)
        keys: set[str] = set()
        for source in sources:
            if source:
                try:
                    tree = self.environments.text.parse(source)
                except TemplateSyntaxError:
                    continue
                keys.update(
                    call.key
                    for call in function_calls(tree)
                    if call.function in functions and call.key
                )
        return keys

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
        self._check_compiles(fields)
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

    def _check_compiles(self, fields: Mapping[str, Any]) -> None:
        """Compile the checked fields as sending will (MJML's output, CSS inlined, the
        text part derived), so that nothing is left to fail at send."""
        try:
            compile_template(self.environments, EmailTemplate(**fields))
        except TemplateSyntaxError as error:
            # MJML moved a Jinja tag into a place where it no longer pairs up.
            raise InvalidInput.at(
                "body", f"after MJML, line {error.lineno}: {error.message}"
            ) from None
        except Exception as error:
            raise InvalidInput.at("body", f"cannot be compiled: {error}") from None

    def check(self, session: Session, fields: Mapping[str, Any]) -> str:
        """The compiled HTML of a template's fields, or InvalidInput naming each problem
        with its field and line."""
        problems: list[FieldProblem] = []
        calls: list[tuple[str, FunctionCall]] = []
        for field in ("subject", "preheader", "body", "text_body"):
            source = fields.get(field)
            if not source:
                if field in {"subject", "body"}:
                    problems.append(FieldProblem(field, "must not be empty"))
                continue
            environment = self.environments.html if field == "body" else self.environments.text
            found, tree = check_jinja(environment, source, field)
            problems.extend(found)
            if tree is not None:
                calls.extend((field, call) for call in function_calls(tree))
        problems.extend(self._reference_problems(session, calls))
        for field in ("from_address", "reply_to"):
            if fields.get(field) and (problem := check_mailbox(fields[field], field)):
                problems.append(problem)
        if problems:
            raise InvalidInput.of(problems)
        body: str = fields["body"]
        if fields["format"] != "mjml":
            return body
        compiled, problems = compile_mjml(body)
        if compiled is None:
            raise InvalidInput.of(problems)
        return compiled

    def _reference_problems(
        self, session: Session, calls: Sequence[tuple[str, FunctionCall]]
    ) -> list[FieldProblem]:
        """Template functions must name, as written strings, blocks and pools that exist."""
        blocks = repository.blocks_by_key(
            session, {c.key for _, c in calls if c.key and c.function != "voucher"}
        )
        pools = repository.voucher_pool_keys(
            session, {c.key for _, c in calls if c.key and c.function == "voucher"}
        )
        problems: list[FieldProblem] = []
        for field, call in calls:
            where = f"line {call.line}: {call.function}()"
            if call.key is None:
                problems.append(FieldProblem(field, f"{where} takes a key written as a string"))
            elif call.function == "voucher" and call.key not in pools:
                problems.append(
                    FieldProblem(field, f"{where}: there is no voucher pool {call.key!r}")
                )
            elif call.function != "voucher" and call.key not in blocks:
                problems.append(
                    FieldProblem(field, f"{where}: there is no content block {call.key!r}")
                )
        return problems

    # Rendering

    def render_messages(
        self, session: Session, messages: Sequence[MessageToRender]
    ) -> dict[uuid.UUID, RenderedEmail | RenderFailure]:
        """Each message rendered from its template, contact and context: contacts, content
        decisions and vouchers of all of them in a few queries, whatever their number."""
        results: dict[uuid.UUID, RenderedEmail | RenderFailure] = {}
        templates = repository.templates_by_id(
            session, {m.template_id for m in messages if m.template_id is not None}
        )
        compiled: dict[uuid.UUID, CompiledTemplate] = {}
        broken: dict[uuid.UUID, RenderFailure] = {}
        for template_id, stored in templates.items():
            try:
                compiled[template_id] = self._compiled_version(stored)
            except Exception as error:  # checked at save; a bug here fails its messages only
                broken[template_id] = failure_of(error)
        catalog = self.filters.catalog(session)
        blocks = self.blocks.compiled_blocks(
            session, {key for one in compiled.values() for key in one.blocks}, catalog
        )
        names = {name for block in blocks.values() for name in block.event_names(catalog)}
        facts = load_facts(
            session, {m.contact_id for m in messages}, catalog=catalog, event_names=names
        )
        variants = matching_variants(blocks, facts, catalog)
        # Only contacts that exist get codes (a code names its contact by foreign key).
        vouchers = self._vouchers(session, [m for m in messages if m.contact_id in facts], compiled)
        contacts: dict[uuid.UUID, dict[str, Any]] = {}
        now = self.clock.now()
        for message in messages:
            template = compiled.get(message.template_id) if message.template_id else None
            if template is None:
                results[message.id] = broken.get(
                    message.template_id or uuid.UUID(int=0),
                    RenderFailure("the message has no template"),
                )
                continue
            if message.contact_id not in facts:
                results[message.id] = RenderFailure("the contact does not exist")
                continue
            if message.contact_id not in contacts:
                contacts[message.contact_id] = contact_variables(facts[message.contact_id])
            data = MessageData(
                message_id=message.id,
                sent_at=now,
                event=message.context or {},
                unsubscribe_url=self.links.unsubscribe_url(message.id)
                if "unsubscribe_url" in template.reads
                else None,
                preferences_url=self.links.preferences_url(message.contact_id)
                if "preferences_url" in template.reads
                else None,
            )
            variables = message_variables(contacts[message.contact_id], data)
            results[message.id] = self._render_one(
                template,
                variables,
                variants.get(message.contact_id, {}),
                vouchers.get(message.contact_id, {}),
            )
        return results

    def _vouchers(
        self,
        session: Session,
        messages: Sequence[MessageToRender],
        compiled: Mapping[uuid.UUID, CompiledTemplate],
    ) -> dict[uuid.UUID, dict[str, Voucher | str]]:
        """Each contact's voucher of each pool its templates name (assigned now if it has
        none), or why there is none: one assignment per pool for the whole batch."""
        wanted: dict[str, dict[uuid.UUID, uuid.UUID]] = {}
        for message in messages:
            template = compiled.get(message.template_id) if message.template_id else None
            for key in template.pools if template else ():
                wanted.setdefault(key, {}).setdefault(message.contact_id, message.id)
        found: dict[uuid.UUID, dict[str, Voucher | str]] = {}
        pools = vouchers_repository.pools_by_key(session, wanted)
        for key, messages_by_contact in wanted.items():
            pool = pools.get(key)
            given = self.vouchers.assign(session, pool, messages_by_contact) if pool else {}
            for contact_id in messages_by_contact:
                found.setdefault(contact_id, {})[key] = given.get(contact_id) or (
                    f"voucher pool {key!r} has no free code left"
                    if pool
                    else f"there is no voucher pool {key!r}"
                )
        return found

    def preview(self, session: Session, key: str, data: PreviewIn) -> PreviewOut:
        """The template rendered for one contact and context; vouchers are not assigned
        (the contact's own code, or a sample)."""
        template = self._template(session, key)
        contact_id = data.contact_id
        if contact_id is None and data.email is not None:
            try:
                email = normalise_email(data.email)
            except FieldError as error:
                raise InvalidInput.at("email", str(error)) from None
            contact_id = repository.contact_id_by_email(session, email)
        if contact_id is None:
            where = "email" if data.email is not None else "contact_id"
            raise InvalidInput.at(where, "names no contact")
        try:
            compiled = self._compiled_version(template)
        except Exception as error:  # checked at save; say what, never a 500
            raise InvalidInput.at("template", failure_of(error).reason) from None
        catalog = self.filters.catalog(session)
        blocks = self.blocks.compiled_blocks(session, set(compiled.blocks), catalog)
        names = {name for block in blocks.values() for name in block.event_names(catalog)}
        facts = load_facts(session, [contact_id], catalog=catalog, event_names=names)
        if contact_id not in facts:
            raise InvalidInput.at("contact_id", "names no contact")
        pools = vouchers_repository.pools_by_key(session, compiled.pools)
        vouchers: dict[str, Voucher | str] = {
            key: self.vouchers.sample(session, pool, contact_id) for key, pool in pools.items()
        }
        preview_id = new_id()
        variables = message_variables(
            contact_variables(facts[contact_id]),
            MessageData(
                message_id=preview_id,
                sent_at=self.clock.now(),
                event=data.context,
                unsubscribe_url=self.links.unsubscribe_url(preview_id),
                preferences_url=self.links.preferences_url(contact_id),
            ),
        )
        variants = matching_variants(blocks, facts, catalog).get(contact_id, {})
        rendered = self._render_one(compiled, variables, variants, vouchers)
        if isinstance(rendered, RenderFailure):
            raise InvalidInput.at("template", rendered.reason)
        return PreviewOut(
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
        )

    def _render_one(
        self,
        compiled: CompiledTemplate,
        variables: dict[str, Any],
        variants: Mapping[str, list[CompiledVariant]],
        vouchers: Mapping[str, Voucher | str],
    ) -> RenderedEmail | RenderFailure:
        html_functions, text_functions = bind_functions(variables, variants, vouchers)
        variables.update(html_functions)
        try:
            return render(compiled, variables, text_functions)
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
