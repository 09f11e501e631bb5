"""The safety invariants of Xen's PV pagetable design, checked over the mapping graph at any moment.

From the mm.c header comment and the XSAs that broke them (see the reference notes):
- `exclusivity`: a validated table or descriptor frame has no live RW L1 mapping, and a frame with a type
  count has a type every holder agrees with;
- `type_count`, `general_count`: each frame's counts equal a recount of their holders from the graph (live
  entries, pin, base pointer, GDT, the allocation ref); and every time Xen itself dropped a reference nobody
  held (recorded by the model in `Hypervisor.damage`: Xen 4.1's `put_superpage`, XSA-148) is reported too;
- `closure`: every live entry passes its level's checks under the rule set (`get_page_from_lNe`), and under
  modern rules no table both holds linear entries and is the target of one (XSA-240's `linear_pt_count`);
- `global_safety`: no hardware translation path from a live root (base pointer or pinned L4) ends in a
  validated table or descriptor frame with the leaf's RW bit set — 2 MiB PSE leaves (XSA-148) and linear
  entries (XSA-182) included.
An edge is live when its table is validated (and, in an L4, the slot is the guest's). Nodes with owner None are
mfns with no page (named by the bytes of some entry); they have no counts to check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from xenpin.xen.flags import ENTRIES_PER_TABLE, PSE, RW
from xenpin.xen.frame import LEVEL_TYPE, Frame, PGT_seg_desc_page, PGT_writable_page
from xenpin.xen.hypervisor import XEN_L4_SLOTS, Hypervisor

INVARIANTS = ("exclusivity", "type_count", "general_count", "closure", "global_safety")


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.message}"


def live_entries(hv: Hypervisor) -> Iterator[tuple[int, int, int, int, int]]:
    """Every entry that holds references: `(level, table mfn, slot, target mfn, flags)`."""
    for mfn in hv.table_frames():  # the frames that have entries, in node order; their entries by slot
        level = hv.live_level(mfn)
        if not level:
            continue
        for slot, target, flags in hv.present_entries(mfn):
            if level == 4 and slot in XEN_L4_SLOTS:
                continue
            yield level, mfn, slot, target, flags


def _is_protected(page: Frame) -> bool:
    """A frame the guest must never be able to write: a validated table or a descriptor page in use."""
    return bool(page.level) or (page.type_count > 0 and page.type == PGT_seg_desc_page)


def check_invariants(hv: Hypervisor) -> list[Violation]:
    """All violations of all invariants, in a stable order (empty when the state is safe)."""
    node = hv.graph._node
    out: list[Violation] = []
    type_refs: Counter[int] = Counter()
    general_refs: Counter[int] = Counter()
    wanted_types: dict[int, set[int]] = {}

    for level, table, slot, target, flags in live_entries(hv):
        where = f"L{level} {table:#x}[{slot}] -> {target:#x}"
        page = node.get(target)
        if page is None or page.owner != hv.domain:
            out.append(Violation("closure", f"{where}: frame not owned by d{hv.domain}"))
            continue
        bad = flags & hv.rules.disallow_mask(level)
        if bad:
            out.append(Violation("closure", f"{where}: flags {bad:#x} not allowed at L{level}"))
        elif level == 2 and flags & PSE:
            out.append(Violation("closure", f"{where}: 2 MiB superpage without allowsuperpage"))
        if level == 1:
            general_refs[target] += 1
            if flags & RW:
                type_refs[target] += 1
                wanted_types.setdefault(target, set()).add(PGT_writable_page)
                if _is_protected(page):
                    out.append(
                        Violation("exclusivity", f"{where}: RW mapping of a live {page.type_name} frame")
                    )
            continue
        if target == table:
            if flags & RW:
                out.append(Violation("closure", f"{where}: self-linear entry with RW"))
            continue
        general_refs[target] += 1
        type_refs[target] += 1
        below, same = LEVEL_TYPE[level - 1], LEVEL_TYPE[level]
        if page.type == same and page.validated:
            if flags & RW:
                out.append(Violation("closure", f"{where}: linear entry with RW"))
            wanted_types.setdefault(target, set()).add(same)
        else:
            wanted_types.setdefault(target, set()).add(below)
            if page.type != below or not page.validated:
                out.append(
                    Violation("closure", f"{where}: target is {page.type_name}, not a validated l{level - 1}")
                )

    if hv.rules.linear_pt_exclusive:
        for mfn, page in node.items():
            if page.level and hv.linear_entries(mfn) and hv.linear_uses(mfn):
                out.append(
                    Violation(
                        "closure",
                        f"l{page.level} frame {mfn:#x} has linear entries and is used as a linear table"
                        " (XSA-240 forbids both)",
                    )
                )

    for holder in [m for m in node if node[m].pinned] + [m for m in (hv.baseptr, hv.gdt) if m is not None]:
        general_refs[holder] += 1
        type_refs[holder] += 1

    for mfn, page in node.items():
        if page.owner is None:
            continue  # no page: nothing is counted
        if page.type_count != type_refs[mfn]:
            out.append(
                Violation(
                    "type_count", f"frame {mfn:#x}: type count {page.type_count}, holders {type_refs[mfn]}"
                )
            )
        expected = general_refs[mfn] + 1  # PGC_allocated
        if page.count != expected:
            out.append(Violation("general_count", f"frame {mfn:#x}: count {page.count}, holders {expected}"))
        wanted = wanted_types.get(mfn, set())
        if page.type_count and len(wanted - {page.type}) > 0:
            names = ", ".join(sorted(str(w >> 60) for w in wanted))
            out.append(
                Violation("exclusivity", f"frame {mfn:#x} is {page.type_name} but holders want types {names}")
            )
        if page.type_count and not page.validated:
            out.append(
                Violation(
                    "exclusivity", f"frame {mfn:#x} has type count {page.type_count} but is not validated"
                )
            )

    out.extend(Violation(invariant, message) for invariant, message in hv.damage)
    out.extend(_global_safety(hv))
    return out


def live_roots(hv: Hypervisor) -> list[int]:
    """The base pointer and every pinned L4: any of them may be the root of a translation."""
    node = hv.graph._node
    roots = {m for m, page in node.items() if page.pinned and page.level == 4}
    if hv.baseptr is not None:
        roots.add(hv.baseptr)
    return sorted(roots)


def writable_leaves(hv: Hypervisor, roots: list[int]) -> Iterator[tuple[tuple[int, ...], int]]:
    """Hardware walk from `roots`: every frame writable through some path, with its (table, slot) pairs.

    Walks the bytes as the MMU would, whatever Xen believes about the tables on the way: an L2 entry with PSE
    maps 512 frames, and a linear entry makes a table be read as the next level down.
    """
    node, succ = hv.graph._node, hv.graph._succ
    seen: set[tuple[int, int]] = set()
    stack = [(root, 4, ()) for root in roots]
    while stack:
        table, level, path = stack.pop()
        if (table, level) in seen or table not in node:
            continue
        seen.add((table, level))
        # Only paths with RW at every level are followed: a write needs RW in every entry of the walk, and
        # read-only linear entries are exactly what Xen allows for that reason.
        for target, keydict in succ[table].items():
            for slot, attrs in keydict.items():
                if level == 4 and slot in XEN_L4_SLOTS:
                    continue
                flags = attrs["flags"]
                if not flags & RW:
                    continue
                here = (*path, table, slot)
                if level == 1:
                    yield here, target
                elif level == 2 and flags & PSE:
                    base = target & ~(ENTRIES_PER_TABLE - 1)
                    for mfn in range(base, base + ENTRIES_PER_TABLE):
                        if mfn in node:
                            yield here, mfn
                else:
                    stack.append((target, level - 1, here))


def _global_safety(hv: Hypervisor) -> Iterator[Violation]:
    node = hv.graph._node
    reported: set[int] = set()
    for path, mfn in writable_leaves(hv, live_roots(hv)):
        page = node[mfn]
        if mfn not in reported and _is_protected(page):
            reported.add(mfn)
            hops = " -> ".join(f"{path[i]:#x}[{path[i + 1]}]" for i in range(0, len(path), 2))
            yield Violation("global_safety", f"live {page.type_name} frame {mfn:#x} is writable via {hops}")
