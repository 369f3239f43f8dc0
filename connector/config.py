"""Where connector keeps its files, the settings it reads, and where each one comes from.

Every setting is an environment variable. Besides the environment, they can be kept in a
``.env`` file (``NAME=value`` lines, read with python-dotenv): first the one in the working
directory, then the one in ``CONNECTOR_HOME``. The environment wins over both files, and the
working directory's file over the home's. :func:`load_env_files` lays the files' values under
the environment once, when the command line starts; :func:`settings` says, for every setting,
its value (secrets masked) and where it came from, for ``connector config``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx imports ssl when a context is first made
    import ssl

__all__ = [
    "ENV_FILE",
    "PREFIXES",
    "SETTINGS",
    "Setting",
    "SettingValue",
    "connector_home",
    "env_file_values",
    "load_env_files",
    "mask",
    "settings",
    "tls_context",
]

ENV_FILE = ".env"


def connector_home(env: Mapping[str, str] | None = None) -> Path:
    """``CONNECTOR_HOME``, or the user's data dir (``$XDG_DATA_HOME/connector``)."""
    env = os.environ if env is None else env
    if env.get("CONNECTOR_HOME"):
        return Path(env["CONNECTOR_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "connector"


@dataclass(frozen=True)
class Setting:
    """One environment variable connector reads: what it means, what applies when it is not set
    (text, for people), and whether its value is a secret (shown masked)."""

    name: str
    meaning: str
    default: str = "none"
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CONNECTOR_HOME", "where the database, credentials and plugins live", "the user's data dir"
    ),
    Setting(
        "XDG_DATA_HOME", "the user's data dir, when CONNECTOR_HOME is not set", "~/.local/share"
    ),
    Setting(
        "CONNECTOR_DATABASE_URL",
        "the one database: sqlite:///PATH or postgresql://...",
        "SQLite in CONNECTOR_HOME",
        secret=True,
    ),
    Setting(
        "CONNECTOR_SECRET_KEY",
        "the Fernet key that seals stored credentials",
        "the OS keyring, else secret.key in CONNECTOR_HOME",
        secret=True,
    ),
    Setting("GHL_BASE_URL", "GoHighLevel API base URL", "https://services.leadconnectorhq.com"),
    Setting(
        "GHL_TOKEN",
        "a GoHighLevel Private Integration or access token (over stored OAuth)",
        secret=True,
    ),
    Setting("GHL_LOCATION_ID", "the GoHighLevel sub-account recipes act on"),
    Setting("GHL_CLIENT_ID", "the GoHighLevel marketplace app's OAuth client id"),
    Setting(
        "GHL_CLIENT_SECRET", "the GoHighLevel marketplace app's OAuth client secret", secret=True
    ),
    Setting(
        "GHL_AUTH_URL",
        "GoHighLevel's authorize page",
        "https://marketplace.gohighlevel.com/v2/oauth/chooselocation",
    ),
    Setting(
        "GHL_WEBHOOK_PUBLIC_KEY",
        "PEM key that verifies X-GHL-Signature",
        "the key GoHighLevel publishes",
    ),
    Setting(
        "GHL_WEBHOOK_RSA_PUBLIC_KEY",
        "PEM key that verifies X-WH-Signature",
        "the key GoHighLevel publishes",
    ),
    Setting("CONNECTEAM_BASE_URL", "Connecteam API base URL", "https://api.connecteam.com"),
    Setting("CONNECTEAM_API_KEY", "Connecteam API key, sent as X-API-KEY", secret=True),
    Setting(
        "CONNECTEAM_CLIENT_ID",
        "Connecteam OAuth client id (`auth login connecteam --client-credentials`)",
    ),
    Setting("CONNECTEAM_CLIENT_SECRET", "Connecteam OAuth client secret", secret=True),
    Setting("CONNECTEAM_CONNECTION", "which stored Connecteam connection runs use", "the only one"),
    Setting(
        "CONNECTEAM_WEBHOOK_SECRET",
        "the secret in Connecteam webhook URLs",
        "none: Connecteam webhooks are refused",
        secret=True,
    ),
    Setting(
        "CONNECTOR_HOOK_TOKEN",
        "bearer token for POST /hooks/{recipe}",
        "none: hooks are refused",
        secret=True,
    ),
    Setting(
        "CONNECTOR_UI_PASSWORD",
        "the run history page's password",
        "none: the page is served on loopback only",
        secret=True,
    ),
    Setting("CONNECTOR_PUBLIC_URL", "the page's address, for links in alerts"),
    Setting(
        "CONNECTOR_FORWARDED_ALLOW_IPS", "proxies whose X-Forwarded-* headers are trusted", "none"
    ),
    Setting(
        "CONNECTOR_EXECUTOR_ID", "this serving process's name among several", "connector-serve"
    ),
    Setting(
        "CONNECTOR_SYNC_POLL_SECONDS",
        "seconds between serve's polls of what a sync pairs (0: no polls)",
        "120",
    ),
    Setting("CONNECTOR_ALERT_URLS", "Apprise URLs that get alerts", secret=True),
    Setting("CONNECTOR_ALERT_BACKLOG", "runs queued that make an alert", "off"),
    Setting(
        "CONNECTOR_ALERT_FAILURE_RATE", "share of failed runs (0-1) that makes an alert", "off"
    ),
    Setting("CONNECTOR_ALERT_FAILURE_WINDOW", "seconds the failure rate is counted over", "300"),
    Setting("CONNECTOR_ALERT_FAILURE_MIN_RUNS", "runs ended before the rate counts", "10"),
    Setting(
        "CONNECTOR_RATE_LIMITS",
        "rate limits instead of the apps' own (APP=N/SECONDS,...)",
        "the apps' documented limits",
    ),
    Setting("CONNECTOR_RETRY_ATTEMPTS", "attempts per request, the first included", "8"),
    Setting("CONNECTOR_RETRY_BASE_DELAY", "seconds before the first retry", "0.5"),
    Setting("CONNECTOR_RETRY_MAX_DELAY", "longest wait between retries, seconds", "60"),
    Setting("CONNECTOR_RETRY_MAX_WAIT", "longest Retry-After worth waiting for, seconds", "3600"),
    Setting("CONNECTOR_PLUGINS_DIR", "folders of drop-in plugins (as --plugins-dir)"),
    Setting("CONNECTOR_DISABLE_PLUGINS", "plugins not to load, a,b (as --disable-plugin)"),
    Setting("CONNECTOR_SANDBOX_FAULTS", "faults the embedded sandbox injects (docs/sandbox.md)"),
    Setting("CONNECTOR_SANDBOX_FAULT_SEED", "the seed of the sandbox's random faults", "0"),
    Setting(
        "CONNECTOR_SANDBOX_URL",
        "the running sandbox `connector sandbox show` reads",
        "http://127.0.0.1:8765",
    ),
    Setting(
        "CONNECTOR_SPECS_DIR",
        "where `catalog generate` finds the vendors' documents",
        "../shared beside the checkout",
    ),
    Setting("CONNECTOR_DEBUG", "show Python tracebacks of internal errors", "off"),
)

#: variables read by prefix: templates see CONNECTOR_VAR_* as env.NAME
PREFIXES = ("CONNECTOR_VAR_",)
_OURS = re.compile(r"^(CONNECTOR|GHL|CONNECTEAM)_[A-Z0-9_]+$")


@dataclass(frozen=True)
class SettingValue:
    """A setting as ``connector config`` shows it: its value (masked when secret; None when not
    set) and where it came from: ``environment``, ``.env file PATH`` or ``default``."""

    name: str
    value: str | None
    source: str
    meaning: str
    secret: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "source": self.source,
            "meaning": self.meaning,
            "secret": self.secret,
        }


def env_file_values(path: Path) -> dict[str, str]:
    """The ``NAME=value`` pairs of the ``.env`` file at ``path`` (``{}`` when there is none)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _env_files(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """The ``.env`` files read, first wins: the working directory's, then CONNECTOR_HOME's (as
    the environment and the first file set it)."""
    first = cwd / ENV_FILE
    layered = {**env_file_values(first), **environ}
    home = connector_home(layered) / ENV_FILE
    files = [first]
    if home.resolve() != first.resolve():
        files.append(home)
    return files


def load_env_files(
    environ: MutableMapping[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Path]:
    """Set in ``environ`` (default ``os.environ``) the values of the ``.env`` files that it does
    not set itself; return which variable came from which file."""
    environ = os.environ if environ is None else environ
    loaded: dict[str, Path] = {}
    for path in _env_files(environ, cwd or Path.cwd()):
        for name, value in env_file_values(path).items():
            if name not in environ:
                environ[name] = value
                loaded[name] = path
    return loaded


def mask(name: str, value: str) -> str:
    """``value`` with its secret parts hidden: a database URL's password, an alert URL's all but
    its scheme, any other secret wholly but its last four characters when it is long."""
    if name == "CONNECTOR_DATABASE_URL":
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", value)
    if name == "CONNECTOR_ALERT_URLS":
        urls = [u for u in re.split(r"[\s,]+", value) if u]
        return ", ".join(u.split("://", 1)[0] + "://****" if "://" in u else "****" for u in urls)
    return "****" + value[-4:] if len(value) >= 20 else "****"


def settings(
    environ: Mapping[str, str] | None = None, loaded: Mapping[str, Path] | None = None
) -> list[SettingValue]:
    """Every setting connector reads, its value and where it came from: the environment,
    a ``.env`` file (``loaded``: as :func:`load_env_files` returned), or the default; then the
    ``CONNECTOR_VAR_*`` variables, and any other CONNECTOR_/GHL_/CONNECTEAM_ variable that is set
    (a plugin's, or a misspelt name)."""
    environ = os.environ if environ is None else environ
    loaded = loaded or {}

    def one(name: str, meaning: str, default: str, secret: bool) -> SettingValue:
        value = environ.get(name)
        if value is None or value == "":
            return SettingValue(name, None, f"default: {default}", meaning, secret)
        source = f".env file {loaded[name]}" if name in loaded else "environment"
        shown = mask(name, value) if secret else value
        return SettingValue(name, shown, source, meaning, secret)

    out = [one(s.name, s.meaning, s.default, s.secret) for s in SETTINGS]
    known = {s.name for s in SETTINGS}
    for name in sorted(environ):
        if name in known or not _OURS.match(name):
            continue
        if name.startswith(PREFIXES):
            meaning = f"a variable recipes read as env.{name}"
        else:
            import difflib

            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            hint = f"did you mean {close[0]}?" if close else "a plugin's setting?"
            meaning = f"not read by connector itself; {hint}"
        out.append(one(name, meaning, "none", _looks_secret(name)))
    return out


def _looks_secret(name: str) -> bool:
    return any(w in name for w in ("TOKEN", "SECRET", "KEY", "PASSWORD"))


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings every client of the process shares (certificates as httpx reads them:
    ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``, else certifi's bundle), built once: loading the bundle
    costs tens of milliseconds, which each new ``httpx.Client`` paid again."""
    import httpx

    return httpx.create_ssl_context()
