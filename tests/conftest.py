"""What a test needs before it can run, decided in one place, and what happens when it is missing.

- ``@pytest.mark.needs_specs``, or the ``specs`` fixture (it gives the folder): the vendors'
  OpenAPI documents, found as the code finds them (:func:`connector.catalog.generate.specs_dir`:
  ``$CONNECTOR_SPECS_DIR``, else ``<repo>/../shared``).
- ``@pytest.mark.needs_modules("connector.runtime.engine", ...)``: modules that must be importable.
- the ``skip_or_fail`` fixture: ``skip_or_fail("plugins/connector-phone is missing")`` for any
  other requirement a test finds missing while it runs.

Outside CI a missing requirement skips the test with a reason that says what is missing and how to
provide it. Under CI (``CI=true`` or ``CI=1``) it fails the test instead, so CI cannot pass while a
whole area is skipped. A skip that is legitimate everywhere (the environment already has what the
test would install) stays a plain ``pytest.skip``. Every run prints why each test skipped.

The suite runs in parallel (pytest-xdist; ``-n auto --dist loadgroup`` in pyproject.toml), so a
test keeps what it writes to itself: ``tmp_path``, a free port, a ``CONNECTOR_HOME`` of its own, a
PostgreSQL database of its own (:func:`postgres_database`). A module whose tests share a fixture
wider than one test (``scope="module"``: a seeded sandbox, a browser, a fork server) runs on one
worker, so that fixture is built once (:func:`shared_fixture`); the :data:`SLOWEST` modules are
handed out first, then the :data:`EARLY` ones.

``-n auto`` starts :func:`workers` processes; ``-n0`` (or ``-s``, ``--pdb``) runs in one process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from connector.catalog.generate import default_connecteam_file, default_ghl_dir, specs_dir
from tests.sqlite_trace import Trace

CI_VALUES = ("true", "1")

# The slowest modules (tens of seconds to minutes: hundreds of runs, several `connector` processes),
# longest first: they are handed to the workers first, so that none is left to run alone at the
# end while the other workers sit idle (the rest keep their order).
SLOWEST = (
    "tests/sync/test_sync_served_converges.py",
    "tests/sync/test_sync_initial.py",
    "tests/serve/test_scale_locations.py",
    "tests/runtime/test_chaos.py",
    "tests/runtime/test_crash.py",
    "tests/serve/test_serve_chaos.py",
    "tests/fuzz/test_fuzz_recipes.py",
    "tests/sync/test_sync_reconcile.py",
    "tests/serve/test_scale_out.py",
    "tests/runtime/test_concurrent.py",
    "tests/sync/test_sync_converges.py",
    "tests/sync/test_sync_drift.py",
    "tests/sync/test_sync_scale_out.py",
)
# Modules whose tests share one worker (a browser, a served plugin) for tens of seconds: handed
# out right after SLOWEST, so that none is still running alone at the end, as they did when they
# came last in the collection's order (not marked slow: they are quick enough to run while working)
EARLY = (
    "tests/ui/test_ui_browser.py",
    "tests/ui/test_ui_recipes_browser.py",
    "plugins/connector-acme/tests/test_served.py",
    "tests/ui/test_ui_incidents.py",
)
# Fixtures wider than a test that cost nothing to build twice (the registry is cached per process).
CHEAP_SHARED = frozenset({"registry", "skip_or_fail"})
# Modules whose shared fixtures are cheap (a folder, a fresh sandbox) and whose tests are long:
# their tests spread over the workers, each worker building the fixtures once (test_chaos.py's
# six flows, about a minute each, would otherwise run one after another on one worker).
SPREAD = frozenset({"tests/fuzz/test_fuzz_recipes.py", "tests/runtime/test_chaos.py"})


def in_ci() -> bool:
    """True when the ``CI`` environment variable is ``true`` or ``1``."""
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def skip_or_fail_now(reason: str) -> NoReturn:
    """Skip the current test because ``reason`` (what is missing); under CI, fail it instead."""
    if in_ci():
        pytest.fail(
            f"{reason} [CI is set, so a missing requirement fails instead of skipping]",
            pytrace=False,
        )
    pytest.skip(reason)


def missing_specs() -> str | None:
    """Why the vendors' OpenAPI documents cannot be used, or None when they are all there."""
    root = specs_dir()
    wanted = [
        (default_ghl_dir(), True),
        (root / "ghl-openapi" / "common" / "common-schemas.json", False),
        (default_ghl_dir() / "v3" / "contacts-v3.json", False),
        (default_connecteam_file(), False),
    ]
    missing: list[Path] = []
    for path, is_dir in wanted:
        if path.is_dir() if is_dir else path.is_file():
            continue
        # name the outermost missing folder below the specs folder (…/ghl-openapi, not …/apps)
        shown = path
        for parent in path.parents:
            if parent == root or parent.exists() or not parent.is_relative_to(root):
                break
            shown = parent
        if shown not in missing:
            missing.append(shown)
    if not missing:
        return None
    where = ", ".join(str(p) for p in missing)
    return (
        f"the vendor OpenAPI documents are not at {where} (put ghl-openapi/ and "
        "connecteam-openapi/ in ../shared beside the checkout, or set CONNECTOR_SPECS_DIR)"
    )


def missing_modules(names: tuple[str, ...]) -> str | None:
    """Why some of the modules ``names`` cannot be imported, or None when all can."""
    absent = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            absent.append(name)
    if not absent:
        return None
    return f"needs {', '.join(absent)}, which cannot be imported"


@pytest.hookimpl(tryfirst=True)  # before the terminal reporter reads the option
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_specs: the test reads the vendors' OpenAPI documents (../shared or "
        "$CONNECTOR_SPECS_DIR); skipped without them, failed without them under CI",
    )
    config.addinivalue_line(
        "markers",
        "needs_modules(*names): the test needs these modules importable; skipped without "
        "them, failed without them under CI",
    )
    config.addinivalue_line(
        "markers", "xdist_group(name): run on one pytest-xdist worker with the group's others"
    )
    config.addinivalue_line(
        "markers",
        "slow: a module of SLOWEST in tests/conftest.py (given by conftest, not by hand); "
        '-m "not slow" leaves them out while working, CI runs them',
    )
    # print why each test skipped (as -rs does), whatever -r the run was given
    chars: str = config.option.reportchars or ""
    if not any(c in chars for c in "sSaAN"):
        config.option.reportchars = chars + "s"


def unmet_requirement(item: pytest.Item) -> str | None:
    """What the item's ``needs_*`` markers ask for and is missing, or None."""
    if item.get_closest_marker("needs_specs") is not None:
        reason = missing_specs()
        if reason is not None:
            return reason
    for marker in item.iter_markers("needs_modules"):
        reason = missing_modules(tuple(marker.args))
        if reason is not None:
            return reason
    return None


def workers() -> int:
    """How many processes ``-n auto`` starts: ``$PYTEST_XDIST_AUTO_NUM_WORKERS``, else three per
    CPU (at most 8): most tests spend their time waiting on a socket, a subprocess or a poll
    (on 2 cores, two per CPU kept them busy 152 % of the time and the suite took 382 s; three
    per CPU, 167 % and 365 s)."""
    wanted = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if wanted.isdigit():
        return int(wanted)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(3 * (cpus or 1), 8)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    # -s shows a test's output as it runs, which only one process can do
    if config.getoption("capture", "fd") == "no":
        return 0
    return workers()


def rewritten_missing(config: pytest.Config) -> bool:
    """Whether some test module or conftest.py the run collects has no up-to-date pyc of
    pytest's assertion rewriting (which pytest writes to ``__pycache__`` beside the source)."""
    try:
        from _pytest.assertion.rewrite import PYC_TAIL  # where pytest keeps them (9.x)
    except ImportError:  # another pytest: collect once anyway
        return True
    where = config.invocation_params.dir
    for arg in config.args:
        path = where / arg.split("::", 1)[0]
        if path.is_file():
            sources = [path]
        elif path.is_dir():
            sources = [*path.rglob("test_*.py"), *path.rglob("conftest.py")]
        else:
            continue
        for source in sources:
            pyc = source.parent / "__pycache__" / (source.name[:-3] + PYC_TAIL)
            try:
                if pyc.stat().st_mtime < source.stat().st_mtime:
                    return True
            except FileNotFoundError:
                return True
    return False


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers (its hook is trylast)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile what the run imports once, before the workers and child processes start.

    - The package, the plugins and the tests' helper modules: with PYTHONDONTWRITEBYTECODE set
      (or a read-only cache), every ``connector`` process a test starts compiled each module it
      imports again (0.4 s of CPU for the whole package; about 100 such processes a run).
    - The test modules' assertion rewriting: every xdist worker collects every module, and the
      rewriting costs about 3.4 s of CPU a collection; on a fresh clone, where the workers start
      together, or with PYTHONDONTWRITEBYTECODE set, each rewrote them all (the six workers' start
      took about 23 s on 2 cores). One collection in a subprocess that may write bytecode leaves
      pytest's cached pyc files, which the workers read whatever PYTHONDONTWRITEBYTECODE says.

    The files go to ``__pycache__`` folders, which git ignores; nothing is done when they are up
    to date, and if writing them fails the run goes on as before."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    with contextlib.suppress(OSError):  # a read-only checkout: each compiles, as before
        compile_sources(config.rootpath)
    if config.pluginmanager.has_plugin("dsession") and rewritten_missing(config):
        rewrite_test_modules(config)


def compile_sources(root: Path) -> None:
    """Byte-compile the package, the plugins and the tests' helper modules where out of date."""
    import compileall
    import re

    import connector

    tests = re.compile(r"[/\\](test_[^/\\]*|conftest)\.py$")  # pytest rewrites those
    folders = [Path(connector.__file__).parent, root / "plugins", root / "tests"]
    for folder in folders:
        if folder.is_dir():
            compileall.compile_dir(folder, quiet=2, rx=tests)


def rewrite_test_modules(config: pytest.Config) -> None:
    """Collect once in a subprocess allowed to write bytecode: pytest caches each test module
    with its asserts rewritten (``__pycache__/*-pytest-*.pyc``)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "pytest", "--collect-only", "-qq", "-n0"]
    command += ["-p", "no:cacheprovider", *config.args]
    subprocess.run(
        command,
        cwd=config.invocation_params.dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


def shared_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture wider than one test, of the project's own (pytest's and
    plugins' have no ``baseid``), that is worth building once."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name, defs in info.name2fixturedefs.items():
        if name in CHEAP_SHARED or not defs or not defs[-1].baseid:
            continue
        if defs[-1].scope != "function":
            return True
    return False


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # outside CI a plain skip mark, so the report shows the test's own file and line
    if not in_ci():
        for item in items:
            reason = unmet_requirement(item)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
    rank = {module: n for n, module in enumerate(SLOWEST + EARLY)}
    slowest = frozenset(SLOWEST)
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module not in SPREAD and shared_fixture(item):
            item.add_marker(pytest.mark.xdist_group(module))
            if getattr(config.option, "loadgroup", False):  # an xdist worker, --dist loadgroup
                _name_group(item, module)
        if module in slowest:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def _name_group(item: pytest.Item, group: str) -> None:
    """Put ``@group`` at the end of the test's id, where ``--dist loadgroup`` reads it: the
    controller hands out tests by their ids, and a module's tests without it go to every worker,
    each building the module's shared fixtures again (test_crash.py ran all its points on each).
    pytest-xdist 3.8 does this by assigning ``item._nodeid``, which pytest 9.2 no longer reads
    (the id is ``item._id``); with an older pytest xdist's own assignment works and this does
    nothing."""
    if not hasattr(item, "_id") or hasattr(item, "_nodeid"):
        return
    from _pytest.nodeid import coerce_node_id  # pytest >= 9.2 only

    item._id = coerce_node_id(f"{item.nodeid}@{group}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = unmet_requirement(item)
    if reason is not None:
        skip_or_fail_now(reason)


@pytest.fixture
def specs() -> Path:
    """The folder of the vendors' OpenAPI documents (skips, or fails under CI, without them)."""
    reason = missing_specs()
    if reason is not None:
        skip_or_fail_now(reason)
    return specs_dir()


@pytest.fixture()
def trace() -> Iterator[Trace]:
    """Every statement SQLite runs on the connections opened during the test
    (:class:`tests.sqlite_trace.Trace`), counted while ``trace.on``."""
    import sqlalchemy as sa

    found = Trace()
    sa.event.listen(sa.pool.Pool, "connect", found)
    yield found
    sa.event.remove(sa.pool.Pool, "connect", found)


@pytest.fixture(scope="session")
def skip_or_fail() -> Callable[[str], NoReturn]:
    """``skip_or_fail(reason)``: skip the test because ``reason``; under CI, fail it instead."""
    return skip_or_fail_now


POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each of the two the runtime supports: a SQLite file, and an empty
    PostgreSQL database (see :func:`postgres_database`)."""
    if request.param == "postgresql":
        make: Callable[[], str] = request.getfixturevalue("postgres_database")
        yield make().replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"


@pytest.fixture()
def postgres_database() -> Iterator[Callable[[], str]]:
    """Make a fresh, empty PostgreSQL database and give its URL; the server is the one
    ``CONNECTOR_TEST_POSTGRES_URL`` names (``.ci/run`` starts one with ``.ci/postgres``). Without
    it the test skips saying so (fails under CI)."""
    import uuid

    import sqlalchemy as sa

    server = os.environ.get(POSTGRES_ENV)
    if not server:
        skip_or_fail_now(
            f'no PostgreSQL: set {POSTGRES_ENV} (eval "$(.ci/postgres start)" starts a throwaway one)'
        )
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,  # a test may restart the server (tests/serve/test_pg_restart.py)
    )
    made: list[str] = []

    def make() -> str:
        name = f"connector_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return server.rsplit("/", 1)[0] + "/" + name

    yield make
    from connector.persistence.database import close_all

    close_all()
    with admin.connect() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
