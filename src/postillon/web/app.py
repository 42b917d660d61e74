"""The FastAPI application: routers of each feature, error handlers, health, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from postillon import __version__
from postillon.automations.caps.endpoints import router as frequency_caps_router
from postillon.automations.endpoints import router as automations_router
from postillon.automations.run_endpoints import router as rule_runs_router
from postillon.bounces.server import bounce_server
from postillon.broadcasts.endpoints import router as broadcasts_router
from postillon.contacts.endpoints import router as contacts_router
from postillon.imports.endpoints import router as imports_router
from postillon.lifecycle.endpoints import router as lifecycle_router
from postillon.messages.endpoints import router as messages_router
from postillon.messages.stats_endpoints import router as message_stats_router
from postillon.messages.tracking_endpoints import router as email_tracking_router
from postillon.privacy.endpoints import router as privacy_router
from postillon.runtime import Runtime
from postillon.scoring.endpoints import router as scoring_router
from postillon.segments.endpoints import router as segments_router
from postillon.subscriptions.endpoints import pages as subscription_pages
from postillon.subscriptions.endpoints import router as topics_router
from postillon.templates.endpoints import blocks_router, templates_router
from postillon.tracking.endpoints import admin_router as visitors_router
from postillon.tracking.endpoints import router as tracking_router
from postillon.tracking.snippet import router as snippet_router
from postillon.traits.endpoints import router as traits_router
from postillon.vouchers.endpoints import image_router as voucher_image_router
from postillon.vouchers.endpoints import router as vouchers_router
from postillon.web.dependencies import RuntimeDep
from postillon.web.errors import install_error_handlers
from postillon.web.middleware import RefuseNulCharacters
from postillon.worker.runner import Worker

logger = logging.getLogger("postillon.web")


def create_app(
    runtime: Runtime, *, run_worker: bool | None = None, owns_runtime: bool = False
) -> FastAPI:
    """The web app; with `run_worker` the worker runs in the same process (embedded mode);
    with `owns_runtime` the app closes the runtime when it stops."""
    with_worker = runtime.settings.run_worker if run_worker is None else run_worker

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker_task: asyncio.Task[None] | None = None
        worker = Worker(runtime, name="embedded")
        if with_worker:
            worker_task = asyncio.create_task(worker.run_forever())
        # The bounce server goes with the worker (embedded mode), if enabled.
        enabled = with_worker and runtime.settings.bounce_server_enabled
        bounces = bounce_server(runtime) if enabled else None
        if bounces is not None:
            await asyncio.to_thread(bounces.start)
        try:
            yield
        finally:
            if bounces is not None:
                await asyncio.to_thread(bounces.stop)
            if worker_task is not None:
                worker.stop()
                await worker_task
            if owns_runtime:
                await asyncio.to_thread(runtime.close)
            logger.info("Postillon stopped")

    app = FastAPI(
        title="Postillon",
        version=__version__,
        description="Marketing automation: contacts, events, segments, journeys, email.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(RefuseNulCharacters)
    app.include_router(contacts_router)
    app.include_router(privacy_router)
    app.include_router(imports_router)
    app.include_router(scoring_router)
    app.include_router(visitors_router)
    app.include_router(tracking_router)
    app.include_router(snippet_router)
    app.include_router(lifecycle_router)
    app.include_router(traits_router)
    app.include_router(segments_router)
    app.include_router(templates_router)
    app.include_router(blocks_router)
    app.include_router(vouchers_router)
    app.include_router(voucher_image_router)
    app.include_router(messages_router)
    app.include_router(email_tracking_router)
    app.include_router(subscription_pages)
    app.include_router(topics_router)
    app.include_router(broadcasts_router)
    app.include_router(message_stats_router)
    app.include_router(automations_router)
    app.include_router(frequency_caps_router)
    app.include_router(rule_runs_router)

    @app.get("/healthz", tags=["health"])
    def healthz(current: RuntimeDep) -> JSONResponse:
        """200 when the web process answers and its database does."""
        try:
            with current.database.transaction(read_only=True) as session:
                session.execute(text("SELECT 1"))
        except Exception:
            logger.exception("health check: database unreachable")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    return app
