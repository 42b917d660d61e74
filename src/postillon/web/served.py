"""The web app as each process of `postillon serve --processes N` builds it.

uvicorn starts the processes and imports this factory in each; they share the listening
socket. The settings come from the environment, as for every command; the parent process
has migrated the database and runs the worker in a process of its own.
"""

from __future__ import annotations

from fastapi import FastAPI

from postillon.kit import memory
from postillon.runtime import Runtime
from postillon.settings import load_settings
from postillon.web.app import create_app


def create_served_app() -> FastAPI:
    runtime = Runtime.build(load_settings())
    app = create_app(runtime, run_worker=False, owns_runtime=True)
    memory.tune_for_batches()
    return app
