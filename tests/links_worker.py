"""One process upserting one pair of ids many times, for the two-process tests in ``test_links.py``.

Usage: ``links_worker.py DATABASE_URL KIND GHL_ID CONNECTEAM_ID ROUNDS``

The worker opens the store, prints ``ready``, and waits for one line on stdin (the test sends it to
every worker at once, so their puts overlap). Then it puts the pair ``ROUNDS`` times (at most
``MAX_ROUNDS``), each with the round in the metadata, prints ``done``, and exits; an error is a
traceback on stderr and exit status 1. It ends by itself: when stdin closes without a line it
starts anyway.
"""

from __future__ import annotations

import sys

from connector.persistence.links import LinkStore

__all__ = ["MAX_ROUNDS", "main"]

MAX_ROUNDS = 1000


def main(argv: list[str]) -> int:
    """Run one worker; the exit status."""
    url, kind, ghl_id, connecteam_id, rounds = argv
    ct: str | int = int(connecteam_id) if connecteam_id.isdigit() else connecteam_id
    store = LinkStore.for_env({"CONNECTOR_DATABASE_URL": url})
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(min(int(rounds), MAX_ROUNDS)):
        store.put(kind, ghl_id, ct, {"round": n})
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
