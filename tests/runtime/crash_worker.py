"""A fork server of ``connector`` processes, for ``test_crash.py`` and ``test_concurrent.py``.

Usage: ``crash_worker.py``. It imports the runtime (DBOS, SQLAlchemy, httpx) and reads the
packaged catalogs, most of a ``connector`` process's start-up and of its CPU, then prints
``ready``. For each JSON line on standard input, ``{"env": {...}, "argv": [...], "stdout": PATH,
"stderr": PATH}``, it forks one process that sets the environment, sends its output to the two
files and runs the command line, ``connector.cli.main(argv)``, as ``python -m connector ARGV...``
would (connector and DBOS read the environment when a command runs, not on import). It prints
``started PID``, waits for that process and prints ``ended PID CODE`` (the exit status: ``-9``
for a SIGKILL). One command at a time, or several at once: ``{"together": [JOB, ...]}`` forks
them all, then prints a ``started PID`` line for each and an ``ended PID CODE`` line for each, in
order (``test_concurrent.py``'s eight processes on one event). It forks before any thread or
connection exists, so each process starts as clean as a new one, without the imports.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback

import connector.cli
import connector.cli.run
import connector.runtime.durable  # the expensive imports, done before the fork
from connector.catalog import load_operations, load_triggers

__all__ = ["main"]


def _child(job: dict[str, object]) -> None:
    """In the forked process: one ``connector`` command; never returns."""
    code = 70
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(os.open(str(job["stdout"]), flags, 0o600), 1)
        os.dup2(os.open(str(job["stderr"]), flags, 0o600), 2)
        os.environ.update(dict(job["env"]))  # type: ignore[call-overload]
        connector.cli.main(list(job["argv"]))  # type: ignore[call-overload]
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # as the interpreter ends on an exception nothing caught
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> int:
    if threading.active_count() != 1:  # forking would copy a thread's locks mid-use
        print(f"threads before forking: {threading.enumerate()}", flush=True)
        return 1
    for app in ("ghl", "connecteam"):  # the packaged catalogs, read once (cached) as on import
        load_operations(app)
    load_triggers()
    print("ready", flush=True)
    while line := sys.stdin.readline():
        if not line.strip():
            continue
        job = json.loads(line)
        jobs = job.get("together", [job])
        pids = []
        for one in jobs:
            pid = os.fork()
            if pid == 0:
                _child(one)
            pids.append(pid)
        for pid in pids:
            print(f"started {pid}", flush=True)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            print(f"ended {pid} {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
