"""Xen's PV pagetable rules as Z3 terms: a symbolic `page_info` array and guest tables, each hypercall of
`xenpin.xen.hypervisor` as a function of them, the invariants of `xenpin.xen.invariants` as predicates, and one
obligation per (operation, invariant, rule set) -- the method of Hyperkernel (Nelson et al., SOSP'17) applied to
Xen's `mm.c`.

- `state`: the bounded symbolic state (`Bound`: guest frames, the slots of each table) in `frame.py`'s layout.
- `step`: the operations, mirroring `hypervisor.py` function by function (validation, devalidation, fast paths).
- `invariants`: the named predicates and the well-formedness facts that make them inductive.
- `obligations`: the matrix, its non-vacuity and bound checks, and the verdicts.
- `witness`: a `sat` answer minimised, rebuilt from a fresh guest as a scenario file, and replayed.
"""
