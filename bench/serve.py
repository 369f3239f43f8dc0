"""Webhook to finished run: events per second through `connector serve`, and answer latency.

    .venv/bin/python bench/serve.py [--events 300] [--senders 8] [--workers 8]

A `Service` (what `connector serve` runs) serves ``bench/recipes/webhook_three_steps.yaml`` (two
GoHighLevel reads and a write per ``ContactCreate``) on a real socket, on SQLite in a temporary
CONNECTOR_HOME, against a local HTTP server that answers at once. ``--senders`` threads POST
signed (Ed25519) webhooks, each with its own ``webhookId``; the clock runs from the first POST
until the last run is recorded as finished. The baseline, measured in the same run, is the same
three requests per event in a plain httpx loop. Prints events per second of each, their ratio,
and the webhook answer latency (p50, p99): the time to verify, store durably and answer. Not a
test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from benchlib import TOKEN, ContactTasksHandler, Signer, plain_rate, serve

HERE = Path(__file__).parent
ROOMY_LIMITS = ((10**9, 1.0, "burst"), (10**9, 86_400.0, "day"))
LOCATION = "ve9EPM428h8vShlRW1KT"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--senders", type=int, default=8, help="threads POSTing webhooks")
    parser.add_argument("--workers", type=int, default=8, help="runs the server executes at once")
    args = parser.parse_args()
    n = max(args.events, 1)

    upstream = serve(ContactTasksHandler)
    base = f"http://127.0.0.1:{upstream.server_address[1]}/ghl"
    signer = Signer()
    home = tempfile.TemporaryDirectory()
    env = {
        "GHL_TOKEN": TOKEN,
        "GHL_BASE_URL": base,
        "GHL_LOCATION_ID": LOCATION,
        "CONNECTOR_HOME": home.name,
        "GHL_WEBHOOK_PUBLIC_KEY": signer.public_pem,
    }

    from connector.apps.plugins import default_registry
    from connector.persistence.runs import RunStore
    from connector.runtime.prepare import prepare
    from connector.serve.server import Service, bind

    registry, _ = default_registry([], home=Path("/nonexistent"))
    registry.apps["ghl"] = dataclasses.replace(registry.apps["ghl"], rate_limits=ROOMY_LIMITS)
    prepared = prepare(HERE / "recipes" / "webhook_three_steps.yaml", registry)
    assert prepared.plan is not None, prepared.problems
    service = Service(registry, [(prepared.plan, prepared.text)], env, workers=args.workers)
    service.start()
    sock: socket.socket = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/ghl"
    thread = threading.Thread(
        target=service.serve, args=(sock,), kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    store = RunStore(service.runtime.db.engine)

    # baseline: the same three requests per event, in a plain loop
    floor = plain_rate(base, n)

    local = threading.local()

    def send(i: int) -> float:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client()
        body = {
            "type": "ContactCreate",
            "locationId": LOCATION,
            "id": f"c{i:019d}",  # a contact per event (identical events would be one burst)
            "webhookId": str(uuid.uuid4()),
        }
        raw, signed = signer.sign(body)
        started = time.perf_counter()
        answer = client.post(url, content=raw, headers=signed)
        took = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        return took

    def finished() -> int:
        runs = store.list(limit=n + 100)
        return sum(1 for r in runs if r.status in ("succeeded", "failed"))

    with ThreadPoolExecutor(args.senders) as pool:  # warm-up
        list(pool.map(send, range(n, n + 20)))
    while finished() < 20:
        time.sleep(0.01)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.senders) as pool:
        latencies = list(pool.map(send, range(n)))
    while finished() < n + 20:
        time.sleep(0.01)
    served_rate = n / (time.perf_counter() - t0)
    failed = [r.error for r in store.list(limit=n + 100) if r.status != "succeeded"]

    service.stop()
    thread.join(timeout=60)
    upstream.shutdown()
    print(f"events: {n}, senders: {args.senders}, workers: {args.workers}")
    print(f"plain loop (3 requests per event):   {floor:8.1f} events/s")
    print(f"served (webhook -> finished run):    {served_rate:8.1f} events/s")
    print(f"ratio served / plain:                {served_rate / floor:8.3f}x")
    ms = [t * 1000 for t in latencies]
    print(
        f"webhook answer latency: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, mean {statistics.fmean(ms):.1f} ms"
    )
    if failed:
        print(f"{len(failed)} runs failed: {failed[:3]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
