"""Bodies from outside are read within bounds; a delivery seen before is known as such."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.apps.events import Rejected
from connector.persistence.database import close_all, open_database
from connector.persistence.deliveries import Deliveries
from connector.serve.bodies import MAX_DEPTH, depth, read_json


def test_a_json_object_is_read() -> None:
    assert read_json(b'{"type": "ContactCreate", "n": [1, {"a": "]]]"}]}') == {
        "type": "ContactCreate",
        "n": [1, {"a": "]]]"}],
    }


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"{" + b" " * (1024 * 1024) + b"}", 413, "at most 1048576"),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b'{"a": ', 400, "not JSON (line 1, column 7)"),
        (b"[1, 2]", 400, "must be a JSON object, not list"),
        (b'"text"', 400, "not str"),
        (b"", 400, "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nests 100000 levels deep"),
        (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), 400, "at most 32"),
    ],
)
def test_what_is_not_a_bounded_json_object_is_refused_with_its_status(
    raw: bytes, status: int, words: str
) -> None:
    with pytest.raises(Rejected, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_json(raw)
    assert caught.value.status == status


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"a": "[[[[{{{{" * 100, "b": 'quote \\" [[[['})
    assert depth(text) == 1
    assert read_json(text.encode())["b"] == 'quote \\" [[[['


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\ '),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


def _nesting(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_depth_is_the_nesting_of_the_value(value: object) -> None:
    assert depth(json.dumps(value)) == _nesting(value)


def test_a_delivery_is_new_once_across_threads_and_reopenings(tmp_path: Path) -> None:
    env = {"CONNECTOR_HOME": str(tmp_path)}
    deliveries = Deliveries(open_database(env).engine)
    results: list[bool] = []
    lock = threading.Lock()

    def deliver() -> None:
        seen = deliveries.first("ghl", "wh-1")
        with lock:
            results.append(seen)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert deliveries.first("connecteam", "wh-1") is True  # another source, another id space
    long_id = "x" * 500
    assert deliveries.first("ghl", long_id) is True
    assert deliveries.first("ghl", long_id) is False
    assert deliveries.first("ghl", long_id[:-1] + "y") is True  # not cut to a shared prefix
    close_all()
    again = Deliveries(open_database(env).engine)  # a restart
    assert again.first("ghl", "wh-1") is False
    close_all()


def test_the_first_open_creates_every_table(tmp_path: Path) -> None:
    """Whichever command opens a new database first, all of our tables are made (a process that
    imported only connector.persistence.database, as `connector links` nearly does)."""
    code = (
        "import sys; from connector.persistence.database import open_database; import sqlalchemy as sa;"
        "e = open_database({'CONNECTOR_HOME': sys.argv[1]}).engine;"
        "print(' '.join(sorted(sa.inspect(e).get_table_names())))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    names = set(done.stdout.split())
    assert {"runs", "run_steps", "links", "effects", "rate_requests", "deliveries"} <= names
