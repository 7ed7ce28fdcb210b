#!/usr/bin/env python3
"""Run the hostile suite's attacks against a real ``python wsgi.py`` and print a markdown
table of their figures: the bystander's echo p50/p99/max and answered/sent, the server's
RSS before / peak during / after (MB), and each attack's own figures; then every figure
that missed its target, and by how much.

    .venv/bin/python scripts/hostile.py                      # every attack, 10 s each
    .venv/bin/python scripts/hostile.py slowloris handshakes # only these
    .venv/bin/python scripts/hostile.py --seconds 5 --json figures.json

Exit status: 0 when every figure met its target, 1 otherwise (2: bad arguments).
How each attack is run (CPU pinning, warm-up, settle, settings): tests/helpers/hostile/harness.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.helpers.hostile.attacks import ATTACKS  # noqa: E402
from tests.helpers.hostile.harness import ATTACK_SECONDS  # noqa: E402
from tests.helpers.hostile.harness import failure_report  # noqa: E402
from tests.helpers.hostile.harness import notes_report  # noqa: E402
from tests.helpers.hostile.harness import prepare_database  # noqa: E402
from tests.helpers.hostile.harness import run_attack  # noqa: E402
from tests.helpers.hostile.harness import table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("attacks", nargs="*", metavar="ATTACK",
                        help=f"attacks to run (default: all): {', '.join(ATTACKS)}")
    parser.add_argument("--seconds", type=float, default=ATTACK_SECONDS,
                        help=f"how long each attack runs (default {ATTACK_SECONDS:.0f})")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--server-root", metavar="DIR", type=Path,
                        help="run the server of another tree (e.g. an export of git HEAD: "
                        "git archive HEAD | tar -x -C DIR); default this one")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (server logs) and print its path")
    args = parser.parse_args()
    unknown = [a for a in args.attacks if a not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(ATTACKS)}")
    if args.seconds <= 0:
        parser.error("--seconds must be above 0")
    names = args.attacks or list(ATTACKS)

    workdir = Path(tempfile.mkdtemp(prefix="hostile-"))
    results = []
    try:
        print(f"preparing the users' database in {workdir}", file=sys.stderr, flush=True)
        database = prepare_database(workdir, args.server_root)
        for name in names:
            result = run_attack(name, database, workdir / name, seconds=args.seconds,
                                log=lambda message: print(message, file=sys.stderr, flush=True),
                                server_root=args.server_root)
            results.append(result)
            verdict = "pass" if not result.failures() else "FAIL"
            print(f"{name}: {verdict} ({result.wall_seconds} s)", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"server logs kept in {workdir}", file=sys.stderr)
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    report = failure_report(results)
    if report:
        print()
        print("Missed:")
        print(report)
    notes = notes_report(results)
    if notes:
        print()
        print("Notes (not asserted):")
        print(notes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_dict() for r in results], f, indent=2, default=str)
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
