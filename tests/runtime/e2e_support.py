"""What the end-to-end runtime tests share: the CLI in a subprocess against an in-thread sandbox,
the sandbox's state over HTTP, and a log of every vendor request the sandbox was sent.

The log wraps the sandbox app's outermost layer (its fault injector), so it sees each request as
the client sent it, and the status the client got (``None`` when a fault dropped the connection).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.server import RunningSandbox
from connector.sending.http import KEEPALIVE_EXPIRY_SECONDS

__all__ = [
    "CLI",
    "CONTACT",
    "LOCAL",
    "RECIPES",
    "Launcher",
    "Request",
    "RequestLog",
    "cli",
    "cli_here",
    "cli_json",
    "finish",
    "ghl_contact",
    "ghl_items",
    "gone",
    "login",
    "set_faults",
    "start_cli",
]

CLI = [sys.executable, "-m", "connector"]
CONTACT = "ocQHyuzHvysMo5N5VsXc"  # the seeded contact (Jordan Avery) of the first location
RECIPES = Path(__file__).parent / "recipes"
# one client for the tests' requests to local servers (the sandbox, `connector serve`): httpx.get
# and httpx.post make a new client, and with it a TLS context (tens of ms of CPU), every call. It
# keeps no cookies (its jar's policy allows no domain), so no page session of one test reaches
# another's request, as with a new client each time. Like the runtime's clients, it does not use
# a connection idle for 4 s again: `connector serve` closes one after 5 s
# (connector/serve/guard.py), and a request sent in that moment fails unanswered.
LOCAL = httpx.Client(
    timeout=30,
    limits=httpx.Limits(max_connections=64, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS),
    cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
)
TIMEOUT = 180  # seconds: only so that a hung subprocess fails the test instead of hanging it
# the chaos tests' faults: 1 - 0.968**7, 20.4 % of requests meet one
CHAOS_FAULTS = (
    "429:0.032,retry_after=1",
    "500:0.032",
    "502:0.032",
    "503:0.032",
    "slow:0.032,delay=0.3",
    "drop-before:0.032",
    "drop-after:0.032",
)
# and the sandbox's limits, scaled up so that hundreds of events pass in seconds
CHAOS_LIMITS = RateLimitConfig(
    ghl_burst_max=100, ghl_burst_interval_ms=1000, connecteam_minute=6000
)


@dataclass(frozen=True)
class Request:
    at: float  # epoch seconds when the sandbox received it
    method: str
    path: str
    status: int | None  # what the client got; None: the connection was dropped


class RequestLog:
    """Every ``/ghl`` and ``/connecteam`` request the sandbox receives from now on."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        app = sandbox.app
        inner = app.faults

        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            path = str(scope.get("path", ""))
            if scope["type"] != "http" or path.startswith("/_sandbox"):
                await inner(scope, receive, send)
                return
            at = time.time()
            status: list[int] = []

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status.append(int(message["status"]))
                await send(message)

            # the injector drops a connection through the bound `send` of uvicorn's cycle: keep
            # that object reachable for it
            watch.__self__ = getattr(send, "__self__", None)  # type: ignore[attr-defined]
            try:
                await inner(scope, receive, watch)
            finally:
                with self._lock:
                    self._requests.append(
                        Request(at, str(scope["method"]), path, status[0] if status else None)
                    )

        app.faults = logged  # type: ignore[assignment]

    def requests(self, method: str | None = None, prefix: str = "") -> list[Request]:
        with self._lock:
            found = list(self._requests)
        return [
            r for r in found if (method is None or r.method == method) and r.path.startswith(prefix)
        ]


def set_faults(sandbox: RunningSandbox, *specs: str, seed: int = 1) -> None:
    """Replace the sandbox's fault rules (none: clear them)."""
    if specs:
        LOCAL.post(
            f"{sandbox.url}/_sandbox/faults", json={"seed": seed, "specs": list(specs)}
        ).raise_for_status()
    else:
        LOCAL.delete(f"{sandbox.url}/_sandbox/faults").raise_for_status()


def ghl_items(sandbox: RunningSandbox, kind: str, contact: str = CONTACT) -> list[dict[str, Any]]:
    """A contact's ``tasks`` or ``notes`` as ``GET /_sandbox/state`` shows them."""
    state = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()
    items: list[dict[str, Any]] = state["ghl"][kind].get(contact, [])
    return items


def ghl_contact(sandbox: RunningSandbox, contact: str = CONTACT) -> dict[str, Any]:
    state = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()
    found: dict[str, Any] = next(c for c in state["ghl"]["contacts"] if c["id"] == contact)
    return found


def cli(
    env: Mapping[str, str], *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``connector ARGS...`` in a subprocess with ``env`` over this process's environment."""
    done = subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return _exited(done, args, expect)


def cli_here(
    env: Mapping[str, str], *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``connector ARGS...`` in this process, through the same click command, with ``env`` over
    its environment, as :func:`cli` gives it (exit code, stdout, stderr): for the commands that
    only read or prune what is stored (no interpreter start each time). Nothing but a
    ``SystemExit`` may escape the command."""
    from click.testing import CliRunner

    from connector.cli import cli as connector_cli

    result = CliRunner(env=dict(env)).invoke(connector_cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"connector {' '.join(args)} raised {result.exception!r}"
    )
    done = subprocess.CompletedProcess(
        ["connector", *args], result.exit_code, result.stdout, result.stderr
    )
    return _exited(done, args, expect)


def _exited(
    done: subprocess.CompletedProcess[str], args: Sequence[str], expect: int | None
) -> subprocess.CompletedProcess[str]:
    if expect is not None:
        assert done.returncode == expect, (
            f"connector {' '.join(args)} exited {done.returncode}, not {expect}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
    return done


def cli_json(env: Mapping[str, str], *args: str, expect: int | None = 0) -> Any:
    return json.loads(cli(env, *args, expect=expect).stdout)


def start_cli(env: Mapping[str, str], args: Sequence[str]) -> subprocess.Popen[str]:
    """``connector ARGS...`` started in the background (collect it with :func:`finish`)."""
    return subprocess.Popen(
        [*CLI, *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: Sequence[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """Wait for every process (killing the rest if one hangs): (exit code, stdout, stderr)."""
    results: list[tuple[int, str, str]] = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def login(
    env: Mapping[str, str], *args: str, tamper: bool = False
) -> subprocess.CompletedProcess[str]:
    """``connector auth login ghl --no-browser ARGS``, its printed URL opened as a browser
    would; ``tamper``: the redirect back carries another ``state``."""
    proc = subprocess.Popen(
        [*CLI, "auth", "login", "ghl", "--no-browser", "--timeout", "60", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("http"):
                page = LOCAL.get(line.strip(), follow_redirects=False)
                assert page.status_code == 302, page.text
                back = page.headers["location"]
                if tamper:
                    back = back.replace("state=", "state=forged")
                answer = LOCAL.get(back)
                assert answer.status_code == 200
                break
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(seen) + out, err)


# -- a fork server of `connector` processes -------------------------------------------------------


def gone(pid: int) -> bool:
    """Whether process ``pid`` has died (a zombie, or reaped already)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


class Launcher:
    """A fork server (``crash_worker.py``): ``connector`` processes without the start-up."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CONNECTOR_DATABASE_URL"}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("crash_worker.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.running = 0  # the pid of the command on its way, if any
        self.together_pids: list[int] = []  # the processes of together() on their way
        threading.Thread(target=self._read, daemon=True).start()

    def ready(self) -> Launcher:
        """Wait until it has done its imports."""
        assert self._line() == "ready"
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")

    def _line(self) -> str:
        try:
            return self.lines.get(timeout=120)
        except queue.Empty:
            raise AssertionError("the fork server did not answer in 120 s") from None

    def run(
        self, env: Mapping[str, str], argv: list[str], out: Path, started: Any = None
    ) -> tuple[int, str, str]:
        """``connector ARGV...`` in a new process: (exit status, stdout, stderr). ``started`` is
        called with the process's pid as soon as it exists."""
        assert self.proc.stdin is not None
        stdout, stderr = out.with_suffix(".out"), out.with_suffix(".err")
        job = {"env": dict(env), "argv": argv, "stdout": str(stdout), "stderr": str(stderr)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        word, _, pid = self._line().partition(" ")
        assert word == "started", word
        self.running = int(pid)
        if started is not None:
            started(self.running)
        word, ended, code = self._line().split(" ")
        assert (word, ended) == ("ended", pid)
        self.running = 0
        return int(code), stdout.read_text(), stderr.read_text()

    def cli(
        self, env: Mapping[str, str], *args: str, expect: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        """``connector ARGS...`` as :func:`cli` runs it (``env`` over the environment, the exit
        status checked), in a process this server forks."""
        with tempfile.TemporaryDirectory() as folder:
            code, out, err = self.run(env, list(args), Path(folder) / "cli")
        return _exited(subprocess.CompletedProcess([*CLI, *args], code, out, err), args, expect)

    def cli_json(self, env: Mapping[str, str], *args: str, expect: int | None = 0) -> Any:
        return json.loads(self.cli(env, *args, expect=expect).stdout)

    def together(
        self, env: Mapping[str, str], argv: list[str], outs: Sequence[Path]
    ) -> list[tuple[int, str, str]]:
        """``connector ARGV...`` in ``len(outs)`` new processes forked at once (their output in
        ``outs``): each one's (exit status, stdout, stderr), in order."""
        assert self.proc.stdin is not None
        jobs = [
            {"env": dict(env), "argv": argv, "stdout": str(out.with_suffix(".out")),
             "stderr": str(out.with_suffix(".err"))}
            for out in outs
        ]  # fmt: skip
        self.proc.stdin.write(json.dumps({"together": jobs}) + "\n")
        self.proc.stdin.flush()
        pids = []
        for _ in outs:
            word, _, pid = self._line().partition(" ")
            assert word == "started", word
            pids.append(pid)
            self.together_pids.append(int(pid))
        results = []
        for pid, out in zip(pids, outs, strict=True):
            word, ended, code = self._line().split(" ")
            assert (word, ended) == ("ended", pid)
            results.append(
                (
                    int(code),
                    out.with_suffix(".out").read_text(),
                    out.with_suffix(".err").read_text(),
                )
            )
        self.together_pids = []
        return results

    def close(self) -> None:
        for pid in [self.running, *self.together_pids]:
            if pid and not gone(pid):  # a command that never ended (a failure)
                os.kill(pid, signal.SIGKILL)
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
