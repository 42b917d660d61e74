"""Broadcast materialisation: recipients put in the outbox per second, beside one
hand-written INSERT … SELECT of the same rows in the same run.

Generates N contacts with email consent (default 100,000), a template and a broadcast to
everyone, then times the broadcast's steps (chunks of `broadcast_chunk_size`, one
transaction each: the audience query, variant and due time per recipient in Python, an
executemany INSERT … ON CONFLICT DO NOTHING) until every recipient has a message. The
baseline copies the same contacts into `messages` with a single INSERT … SELECT (ids,
keys and times made by the database; no variants, zones or throttle) in a second
database with the same contacts.

    ./dev bench broadcast_materialise [--recipients N] [--chunk N]
                                      [--database-url URL|auto-postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.common import (
    add_database_option,
    build_runtime,
    open_databases,
    print_heading,
    print_line,
    print_rate,
)
from postillon.broadcasts.schemas import BroadcastIn
from postillon.kit.ids import new_id
from postillon.kit.repository import chunked, insert_rows
from postillon.models import Contact, ContactConsent, EmailTemplate
from postillon.runtime import Runtime


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./dev bench broadcast_materialise")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=2000, help="recipients per step")
    add_database_option(parser)
    return parser.parse_args(argv)


def _populate(runtime: Runtime, count: int) -> None:
    now = runtime.clock.now()
    ids = sorted(new_id() for _ in range(count))
    with runtime.database.transaction() as session:
        session.add(
            EmailTemplate(
                id=new_id(), key="news", name="news", format="html", subject="News",
                body="<p>Hi</p>", compiled_html="<p>Hi</p>", kind="marketing",
                topic="newsletter", version=1, created_at=now, updated_at=now,
            )
        )  # fmt: skip
        for chunk in chunked(ids, 10_000):
            insert_rows(
                session,
                Contact,
                [
                    {"id": c, "email": f"{c.hex}@example.com", "attributes": {}, "score": 0,
                     "state": "identified", "created_at": now, "updated_at": now}
                    for c in chunk
                ],
            )  # fmt: skip
            insert_rows(
                session,
                ContactConsent,
                [
                    {"contact_id": c, "channel": "email", "status": "subscribed",
                     "changed_at": now, "source": "bench"}
                    for c in chunk
                ],
            )  # fmt: skip


def _materialise(runtime: Runtime) -> tuple[int, float]:
    data = BroadcastIn.model_validate(
        {"key": "bench", "name": "bench", "template": "news", "audience": {"everyone": True}}
    )
    with runtime.database.transaction() as session:
        runtime.broadcasts.create(session, data)
    started = time.perf_counter()
    with runtime.database.transaction() as session:
        runtime.broadcasts.send_now(session, "bench")
    # Step after step until the broadcast has nothing more to do but wait for the sender.
    while True:
        with runtime.database.transaction() as session:
            if not runtime.broadcasts.advance_key(session, "bench"):
                break
    seconds = time.perf_counter() - started
    with runtime.database.transaction(read_only=True) as session:
        made = runtime.broadcasts.get(session, "bench").recipient_count
    return made, seconds


def _baseline(runtime: Runtime) -> tuple[int, float]:
    postgres = runtime.database.engine.dialect.name == "postgresql"
    new_uuid = "gen_random_uuid()" if postgres else "lower(hex(randomblob(16)))"
    contact = "c.id::text" if postgres else "c.id"
    now = "now()" if postgres else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    with runtime.database.transaction() as session:
        template_id = session.scalar(text("SELECT id FROM email_templates"))
    statement = text(
        f"""
        INSERT INTO messages (id, contact_id, channel, kind, topic, template_id,
            template_version, variant, source, dedupe_key, to_address, context, state,
            attempts, due_at, queued_at, machine_opens)
        SELECT {new_uuid}, c.id, 'email', 'marketing', 'newsletter', :template, 1, 'A',
            'broadcast', 'baseline:' || {contact}, c.email, '{{}}', 'queued', 0, {now}, {now}, 0
        FROM contacts c JOIN contact_consents cc
            ON cc.contact_id = c.id AND cc.channel = 'email' AND cc.status = 'subscribed'
        WHERE c.email IS NOT NULL
        """
    )
    started = time.perf_counter()
    with runtime.database.transaction() as session:
        made = session.execute(statement, {"template": template_id}).rowcount  # type: ignore[attr-defined]
    return int(made), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    with (
        tempfile.TemporaryDirectory() as root,
        open_databases(Path(root), options.database_url) as databases,
    ):
        print_heading(
            f"Broadcast materialisation, {options.recipients:,} recipients "
            f"({databases.backend}, chunks of {options.chunk:,})"
        )
        figures = {}
        for name, measure in (("broadcast", _materialise), ("baseline", _baseline)):
            runtime = build_runtime(databases.fresh(name), Path(root) / name)
            runtime.broadcasts.chunk_size = options.chunk
            try:
                _populate(runtime, options.recipients)
                figures[name] = measure(runtime)
            finally:
                runtime.close()
        made, seconds = figures["broadcast"]
        base_made, base_seconds = figures["baseline"]
        print_rate("broadcast steps", made, seconds, "recipients")
        print_rate("INSERT … SELECT baseline", base_made, base_seconds, "recipients")
        print_line("ratio (broadcast / baseline rate)", f"{base_seconds / seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
