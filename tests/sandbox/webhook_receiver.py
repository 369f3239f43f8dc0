"""What the webhook tests share: a real HTTP receiver that records what it gets and can fail the
first N deliveries, and helpers that move the sandbox clock, wait for deliveries and check payloads
against Connecteam's document."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema

from connector.sandbox import RunningSandbox
from tests.runtime.e2e_support import LOCAL

if TYPE_CHECKING:
    from sandbox.fixtures import Conformance

__all__ = ["Receiver", "advance", "check_schema", "flush", "register"]


class Receiver:
    """An HTTP server on a free port that records every POST and fails the first ``fail_first``
    of them with ``status``."""

    def __init__(self, fail_first: int = 0, status: int = 500, port: int = 0) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.fail_first, self.status = fail_first, status
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorder.got.append((headers, raw))
                failing = len(recorder.got) <= recorder.fail_first
                self.send_response(recorder.status if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.got]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def advance(sb: RunningSandbox, seconds: float) -> dict[str, Any]:
    r = LOCAL.post(f"{sb.url}/_sandbox/clock", json={"advance": seconds})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def flush(sb: RunningSandbox) -> None:
    assert sb.app.flush(timeout=60), "deliveries did not settle"


def check_schema(conformance: Conformance, name: str, body: Any) -> None:
    """``body`` against a schema of Connecteam's document (its webhook payloads)."""
    uri = next(u for u in conformance.documents if u.endswith("connecteam-openapi.json"))
    ref = {"$ref": f"{uri}#/components/schemas/{name}"}
    validator = jsonschema.Draft202012Validator(ref, registry=conformance.registry)
    assert not list(validator.iter_errors(body)), f"{name}: {body}"


def register(ct: httpx.Client, url: str, feature: str, events: list[str]) -> dict[str, Any]:
    spec = {"name": f"{feature} hook", "url": url, "featureType": feature, "eventTypes": events}
    r = ct.post("/settings/v1/webhooks", json=spec)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data
