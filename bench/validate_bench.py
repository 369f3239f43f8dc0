"""How long ``connector validate`` takes on 100 recipes, as a whole command (wall clock).

Writes 100 varied recipes (five steps each: GET and POST operations, foreach, if, vars, output
templates) into a temporary folder, runs ``connector validate FOLDER`` a few times and prints the
median wall time next to the median of ``connector --help`` measured in the same run, so the figure
can be read against the machine's interpreter start-up. The target is under 2 s.

    .venv/bin/python bench/validate_bench.py [--recipes 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """\
# yaml-language-server: $schema=../schemas/recipe.schema.json
name: bench-recipe-{n}
description: Benchmark recipe {n}.
trigger:
  app: connecteam
  event: contact.selected
  sample: {{contactId: c{n}, userId: {n}}}
vars:
  tag: "bench-{n}"
  tags: ["{{{{ vars.tag }}}}", "synced"]
steps:
  - id: contact
    action: ghl.get-contact
    with:
      contactId: "{{{{ trigger.contactId }}}}"
  - id: tasks
    action: ghl.get-all-tasks
    with: {{contactId: "{{{{ trigger.contactId }}}}"}}
  - id: tag
    if: "{{{{ steps.contact.output.contact.email is not none }}}}"
    action: ghl.add-tags
    with:
      contactId: "{{{{ trigger.contactId }}}}"
      tags: "{{{{ vars.tags }}}}"
  - id: task
    action: ghl.create-task
    with:
      contactId: "{{{{ trigger.contactId }}}}"
      title: "Follow up {{{{ steps.contact.output.contact.firstName | default('') }}}} #{n}"
      dueDate: "2026-01-{day:02d}T10:00:00Z"
      completed: false
  - id: complete
    foreach: "{{{{ steps.tasks.output.tasks }}}}"
    if: "{{{{ not item.completed and index < {n} }}}}"
    action: ghl.update-task-completed
    with:
      contactId: "{{{{ trigger.contactId }}}}"
      taskId: "{{{{ item.id }}}}"
      completed: true
    on_error: continue
output:
  email: "{{{{ steps.contact.output.contact.email }}}}"
  summary: |
    {{% for t in steps.tasks.output.tasks %}}{{{{ loop.index }}}}. {{{{ t.title | upper }}}}
    {{% endfor %}}{{{{ steps.task.status_code }}}} (recipe {n})
"""


def write_recipes(folder: Path, count: int) -> None:
    for n in range(count):
        (folder / f"recipe-{n:03d}.yaml").write_text(RECIPE.format(n=n, day=n % 28 + 1))


def timed(cmd: list[str], expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    connector = [sys.executable, "-m", "connector"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_recipes(folder, args.recipes)
        timed([*connector, "validate", str(folder)], 0)  # warm the file cache
        helps, validates = [], []
        for _ in range(args.repeat):
            helps.append(timed([*connector, "--help"], 0))
            validates.append(timed([*connector, "validate", str(folder)], 0))
    help_s = statistics.median(helps)
    validate_s = statistics.median(validates)
    print(f"connector --help:                      median {help_s:.3f} s")
    print(f"connector validate ({args.recipes} recipes):      median {validate_s:.3f} s")
    print(f"ratio validate / --help:               {validate_s / help_s:.2f}x")
    print(f"target under 2 s:                      {'met' if validate_s < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
