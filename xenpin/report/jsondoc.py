"""What every `--json` document shares: the envelope `{"schema": 2, "command": ..., ...}` and the field types.

One top-level object per command, described by `xenpin/schemas/<command>.json` (JSON Schema 2020-12). Field
types are the same everywhere: addresses, sizes, PFNs and MFNs are hex strings (`"0x4000000"`), counts,
indices and steps are integers, and a row about a variant carries its name and its `file`: the variant file's
path as xenpin was given it (on the command line, or joined to the directory or proof script that named it).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

SCHEMA_VERSION = 2


def document(command: str, **body: Any) -> dict[str, Any]:
    """A command's JSON document: the envelope first, then the command's own keys."""
    return {"schema": SCHEMA_VERSION, "command": command, **body}


def hex_or_none(value: int | None) -> str | None:
    return None if value is None else hex(value)


def file_of(path: str | os.PathLike[str] | None) -> str | None:
    """A variant's (or log's, or scenario's) `file` in JSON: the path as given, or null if it has none."""
    return None if path is None else os.fspath(path)


def schema_name(command: str) -> str:
    """The schema file of a command's document (`boot --dmesg` -> `boot-dmesg.json`)."""
    return command.replace(" --", "-").replace(" ", "-") + ".json"


def load_schema(command: str) -> dict[str, Any]:
    """The JSON Schema of a command's document, from the package data."""
    text = resources.files("xenpin").joinpath("schemas", schema_name(command)).read_text(encoding="utf-8")
    return json.loads(text)
