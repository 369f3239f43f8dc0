"""How much memory one fuzz case takes at its peak, measured cheaply enough to do for every case.

On Linux the gauge is the kernel's own high-water mark of the process's resident memory
(``VmHWM``): before the case, the C allocator hands its free memory back to the system
(``malloc_trim``), so that memory the case reuses counts as well as memory it maps anew, and the
mark is reset to the memory resident now (``/proc/self/clear_refs``, ``5``); after it, the peak is
the mark less what was resident at the start (to within a few hundred KiB: the kernel adds up
each thread's count of pages every 64 page faults). That costs two system calls and two small reads per
case, where tracing every allocation (:mod:`tracemalloc`) made each case two to three times as
slow. It sees more than tracemalloc did: what C code (the YAML parser, the regex engine, sqlite)
allocates too, and every thread of the process.

Where that is not available (not Linux, or a kernel that refuses the reset), the gauge is
:mod:`tracemalloc`, started for the case only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["GAUGE", "measured_peak"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_bytes(key: bytes) -> int:
    """A ``kB`` line of /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    with open(_STATUS, "rb") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise OSError(f"{_STATUS} has no {key.decode()} line")


def _malloc_trim() -> Callable[[], object]:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        trim = None
    if trim is None:
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def _resident_mark_works() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
        _status_bytes(b"VmHWM:")
        _status_bytes(b"VmRSS:")
    except OSError:
        return False
    return True


_TRIM = _malloc_trim()
GAUGE = "resident" if _resident_mark_works() else "tracemalloc"


@contextmanager
def _resident_peak() -> Iterator[list[int]]:
    peak = [0]
    _TRIM()
    with open(_CLEAR_REFS, "w") as fh:
        fh.write("5")  # VmHWM := VmRSS
    start = _status_bytes(b"VmRSS:")
    try:
        yield peak
    finally:
        peak[0] = _status_bytes(b"VmHWM:") - start


@contextmanager
def _traced_peak() -> Iterator[list[int]]:
    peak = [0]
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1] - before
        if not tracing:
            tracemalloc.stop()


def measured_peak() -> AbstractContextManager[list[int]]:
    """``with measured_peak() as peak:`` ... ``peak[0]`` is then the bytes the block took at its
    peak, beyond what the process held when it began."""
    return _resident_peak() if GAUGE == "resident" else _traced_peak()
