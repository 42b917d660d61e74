"""HTTP routes for templates and content blocks. Thin: parse, call the service, shape."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from postillon.templates.schemas import (
    ContentBlockIn,
    ContentBlockOut,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TemplateSummary,
)
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

templates_router = APIRouter(
    prefix="/api/templates", tags=["templates"], dependencies=[Depends(require_admin)]
)
blocks_router = APIRouter(
    prefix="/api/content-blocks", tags=["templates"], dependencies=[Depends(require_admin)]
)


@templates_router.get("")
def list_templates(runtime: RuntimeDep, session: ReadSession) -> list[TemplateSummary]:
    return runtime.templates.list_templates(session)


@templates_router.post("", status_code=status.HTTP_201_CREATED)
def create_template(data: TemplateIn, runtime: RuntimeDep, session: WriteSession) -> TemplateOut:
    """A new template, checked (Jinja errors and unknown variables with field and line,
    MJML compiled); 409 if the key is taken."""
    return runtime.templates.create(session, data)


@templates_router.get("/{key}")
def get_template(key: str, runtime: RuntimeDep, session: ReadSession) -> TemplateOut:
    return runtime.templates.get(session, key)


@templates_router.put("/{key}")
def put_template(
    key: str, data: TemplateIn, runtime: RuntimeDep, session: WriteSession, response: Response
) -> TemplateOut:
    """Create or replace the template of `key` (the body's key must match)."""
    saved, created = runtime.templates.save(session, data.model_copy(update={"key": key}))
    if created:
        response.status_code = status.HTTP_201_CREATED
    return saved


@templates_router.patch("/{key}")
def patch_template(
    key: str, data: TemplatePatch, runtime: RuntimeDep, session: WriteSession
) -> TemplateOut:
    return runtime.templates.update(session, key, data)


@templates_router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(key: str, runtime: RuntimeDep, session: WriteSession) -> None:
    """Delete a template; 409 while messages reference it."""
    runtime.templates.delete(session, key)


@templates_router.post("/{key}/preview")
def preview_template(
    key: str, data: PreviewIn, runtime: RuntimeDep, session: ReadSession
) -> PreviewOut:
    """The template rendered for a contact (`contact_id` or `email`) and a `context`."""
    return runtime.templates.preview(session, key, data)


@blocks_router.get("")
def list_blocks(runtime: RuntimeDep, session: ReadSession) -> list[ContentBlockOut]:
    return runtime.templates.blocks.list_blocks(session)


@blocks_router.post("", status_code=status.HTTP_201_CREATED)
def create_block(
    data: ContentBlockIn, runtime: RuntimeDep, session: WriteSession
) -> ContentBlockOut:
    """A block of variants; filters and contents checked, problems with their paths."""
    return runtime.templates.blocks.create(session, data)


@blocks_router.get("/{key}")
def get_block(key: str, runtime: RuntimeDep, session: ReadSession) -> ContentBlockOut:
    return runtime.templates.blocks.get(session, key)


@blocks_router.put("/{key}")
def put_block(
    key: str, data: ContentBlockIn, runtime: RuntimeDep, session: WriteSession, response: Response
) -> ContentBlockOut:
    saved, created = runtime.templates.blocks.save(session, data.model_copy(update={"key": key}))
    if created:
        response.status_code = status.HTTP_201_CREATED
    return saved


@blocks_router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_block(key: str, runtime: RuntimeDep, session: WriteSession) -> None:
    """Delete a block; 409 while templates name it."""
    runtime.templates.delete_block(session, key)
