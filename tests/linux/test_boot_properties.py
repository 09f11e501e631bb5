"""Properties of every boot, over MiB-granular memory sizes (`xl`'s `memory=`): each boot succeeds or fails with
a violated property its variant expects; a successful boot leaves Xen's invariants intact; a hypercall Xen
rejects changes nothing."""

from __future__ import annotations

import pytest
from bootcache import NAMES, variant
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig
from xenpin.linux.variant import PROPERTIES
from xenpin.xen.hypervisor import Hypervisor
from xenpin.xen.invariants import check_invariants

M = 1 << 20


def _boot(name: str, mib: int, on_step=None):
    v = variant(name)
    return boot(v, BootConfig(role="domU" if v.xen else "native", mem_bytes=mib * M), on_step=on_step)


@settings(max_examples=30)
@given(name=st.sampled_from(NAMES), mib=st.integers(64, 1280))
def test_every_boot_ends_as_its_variant_expects(name: str, mib: int) -> None:
    r = _boot(name, mib)
    expect = variant(name).expect
    violated = [p for p in PROPERTIES if r.properties[p] is False]
    assert all(expect[p] == "counterexample" for p in violated), (violated, r.failure)
    if r.failure is not None:
        assert r.failure.violates in violated  # the failure is the violation of a property
    else:
        assert r.outcome == "ok" and all(r.properties[p] is not None for p in PROPERTIES)
    assert r.mismatches() == []
    for b in r.buffers:  # the buffer never passes its top (buffer_fits), pages are pages of the guest
        assert b.pgt_buf_start <= b.pgt_buf_end <= b.pgt_buf_top


@settings(max_examples=8)
@given(name=st.sampled_from([n for n in NAMES if variant(n).xen]), mib=st.integers(64, 400))
def test_xen_invariants_hold_after_a_successful_boot(name: str, mib: int) -> None:
    guests = []
    r = _boot(name, mib, on_step=lambda g: guests or guests.append(g))
    if r.outcome != "ok":
        return
    hv = guests[0].hv
    assert check_invariants(hv) == []
    assert hv.live_level(hv.baseptr) == 4


def _failing_call(name: str, mib: int, monkeypatch: pytest.MonkeyPatch):
    """Boot twice: find the hypercall Xen rejects, then snapshot the validator around exactly that call."""
    methods = ("pin", "mmu_update", "update_va_mapping", "write")
    seen = {"n": 0, "failed": None, "check": None}

    def wrap(method: str):
        real = getattr(Hypervisor, method)

        def call(self, *args):
            n = seen["n"]
            seen["n"] += 1
            before = self.snapshot() if n == seen["check"] else None
            result = real(self, *args)
            if not result.ok and seen["failed"] is None:
                seen["failed"] = n
            if before is not None:
                seen["result"], seen["same"] = result, self.snapshot() == before
                seen["invariants"] = check_invariants(self)
            return result

        return call

    for method in methods:
        monkeypatch.setattr(Hypervisor, method, wrap(method))
    first = _boot(name, mib)
    assert seen["failed"] is not None
    seen.update(n=0, check=seen["failed"])
    second = _boot(name, mib)
    assert second.failure == first.failure
    return seen


@pytest.mark.parametrize(
    ("name", "mib", "errno"),
    [("2.6.39-rc1", 1040, "EINVAL"), ("bisect-4b239f458", 64, "EFAULT")],  # a pin; a ptwr-emulated store
)
def test_a_rejected_hypercall_changes_nothing(
    name: str, mib: int, errno: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _failing_call(name, mib, monkeypatch)
    assert not seen["result"].ok and seen["result"].errno == errno
    assert seen["same"], "the rejected call left the validator's state changed"
    assert seen["invariants"] == []
