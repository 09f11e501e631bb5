"""The seed's claims (279b706, "x86,xen: introduce x86_init.mapping.pagetable_reserve"), for every machine of the
domain: every memory size, kernel image, ramdisk and E820 slack.

With the hook, after pagetable_reserve no page in [pgt_buf_end, pgt_buf_top) stays read-only, the unused tail is
given back, the live tables stay reserved, and no live table ever keeps an RW alias -- in the regime the hook was
written for (2.6.39, high placement), as released in 3.0 (still high) and 3.1 (low again), inlined behind
`if (xen_pv_domain())` (the alternative the seed rejects), and on bare metal (native_pagetable_reserve).
Run: `python proofs/pagetable_reserve.py`.
"""

from xenpin.symbolic.theorems import Theorem, run

FIXED = ["2.6.39", "2.6.39-inline", "3.0", "3.1", "2.6.39-native", "3.1-native"]
CLAIMS = ["no_rw_alias", "spare_writable", "spare_freed", "live_reserved", "buffer_fits", "alias_writable"]

THEOREMS = [Theorem(f"../models/kernels/{v}.toml", p, "proved") for v in FIXED for p in CLAIMS]

if __name__ == "__main__":
    raise SystemExit(run(THEOREMS))
