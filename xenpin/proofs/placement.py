"""The seed's claims for every buffer the memblock search may return, not only where the release's top-down rule
puts it (`P@any`: each call's `pgt_buf_start` free within `find_early_table_space`'s range, minus the
reservations in force; `xenpin/symbolic/placement.py`).

Found: 3.1, 2.6.37 and bare metal hold wherever the buffer lands. 2.6.39, its inline twin and 3.0 hold everywhere
but one place: a buffer that starts right after Xen's boot tables, where d8aa5ec3's ioremap clause
(`pfn != pgt_buf_end - 1`) maps the last bootstrap L1's fixmap alias RW before the first allocation and Xen
refuses it (`no_rw_alias@any`, replayed at 64 MiB). 2.6.39-rc6's tail stays read-only at every place with a
spare page the call maps itself (`spare_writable@any`), as under its rule.
Run: `python proofs/placement.py`.
"""

from xenpin.symbolic.theorems import Theorem, run

CLAIMS = ["no_rw_alias", "spare_writable", "spare_freed", "live_reserved", "buffer_fits", "alias_writable"]
EVERYWHERE = ["3.1", "2.6.37", "2.6.39-native", "3.1-native"]
BUT_AFTER_XENS_TABLES = ["2.6.39", "2.6.39-inline", "3.0"]
BROKEN = {"no_rw_alias", "spare_writable"}  # 2.6.39-rc6


def _expect(variant: str, prop: str) -> str:
    if variant in BUT_AFTER_XENS_TABLES and prop == "no_rw_alias":
        return "counterexample"
    if variant == "2.6.39-rc6" and prop in BROKEN:
        return "counterexample"
    return "proved"


THEOREMS = [
    Theorem(f"../models/kernels/{v}.toml", f"{p}@any", _expect(v, p))
    for v in [*BUT_AFTER_XENS_TABLES, *EVERYWHERE, "2.6.39-rc6"]
    for p in CLAIMS
]

if __name__ == "__main__":
    raise SystemExit(run(THEOREMS))
