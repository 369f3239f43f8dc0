"""DBOS alone, queued: the floor under any served run that checkpoints each request as a DBOS step.

    .venv/bin/python bench/queue_floor.py [--events 600] [--delay 0.25] [--senders 8]
        [--workers 64] [--database-url URL] [--json]

A DBOS workflow of three steps, each waiting ``--delay`` seconds (as a request waits on its API,
without holding the CPU), enqueued by ``--senders`` threads back to back on a queue set up the
way ``connector serve`` sets up its run queue (partitioned, one run at a time per partition, a
partition per event, ``--workers`` at once, polled every 0.1 s) and run by this process, on
SQLite with the database settings the runtime uses (or, with ``--database-url``, on a new
database on that PostgreSQL server, dropped afterwards, with the pool the runtime gives DBOS).
Nothing of ours runs: no HTTP, no intake, no request, no run store. Prints events per second
(first enqueue to last workflow finished) and CPU milliseconds per event (the whole process:
enqueuing, DBOS's queue thread, the steps' checkpoints), or one JSON object with ``--json``
(bench/latency.py prints it beside ours).
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

from benchlib import postgres_database
from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from connector.persistence.database import make_system_engine, pool_size_for
from connector.runtime.worker import QUEUE_POLL_SECONDS, JSONSerializer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--delay", type=float, default=0.25, help="each step's wait, s")
    parser.add_argument("--senders", type=int, default=8, help="threads enqueuing at once")
    parser.add_argument("--workers", type=int, default=64, help="workflows running at once")
    parser.add_argument(
        "--database-url", default="", help="a PostgreSQL database to run on (default: SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    n, delay = max(args.events, 1), max(args.delay, 0.0)

    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(postgres_database(args.database_url))
        else:
            home = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{home}/floor.sqlite3"
        result = measure(url, n, delay, args.senders, args.workers, bool(args.database_url))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"DBOS alone, queued, 3 steps of {delay * 1000:.0f} ms: {result['events_per_s']:.1f}"
            f" events/s, {result['cpu_ms_per_event']:.2f} ms CPU/event ({n} events)"
        )
    sys.stdout.flush()
    os._exit(0)  # DBOS's threads need not be waited for


def measure(
    url: str, n: int, delay: float, senders: int, workers: int, postgres: bool
) -> dict[str, Any]:
    """Enqueue ``n`` workflows from ``senders`` threads and wait for them all: the figures."""
    config: Any = {
        "name": "queue-floor",
        "system_database_url": url,
        "application_version": "floor",
        "executor_id": "floor",
        "serializer": JSONSerializer(),
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.25,
        "max_executor_threads": workers + 8,
        "run_migrations": True,
    }
    if postgres:  # DBOS's own engine, its pool sized for the workers, as the runtime gives it
        config["sys_db_pool_size"] = 2 * pool_size_for(workers)
    engine = make_system_engine(url, pool_size=2 * min(workers, 32))
    if engine is not None:
        config["system_database_engine"] = engine

    def request() -> dict[str, Any]:  # as a request waits on its API
        time.sleep(delay)
        return {"ok": True}

    @DBOS.workflow(name="floor.queued")
    def queued(i: int) -> dict[str, Any]:
        for step in range(3):
            DBOS.run_step({"name": f"request{step}"}, request)
        return {"done": i}

    DBOS(config=config)
    DBOS.listen_queues(["floor"])
    DBOS.launch()
    queue = DBOS.register_queue(
        "floor",
        worker_concurrency=workers,
        partition_concurrency=1,
        polling_interval_sec=QUEUE_POLL_SECONDS,
    )
    handles: list[Any] = []
    lock = threading.Lock()

    def sender(first: int) -> None:
        for i in range(first, n, senders):
            wid = uuid.uuid4().hex
            with SetWorkflowID(wid), SetEnqueueOptions(queue_partition_key=wid):
                handle = queue.enqueue(queued, i)
            with lock:
                handles.append(handle)

    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for handle in handles:
        handle.get_result(polling_interval_sec=0.05)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    DBOS.destroy()  # its connections closed, so the database can be dropped
    if engine is not None:
        engine.dispose()
    return {"events": n, "events_per_s": n / wall, "cpu_ms_per_event": cpu * 1000 / n}


if __name__ == "__main__":
    sys.exit(main())
