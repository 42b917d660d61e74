"""Conditional content (seed 003): blocks of variants, each shown to the recipients its
filter matches, best priority first.

Saving a block checks every variant's filter (through the filter service, errors with
their paths) and its Jinja. At render time the variants of all blocks a batch's templates
name are decided for all its recipients from facts loaded once for the batch.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Template
from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.filters import model as m
from postillon.filters.evaluate import Evaluator
from postillon.filters.facts import ContactFacts, event_names
from postillon.filters.service import FilterService
from postillon.filters.sql import Catalog
from postillon.kit.ids import new_id
from postillon.models import ContentBlock
from postillon.templates import repository
from postillon.templates.checks import check_jinja
from postillon.templates.rendering import Environments
from postillon.templates.schemas import ContentBlockIn, ContentBlockOut

_KEY = re.compile(r"[a-z0-9_-]{1,100}")
# Compiled block versions kept per process.
_CACHED_VERSIONS = 256


@dataclass(frozen=True)
class CompiledVariant:
    key: str
    priority: int
    filter: m.Filter | None
    content: Template


@dataclass(frozen=True)
class CompiledBlock:
    key: str
    variants: tuple[CompiledVariant, ...]  # best priority first
    # Why the block cannot be decided any more (a filter names a deleted segment …).
    problem: str | None = None

    def event_names(self, catalog: Catalog) -> set[str]:
        names: set[str] = set()
        for variant in self.variants:
            if variant.filter is not None:
                names |= event_names(variant.filter, catalog)
        return names


class ContentBlockService:
    def __init__(self, clock: Clock, filters: FilterService, environments: Environments) -> None:
        self.clock = clock
        self.filters = filters
        self.environments = environments
        self._compiled: OrderedDict[tuple[uuid.UUID, int], CompiledBlock] = OrderedDict()

    def save(self, session: Session, data: ContentBlockIn) -> tuple[ContentBlockOut, bool]:
        """Create or replace a block by key (its version rises on a change)."""
        if not _KEY.fullmatch(data.key):
            raise InvalidInput.at("key", "must be 1-100 of a-z, 0-9, - and _")
        variants = [variant.model_dump() for variant in data.variants]
        self._check(session, variants)
        block = repository.block_by_key(session, data.key)
        now = self.clock.now()
        name = data.name or data.key
        if block is None:
            block = ContentBlock(
                id=new_id(), key=data.key, name=name, variants=variants, version=1,
                created_at=now, updated_at=now,
            )  # fmt: skip
            repository.add_block(session, block)
            return _out(block), True
        if (block.name, block.variants) != (name, variants):
            block.name, block.variants = name, variants
            block.version += 1
            block.updated_at = now
            session.flush()
        return _out(block), False

    def create(self, session: Session, data: ContentBlockIn) -> ContentBlockOut:
        if repository.block_by_key(session, data.key) is not None:
            raise Conflict(
                f"a content block with key {data.key!r} exists already",
                [FieldProblem("key", "is taken")],
            )
        return self.save(session, data)[0]

    def get(self, session: Session, key: str) -> ContentBlockOut:
        return _out(self._block(session, key))

    def list_blocks(self, session: Session) -> list[ContentBlockOut]:
        return [_out(block) for block in repository.all_blocks(session)]

    def delete(self, session: Session, key: str) -> None:
        repository.delete_block(session, self._block(session, key).id)

    def _block(self, session: Session, key: str) -> ContentBlock:
        block = repository.block_by_key(session, key)
        if block is None:
            raise NotFound(f"no content block has the key {key!r}")
        return block

    def _check(self, session: Session, variants: Sequence[Mapping[str, Any]]) -> None:
        problems: list[FieldProblem] = []
        catalog = self.filters.catalog(session)
        seen: set[str] = set()
        for index, variant in enumerate(variants):
            at = f"variants[{index}]"
            if not _KEY.fullmatch(variant["key"]):
                problems.append(FieldProblem(f"{at}.key", "must be 1-100 of a-z, 0-9, - and _"))
            elif variant["key"] in seen:
                problems.append(FieldProblem(f"{at}.key", "is used by another variant"))
            seen.add(variant["key"])
            if variant["filter"] is not None:
                try:
                    self.filters.parse(
                        session, variant["filter"], where=f"{at}.filter", catalog=catalog
                    )
                except InvalidInput as error:
                    problems.extend(error.problems)
            found, _ = check_jinja(self.environments.html, variant["content"], f"{at}.content")
            problems.extend(found)
        if problems:
            raise InvalidInput.of(problems)

    # Rendering

    def compiled_blocks(
        self, session: Session, keys: set[str], catalog: Catalog
    ) -> dict[str, CompiledBlock]:
        """The named blocks ready to decide and render (cached per block version)."""
        compiled: dict[str, CompiledBlock] = {}
        for key, block in repository.blocks_by_key(session, keys).items():
            cache_key = (block.id, block.version)
            if cache_key not in self._compiled:
                self._compiled[cache_key] = self._compile(session, block, catalog)
                if len(self._compiled) > _CACHED_VERSIONS:
                    self._compiled.popitem(last=False)
            compiled[key] = self._compiled[cache_key]
        return compiled

    def _compile(self, session: Session, block: ContentBlock, catalog: Catalog) -> CompiledBlock:
        try:
            variants = [
                CompiledVariant(
                    key=variant["key"],
                    priority=int(variant.get("priority") or 0),
                    filter=self.filters.parse(session, variant["filter"], catalog=catalog)
                    if variant.get("filter") is not None
                    else None,
                    content=self.environments.html.from_source(variant["content"]),
                )
                for variant in block.variants
            ]
        except InvalidInput as error:
            # Checked at save; what it named has gone since. Its messages fail, saying so.
            return CompiledBlock(block.key, (), f"content block {block.key!r}: {error.message}")
        # Stable: variants of equal priority keep the order they were written in.
        variants.sort(key=lambda variant: -variant.priority)
        return CompiledBlock(key=block.key, variants=tuple(variants))


def matching_variants(
    blocks: Mapping[str, CompiledBlock],
    facts: Mapping[uuid.UUID, ContactFacts],
    catalog: Catalog,
) -> dict[uuid.UUID, dict[str, list[CompiledVariant]]]:
    """For each contact, the variants of each block its facts match, best first."""
    evaluator = Evaluator(catalog)
    return {
        contact_id: {
            key: [
                variant
                for variant in block.variants
                if variant.filter is None or evaluator.matches(variant.filter, one)
            ]
            for key, block in blocks.items()
            if block.problem is None
        }
        for contact_id, one in facts.items()
    }


def _out(block: ContentBlock) -> ContentBlockOut:
    return ContentBlockOut.model_validate(block, from_attributes=True)
