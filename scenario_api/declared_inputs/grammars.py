"""The text grammars of the node widgets and CLI flags: LoRA lists (``model_id[:scale]``) and extra inputs.

Extra inputs (inputs the pack does not know) are given as a JSON object or as
``NAME=VALUE`` items; their names are checked later against the model.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ValidationError
from .schema import fmt, num

MAX_LORA_ENTRIES = 32
MAX_LORA_TEXT = 4096
_LORA_ITEM_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?::([^:]*))?$")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


def parse_loras(text: Any, *, field_name: str = "loras") -> tuple[tuple[str, float | None], ...]:
    """``model_id[:scale]`` items, comma separated (spaces and empty items allowed) -> ((id, scale), ...).

    Bounded: at most :data:`MAX_LORA_ENTRIES` entries and :data:`MAX_LORA_TEXT`
    characters (the model's own ``maxLength`` and scale range are checked
    later, against its declared inputs). Raises :class:`ValidationError`.
    """
    if text is None:
        return ()
    if isinstance(text, (list, tuple)):
        return _loras_from_list(text, field_name)
    if not isinstance(text, str):
        raise ValidationError(field_name, text, "text like 'model_abc:0.8, model_def'", param=field_name)
    if len(text) > MAX_LORA_TEXT:
        raise ValidationError(
            field_name, f"<{len(text)} characters>", f"at most {MAX_LORA_TEXT} characters", param=field_name
        )
    items: list[tuple[str, float | None]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        m = _LORA_ITEM_RE.match(":".join(part.strip() for part in item.split(":"))) if item.count(":") <= 1 else None
        if m is None or ".." in m.group(1):
            raise ValidationError(
                field_name,
                item,
                "model_id or model_id:scale, comma separated (e.g. 'model_abc:0.8, model_def')",
                param=field_name,
            )
        scale: float | None = None
        if m.group(2) is not None:
            try:
                scale = float(m.group(2))
            except ValueError:
                scale = None
            if scale is None or not math.isfinite(scale):
                raise ValidationError(
                    field_name, item, f"a number after '{m.group(1)}:' (the LoRA's scale)", param=field_name
                )
        items.append((m.group(1), scale))
        if len(items) > MAX_LORA_ENTRIES:
            raise ValidationError(
                field_name, f"more than {MAX_LORA_ENTRIES} LoRAs", f"at most {MAX_LORA_ENTRIES}", param=field_name
            )
    return tuple(items)


def _loras_from_list(items: Sequence[Any], field_name: str) -> tuple[tuple[str, float | None], ...]:
    """A list of texts and (id, scale) pairs, each read by :func:`parse_loras`; bounded as a whole."""
    out: list[tuple[str, float | None]] = []
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) == 2:  # an (id, scale) pair
            mid, given = item
            shown = mid if given is None else f"{mid}:{given}"
            if given is not None and num(given) is None:
                raise ValidationError(field_name, shown, "a number as the LoRA's scale", param=field_name)
            out.extend(
                (m, None if given is None else float(given)) for m, _ in parse_loras(str(mid), field_name=field_name)
            )
        else:
            out.extend(parse_loras(item, field_name=field_name))
    if len(out) > MAX_LORA_ENTRIES:
        raise ValidationError(field_name, f"{len(out)} LoRAs", f"at most {MAX_LORA_ENTRIES}", param=field_name)
    return tuple(out)


def format_loras(loras: Sequence[tuple[str, float | None]]) -> str:
    """The inverse of :func:`parse_loras` (``id:scale, id``)."""
    return ", ".join(mid if s is None else f"{mid}:{fmt(s) if s == s else s}" for mid, s in loras)


MAX_EXTRA_TEXT = 65536


def parse_extra_inputs(text: Any, *, field_name: str = "extra_inputs") -> dict[str, Any]:
    """A JSON object of extra inputs (``""`` or ``None`` = none); names must look like input names."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        data: Any = dict(text)
    elif isinstance(text, str):
        if not text.strip():
            return {}
        if len(text) > MAX_EXTRA_TEXT:
            raise ValidationError(
                field_name, f"<{len(text)} characters>", f"at most {MAX_EXTRA_TEXT} characters", param=field_name
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                field_name, text, f'a JSON object such as {{"guidance": 4}} ({exc.msg})', param=field_name
            ) from None
    else:
        raise ValidationError(field_name, text, 'a JSON object such as {"guidance": 4}', param=field_name)
    if not isinstance(data, dict):
        raise ValidationError(field_name, text, 'a JSON object such as {"guidance": 4}', param=field_name)
    for key in data:
        if not isinstance(key, str) or not _NAME_RE.match(key):
            raise ValidationError(field_name, key, "input names (letters, digits, '_', '.', '-')", param=field_name)
    return data


def parse_assignment(text: str, *, field_name: str = "--input") -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value); VALUE is JSON when it parses as JSON, otherwise the string itself."""
    if not isinstance(text, str) or "=" not in text:
        raise ValidationError(
            field_name, text, "NAME=VALUE, e.g. guidance=4 or controlModality=depth", param=field_name
        )
    name, _, raw = text.partition("=")
    name = name.strip()
    if not _NAME_RE.match(name):
        raise ValidationError(field_name, text, "an input name before '=' (letters, digits, '_')", param=field_name)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def collect_assignments(items: Iterable[str], *, field_name: str = "--input") -> dict[str, Any]:
    """Several ``NAME=VALUE`` items as one dict (a repeated name: the last one wins)."""
    out: dict[str, Any] = {}
    for item in items:
        name, value = parse_assignment(item, field_name=field_name)
        out[name] = value
    return out
