"""`xenpin.xen.storage`'s C-level helpers against the plain Python they stand for."""

from __future__ import annotations

from array import array

from hypothesis import given
from hypothesis import strategies as st

from xenpin.xen.storage import ENTRIES_PER_TABLE, progression

PAGE = 1 << 12


@given(
    st.integers(0, 2**40 - 1),  # the 40-bit frame field
    st.sampled_from([PAGE, -PAGE, 1, -1, 8, -8 * PAGE]),
    st.integers(1, ENTRIES_PER_TABLE),
    st.integers(0, 0xFFF),
)
def test_progression_is_the_range_it_names(frame: int, step: int, n: int, flags: int) -> None:
    first = frame << 12 | flags
    want = [first + k * step for k in range(n)]
    if min(want) < 0:  # a descending run past frame 0: no such array
        try:
            progression(first, step, n)
        except OverflowError:
            return
        raise AssertionError("a lane below 0 was accepted")
    assert progression(first, step, n) == array("Q", want)


def test_a_descending_run_down_to_frame_0() -> None:
    assert list(progression(511 * PAGE | 0x67, -PAGE, 512)) == [k * PAGE | 0x67 for k in range(511, -1, -1)]
