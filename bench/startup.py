"""Whole-process start-up time of the commands people type most.

    .venv/bin/python bench/startup.py [--runs 11] [--strict]

Each command runs as a new process (interpreter start, imports, catalog load, output), several
times; the median is compared with the 0.3 s target and with ``python -c pass`` measured in the
same run, so a slow machine shows up as a high baseline rather than as a slow connector.
``--strict`` exits 1 when a command misses the target. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from benchlib import connector_cmd, processes

TARGET = 0.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (median of them)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a command misses 0.3 s")
    args = parser.parse_args()
    runs = max(args.runs, 1)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CONNECTOR_HOME": home}
        env.pop("CONNECTOR_PLUGINS_DIR", None)
        base = statistics.median(processes([sys.executable, "-c", "pass"], runs, env))
        commands = {
            "connector --help": [*connector_cmd(), "--help"],
            "connector catalog show ghl.get-contact": [
                *connector_cmd(),
                "catalog",
                "show",
                "ghl.get-contact",
            ],
        }
        print(f"median of {runs} runs each; target {TARGET:.2f} s whole process")
        print(f"{'python -c pass':<40} {base:6.3f} s  (baseline)")
        missed = False
        for label, cmd in commands.items():
            times = processes(cmd, runs, env)
            med = statistics.median(times)
            verdict = "ok" if med < TARGET else "OVER"
            missed |= med >= TARGET
            print(
                f"{label:<40} {med:6.3f} s  {med / base:5.1f}x baseline  "
                f"min {min(times):.3f} max {max(times):.3f}  {verdict}"
            )
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
