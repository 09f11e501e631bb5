"""The two 2011 failures the seed describes, as counterexamples the solver must find and the boot walk replay.

- 2.6.38 (4b239f458 + the `< pgt_buf_end` rule): a page of [end, top) gets an RW PTE in a pinned L1 and is then
  allocated as a table: PIN_L1_TABLE fails ("Bad type (saw 7400000000000001 != exp 1000000000000000)").
- 2.6.39-rc (RO up to top, no hook): [end, top) goes back to the allocator still RO: the first write faults.
Run: `python proofs/history_2011.py`.
"""

from xenpin.symbolic.theorems import Theorem, run

THEOREMS = [
    Theorem("models/kernels/2.6.38.toml", "no_rw_alias", "counterexample"),
    Theorem("models/kernels/2.6.38.toml", "spare_writable", "proved"),
    Theorem("models/kernels/2.6.39-rc.toml", "spare_writable", "counterexample"),
    Theorem("models/kernels/2.6.39-rc.toml", "no_rw_alias", "proved"),
    Theorem("models/kernels/2.6.37.toml", "no_rw_alias", "proved"),
]

if __name__ == "__main__":
    raise SystemExit(run(THEOREMS))
