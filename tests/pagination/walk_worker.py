"""Runs one recipe durably: ``walk_worker.py RECIPE RUN_ID`` with the environment it is given
(the resume test SIGKILLs it mid-walk)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from connector.apps.plugins import default_registry
from connector.runtime.durable import Runtime, RuntimeOptions
from connector.runtime.prepare import prepare_text


def main() -> int:
    path, run_id = sys.argv[1], sys.argv[2]
    registry, _ = default_registry([], home=Path(os.environ["CONNECTOR_HOME"]))
    text = Path(path).read_text()
    prepared = prepare_text(path, text, registry)
    assert prepared.plan is not None, prepared.problems
    with Runtime(registry, os.environ, RuntimeOptions(budgets=False)) as runtime:
        runtime.keep_recipe(prepared.plan, text)
        record = runtime.run(prepared.plan, {}, run_id=run_id)
    print(record.status, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
