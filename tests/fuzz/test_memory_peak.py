"""The fuzz cases' memory gauge (memory_peak.py) sees what the bound is about: a case that takes
more than the bound fails, whether it maps new memory or reuses what an earlier case freed."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from memory_peak import measured_peak
from test_fuzz_recipes import MEMORY_BOUND, bounded

MiB = 2**20


def _small_objects(total: int) -> list[str]:
    """About ``total`` bytes in strings of 100 characters: the Python allocator's small blocks."""
    return [f"{i:0100d}" for i in range(total // 150)]


# the kernel counts resident pages per thread and adds them up every 64 page faults, so its mark
# may trail by a few hundred KiB
SLACK = 1 * MiB


def test_a_block_that_takes_8_mib_is_measured_at_8_mib() -> None:
    with measured_peak() as peak:
        block = b"x" * (8 * MiB)
        del block
    assert 8 * MiB - SLACK <= peak[0] < 16 * MiB


def test_small_objects_are_measured_too() -> None:
    with measured_peak() as peak:
        held = _small_objects(32 * MiB)
        del held
    assert 24 * MiB <= peak[0] < 64 * MiB


def test_a_case_that_takes_more_than_the_bound_fails() -> None:
    with pytest.raises(AssertionError, match=r"the case took \d+ MiB at its peak"), bounded():
        block = b"x" * (MEMORY_BOUND + 16 * MiB)
        del block


def _blocks(total: int) -> list[bytes]:
    """About ``total`` bytes in blocks of 100 kB: the C allocator's heap, below its mmap size."""
    return [b"x" * 100_000 for _ in range(total // 100_000)]


@pytest.mark.parametrize("make", [_small_objects, _blocks], ids=["small objects", "100 kB blocks"])
def test_memory_an_earlier_case_freed_counts_when_a_case_takes_it_again(
    make: Callable[[int], list[Any]],
) -> None:
    held = make(MEMORY_BOUND + 32 * MiB)
    del held
    gc.collect()
    with pytest.raises(AssertionError, match=r"the case took \d+ MiB at its peak"), bounded():
        held = make(MEMORY_BOUND + 32 * MiB)
        del held
