"""Run Postillon's benchmarks: `./dev bench` runs them all, `./dev bench NAME [options]` one.

Each benchmark prints its figure beside a baseline measured in the same run, and the ratio.
`./dev bench NAME --help` lists a benchmark's options (rows, batches, --database-url).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import contact_batch_api, contact_import

BENCHMARKS: dict[str, tuple[Callable[[list[str] | None], int], str]] = {
    "contact_import": (contact_import.main, "CSV import rows/s (default 200,000 rows)"),
    "contact_batch_api": (contact_batch_api.main, "batch API contacts/s (50 batches of 1,000)"),
}


def usage() -> str:
    lines = ["usage: ./dev bench [NAME [options]]", "", "benchmarks:"]
    lines += [f"  {name:<20} {summary}" for name, (_, summary) in BENCHMARKS.items()]
    lines += ["", "With no NAME, every benchmark runs with its defaults."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        status = 0
        for run, _ in BENCHMARKS.values():
            status = max(status, run([]))
        return status
    name, options = argv[0].replace("-", "_"), argv[1:]
    if name in {"_h", "__help", "help"}:
        print(usage())
        return 0
    if name not in BENCHMARKS:
        print(f"bench: unknown benchmark {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    run, _ = BENCHMARKS[name]
    return run(options)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
