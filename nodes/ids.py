"""Parsing lists of Scenario ids typed into (or linked to) a STRING input.

The nodes output several ids as one comma-separated string; users also paste
ids one per line or as a JSON list copied from an API answer. All three forms
are accepted everywhere an id list is, so any node's output can feed any
other node's input.
"""

from __future__ import annotations

import json
import re

from ..scenario_api import spec
from ..scenario_api.errors import ValidationError
from ..scenario_api.safe_files import json_depth

_SEPARATORS = re.compile(r"[,\n\r;\s]+")

_KIND_WIRE = {"asset": "assetId", "job": "jobId"}
# Bounds on what is parsed at all: far above any real batch, far below what could stall a prompt.
MAX_ID_TEXT = 200_000
MAX_IDS = 2_000


def split_ids(text: object) -> list[str]:
    """Split ``text`` into raw tokens (no validation); empty input gives ``[]``."""
    if text is None:
        return []
    if isinstance(text, (list, tuple)):
        return [str(t).strip() for t in text if str(t).strip()]
    if not isinstance(text, str):
        text = str(text)
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("[") and json_depth(stripped, 1) == 1:  # a flat JSON list; nesting is never parsed
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, list):
            return [str(t).strip() for t in data if isinstance(t, (str, int)) and str(t).strip()]
    return [t.strip().strip("\"'") for t in _SEPARATORS.split(stripped) if t.strip().strip("\"'")]


def parse_ids(text: object, kind: str, input_name: str, *, required: bool = True) -> list[str]:
    """Split and validate ids of ``kind`` ("asset" or "job").

    Raises :class:`ValidationError` naming ``input_name`` and the accepted
    shape for the first bad id, or when ``required`` and nothing was given.
    Duplicates are kept: the caller's order and count matter (batches).
    """
    wire = _KIND_WIRE[kind]
    if isinstance(text, str) and len(text) > MAX_ID_TEXT:
        raise ValidationError(input_name, text, f"at most {MAX_ID_TEXT} characters of ids", param=input_name)
    tokens = split_ids(text)
    if len(tokens) > MAX_IDS:
        raise ValidationError(input_name, f"{len(tokens)} ids", f"at most {MAX_IDS} ids", param=input_name)
    if not tokens:
        if required:
            shape = spec.id_shape(wire)  # the one description of the id shape
            raise ValidationError(
                input_name, text, f"one or more ids ({shape}), separated by commas or new lines", param=input_name
            )
        return []
    return [spec.check_id(wire, t, input_name) for t in tokens]


def join_ids(ids: list[str] | tuple[str, ...]) -> str:
    """The output form: comma-separated, no spaces."""
    return ",".join(ids)
