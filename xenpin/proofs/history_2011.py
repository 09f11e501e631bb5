"""The 2011 history of the Xen PV early page tables, release by release, as the solver must answer it.

- 2.6.37, 2.6.38: the buffer low, below max_pfn_mapped, already mapped: every property holds.
- 2.6.39-rc1 .. rc5 (4b239f458 + the `< pgt_buf_end` rule + d8aa5ec3's ioremap clause): a page of [end, top)
  gets an RW PTE in a pinned L1 whose PMD is not linked yet, and is then allocated as a table: PIN_L1_TABLE
  fails ("Bad type (saw 7400000000000001 != exp 1000000000000000)", a38647837a41's log).
- 2.6.39-rc6, rc7 (RO up to top; a38647837a41's deferred mark_rw_past_pgt): right after each call's reserve
  step [end, top) is still RO; a top-down allocation in between faults (92bdaef7b2c5's log).
- 2.6.39 (the seed's hook), 3.0 (high, the hook essential), 3.1 (low again): every property holds.
- The bisect states: 4b239f458 before d8aa5ec3 (the fixmap alias of a live table RW), a38647837a41 before
  b9269dc7 (the deferred restore with the `< end` rule: the pin fails) and 92bdaef7b2c5 (the workaround reverted,
  the hook not yet in: nothing restores RW).
Run: `python proofs/history_2011.py`.
"""

from xenpin.symbolic.theorems import Theorem, run

THEOREMS = [
    Theorem("../models/kernels/2.6.37.toml", "no_rw_alias", "proved"),
    Theorem("../models/kernels/2.6.38.toml", "no_rw_alias", "proved"),
    Theorem("../models/kernels/2.6.38.toml", "spare_writable", "proved"),
    Theorem("../models/kernels/2.6.39-rc1.toml", "no_rw_alias", "counterexample"),
    Theorem("../models/kernels/2.6.39-rc1.toml", "spare_writable", "proved"),
    Theorem("../models/kernels/2.6.39-rc6.toml", "spare_writable", "counterexample"),
    Theorem("../models/kernels/2.6.39-rc6.toml", "no_rw_alias", "proved"),
    Theorem("../models/kernels/2.6.39.toml", "spare_writable", "proved"),
    Theorem("../models/kernels/3.0.toml", "spare_writable", "proved"),
    Theorem("../models/kernels/3.1.toml", "spare_writable", "proved"),
    Theorem("../models/kernels/bisect-4b239f458.toml", "no_rw_alias", "counterexample"),
    Theorem("../models/kernels/bisect-a38647837a41.toml", "no_rw_alias", "counterexample"),
    Theorem("../models/kernels/bisect-92bdaef7b2c5.toml", "spare_writable", "counterexample"),
]

if __name__ == "__main__":
    raise SystemExit(run(THEOREMS))
