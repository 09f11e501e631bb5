"""Where the shipped models and proof scripts live: package data, found wherever xenpin is installed.

In a checkout, `models/` and `proofs/` at the top are links to these folders, so the README's paths work there.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
MODELS = PACKAGE / "models"
KERNELS = MODELS / "kernels"
SCENARIOS = MODELS / "scenarios"
LOGS = MODELS / "logs"
MANIFEST = LOGS / "manifest.toml"
RULES = MODELS / "rules"
RULES_EXPECT = RULES / "expect.toml"  # the verdicts `xenpin verify-rules` expects
PROOFS = PACKAGE / "proofs"


def proof_scripts(directory: Path = PROOFS) -> list[Path]:
    """The proof scripts of a folder (`*.py`, not `_private.py`), in name order."""
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))
