"""The declarations themselves: one input's type, limits and ``required`` rule, read leniently.

Keys this module does not know are ignored, a malformed declaration is
skipped, an unknown ``type`` is kept (and later checked only for presence).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

INPUT_TYPES = (
    "boolean",
    "file",
    "file_array",
    "inputs_array",
    "model",
    "model_array",
    "number",
    "number_array",
    "string",
    "string_array",
)
ARRAY_ITEM_TYPE = {
    "file_array": "file",
    "model_array": "model",
    "number_array": "number",
    "string_array": "string",
    "inputs_array": "inputs",
}

# Stands for "not in the body" (``None`` is a value a body may carry).
MISSING = object()


def num(x: Any) -> float | None:
    """A finite number (not a bool) as a float, else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def fmt(x: float) -> str:
    """A number as Scenario writes it in its texts (``2``, ``0.5``)."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _names(value: Any) -> tuple[tuple[str, str], ...]:
    """``{"input": "message"}``, a list of names or one name -> ((name, message), ...)."""
    if isinstance(value, Mapping):
        return tuple((str(k), v if isinstance(v, str) else "") for k, v in value.items() if isinstance(k, str))
    if isinstance(value, str):
        return ((value, ""),)
    if isinstance(value, (list, tuple)):
        return tuple((v, "") for v in value if isinstance(v, str))
    return ()


def _values(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


@dataclass(frozen=True)
class Requirement:
    """When an input must be present (``required`` in any of its recorded forms).

    ``always``; ``if_defined`` / ``if_not_defined``: (other input, message)
    pairs; ``conditional``: (other input, accepted values) pairs combined
    with ``operator`` (``and`` / ``or``; ``or`` when the record omits it);
    ``inference_types`` (the observed ``{"when": {"inferenceType": [...]}}``)
    and other ``when`` keys naming inputs (``when_values``).
    """

    always: bool = False
    if_defined: tuple[tuple[str, str], ...] = ()
    if_not_defined: tuple[tuple[str, str], ...] = ()
    conditional: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    operator: str = "or"
    inference_types: tuple[str, ...] = ()
    when_values: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def ever(self) -> bool:
        return bool(
            self.always
            or self.if_defined
            or self.if_not_defined
            or self.conditional
            or self.inference_types
            or self.when_values
        )

    def why(self, body: Mapping[str, Any], inference: Iterable[str]) -> str | None:
        """Why the input is required for ``body`` (a short phrase), or None when it is not."""
        if self.always:
            return "always"
        for other, message in self.if_defined:
            if defined(body.get(other, MISSING)):
                return message or f"when {other} is given"
        for other, message in self.if_not_defined:
            if not defined(body.get(other, MISSING)):
                return message or f"when {other} is not given"
        if self.conditional:
            hits = [body.get(other, MISSING) in values for other, values in self.conditional]
            if all(hits) if self.operator == "and" else any(hits):
                parts = ", ".join(f"{o} is {' or '.join(map(str, v))}" for o, v in self.conditional)
                return f"when {parts}"
        kinds = set(inference)
        if self.inference_types and kinds & set(self.inference_types):
            return f"for {' / '.join(sorted(kinds & set(self.inference_types)))} generations"
        for other, values in self.when_values:
            if body.get(other, MISSING) in values:
                return f"when {other} is {' or '.join(map(str, values))}"
        return None


def parse_requirement(raw: Any) -> Requirement:
    """Read ``required`` leniently: ``true``, ``{"always": true}``, ``ifDefined``... unknown keys ignored."""
    if raw is True:
        return Requirement(always=True)
    if not isinstance(raw, Mapping):
        return Requirement()
    cond = raw.get("conditional")
    conditional: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    operator = "or"
    if isinstance(cond, Mapping):
        values = cond.get("values")
        if isinstance(values, Mapping):
            conditional = tuple((str(k), _values(v)) for k, v in values.items() if isinstance(k, str))
        if str(cond.get("operator", "")).lower() == "and":
            operator = "and"
    kinds: tuple[str, ...] = ()
    when_values: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    when = raw.get("when")
    if isinstance(when, Mapping):
        for key, value in when.items():
            if key == "inferenceType":
                kinds = tuple(str(v) for v in _values(value) if isinstance(v, str))
            elif isinstance(key, str):
                when_values += ((key, _values(value)),)
    return Requirement(
        always=raw.get("always") is True,
        if_defined=_names(raw.get("ifDefined")),
        if_not_defined=_names(raw.get("ifNotDefined")),
        conditional=conditional,
        operator=operator,
        inference_types=kinds,
        when_values=when_values,
    )


def defined(value: Any) -> bool:
    """Given and not empty: ``None``, ``""`` and ``[]`` count as not given (the records' defaults)."""
    return value is not MISSING and value is not None and value != "" and value != []


@dataclass(frozen=True)
class InputDecl:
    """One declared input. ``default`` is ``None`` when the record declares none."""

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    allowed_values: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    kind: str | None = None
    model_types: tuple[str, ...] = ()
    required: Requirement = field(default_factory=Requirement)
    cost_impact: bool = False
    label: str | None = None
    description: str | None = None
    group: str | None = None
    nested: tuple[InputDecl, ...] = ()

    @property
    def is_array(self) -> bool:
        return self.type in ARRAY_ITEM_TYPE

    @property
    def item_type(self) -> str:
        return ARRAY_ITEM_TYPE.get(self.type, self.type)

    @property
    def integer(self) -> bool:
        """Numbers with an integral step (``numOutputs``, ``width``...) must be integers."""
        return self.step is not None and self.step >= 1 and float(self.step).is_integer()

    @property
    def has_default(self) -> bool:
        return defined(self.default if self.default is not None else MISSING)

    def describe(self) -> str:
        """What the input accepts, as a phrase (used in error messages and docs)."""
        t = self.item_type
        if t == "number":
            what = "an integer" if self.integer else "a number"
            if self.min is not None and self.max is not None:
                rng = (
                    f" from {fmt(self.min)} to {fmt(self.max)}"
                    if self.integer
                    else f" in [{fmt(self.min)}, {fmt(self.max)}]"
                )
            elif self.min is not None:
                rng = f" of at least {fmt(self.min)}"
            elif self.max is not None:
                rng = f" of at most {fmt(self.max)}"
            else:
                rng = ""
            step = f", a multiple of {fmt(self.step)}" if self.step and self.step != 1 else ""
            phrase = what + rng + step
        elif t == "string":
            phrase = "a text"
            if self.allowed_values:
                phrase = "one of: " + ", ".join(map(str, self.allowed_values))
            elif self.max_length is not None and not self.is_array:
                phrase += f" of at most {self.max_length} characters"
        elif t == "file":
            phrase = f"an asset id like 'asset_...' ({self.kind or 'image'}; upload files first)"
        elif t == "model":
            phrase = "a model id"
            if self.model_types:
                phrase += " of type " + " or ".join(self.model_types)
        elif t == "boolean":
            phrase = "true or false"
        elif t == "inputs":
            phrase = "an object of " + ", ".join(d.name for d in self.nested) if self.nested else "an object"
        else:
            phrase = "a value"
        if self.is_array:
            count = ""
            if self.min_length is not None and self.max_length is not None:
                count = f" of {self.min_length} to {self.max_length} items"
            elif self.max_length is not None:
                count = f" of at most {self.max_length} items"
            elif self.min_length is not None:
                count = f" of at least {self.min_length} items"
            return f"a list{count}, each item {phrase}"
        return phrase


def _length(raw: Any) -> int | None:
    n = num(raw)
    return int(n) if n is not None and n >= 0 else None


def parse_input(raw: Any) -> InputDecl | None:
    """One declaration, or None when it has no usable name (lenient: unknown keys ignored)."""
    if not isinstance(raw, Mapping):
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    type_ = raw.get("type")
    type_ = type_.strip().lower() if isinstance(type_, str) and type_.strip() else "string"
    allowed = raw.get("allowedValues")
    if not isinstance(allowed, (list, tuple)) or not allowed:
        # older emulator records and some UIs say "options"
        allowed = raw.get("options") if isinstance(raw.get("options"), (list, tuple)) and raw.get("options") else None
    types = raw.get("modelTypes")
    step = num(raw.get("step"))
    if step is not None and step <= 0:
        step = None
    if step is None and raw.get("integer") is True:
        step = 1.0
    nested = raw.get("inputs")
    return InputDecl(
        name=name.strip(),
        type=type_,
        default=raw.get("default"),
        min=num(raw.get("min")),
        max=num(raw.get("max")),
        step=step,
        allowed_values=tuple(allowed) if allowed else None,
        min_length=_length(raw.get("minLength")),
        max_length=_length(raw.get("maxLength")),
        kind=raw.get("kind") if isinstance(raw.get("kind"), str) else None,
        model_types=tuple(str(t) for t in types if isinstance(t, str)) if isinstance(types, (list, tuple)) else (),
        required=parse_requirement(raw.get("required")),
        cost_impact=raw.get("costImpact") is True,
        label=raw.get("label") if isinstance(raw.get("label"), str) else None,
        description=raw.get("description") if isinstance(raw.get("description"), str) else None,
        group=raw.get("group") if isinstance(raw.get("group"), str) else None,
        nested=parse_inputs(nested) if isinstance(nested, (list, tuple)) else (),
    )


def parse_inputs(raw: Any) -> tuple[InputDecl, ...]:
    """A record's ``inputs`` list; malformed entries skipped, the first of duplicate names kept."""
    if not isinstance(raw, (list, tuple)):
        return ()
    out: dict[str, InputDecl] = {}
    for item in raw:
        decl = parse_input(item)
        if decl is not None and decl.name not in out:
            out[decl.name] = decl
    return tuple(out.values())


@dataclass(frozen=True)
class LorasComponent:
    """``uiConfig.lorasComponent``: which inputs carry the LoRA list, their scales and a single model id."""

    model_input: str | None = None
    scale_input: str | None = None
    model_id_input: str | None = None


@dataclass(frozen=True)
class ResolutionComponent:
    """``uiConfig.resolutionComponent``: the size inputs and their presets ((label, width, height))."""

    width_input: str | None = None
    height_input: str | None = None
    presets: tuple[tuple[str, int | None, int | None], ...] = ()
