"""The rules a model's declarations set on a body, in two modes.

``client`` (strict: unknown input names refused with the list of the model's
inputs, pairing rules of LoRA scales, asset ids only) and ``server`` (what
Scenario was recorded to do: unknown names dropped, numeric strings read as
numbers, a LoRA scale *below* its minimum or a missing scale accepted, as in
the recorded dry runs). Each :class:`Violation` renders both the client's
:class:`~scenario_api.errors.ValidationError` and Scenario's own ``reason`` text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .model import DeclaredModel, inference_types
from .schema import MISSING, InputDecl, defined, fmt

CLIENT = "client"
SERVER = "server"

_ASSET_ID_RE = re.compile(r"^asset_[A-Za-z0-9_-]{1,128}$")
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# Names the server maps to canonical modality names (see spec.MODALITY_ALIASES); kept
# local so that this package stays free of spec (spec builds on this package).
_MODALITY_ALIASES = {"openpose": "pose", "normal": "normal-map"}
_STEP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``input``, what was given, what is allowed, and Scenario's text for it.

    ``status`` is the HTTP status the server answers with (404 for a model that does not exist).
    """

    input: str
    code: str
    value: Any
    allowed: str
    reason: str
    status: int = 400

    def error(self, model_id: str, params: Mapping[str, str] | None = None) -> ValidationError:
        """The client's error: names the input (and the node/CLI field it came from), the model, what is allowed."""
        where = f"{self.allowed} (model {model_id})" if model_id else self.allowed
        param = (params or {}).get(self.input)
        return ValidationError(self.input, self.value, where, param=param or self.input)


_PLURAL = {
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    "file": "asset ids",
    "model": "model ids",
    "inputs": "objects",
}


class _ValueRules:
    """One value against one declaration; each check returns the (possibly normalised) value or MISSING."""

    def __init__(
        self,
        model: DeclaredModel,
        mode: str,
        model_types: Mapping[str, str | None] | None,
    ) -> None:
        self.model = model
        self.server = mode == SERVER
        self.model_types = model_types or {}
        self.out: list[Violation] = []

    def add(self, name: str, code: str, value: Any, allowed: str, reason: str, status: int = 400) -> None:
        self.out.append(Violation(name, code, value, allowed, reason, status))

    def wrong_type(self, d: InputDecl, label: str, value: Any, what: str) -> Any:
        self.add(d.name, "type", value, d.describe(), f"Input {label} must be {what}")
        return MISSING

    def lengths(self, d: InputDecl, n: int, unit: str, value: Any, shown_long: Any) -> bool:
        """``minLength`` / ``maxLength`` (characters of a text, items of a list); False after a violation."""
        if d.max_length is not None and n > d.max_length:
            reason = f"Input {d.name} must be at most {d.max_length} {unit} long"
            self.add(d.name, "max_length", shown_long, d.describe(), reason)
            return False
        if d.min_length is not None and n < d.min_length:
            reason = f"Input {d.name} must be at least {d.min_length} {unit} long"
            self.add(d.name, "min_length", value, d.describe(), reason)
            return False
        return True

    # -- scalars

    def number(self, d: InputDecl, label: str, value: Any, *, array_item: bool = False) -> Any:
        v = _read_number(value) if self.server else value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return self.wrong_type(d, label, value, "a number")
        if d.integer:
            if not float(v).is_integer():
                return self.wrong_type(d, label, value, "an integer")
            v = int(v)
        return v if self.in_range(d, value, v, array_item=array_item) else MISSING

    def in_range(self, d: InputDecl, value: Any, v: float, *, array_item: bool) -> bool:
        """``min``, ``max`` and ``step``; False after a violation."""
        if d.min is not None and v < d.min:
            # recorded (2026-10): a LoRA scale below its minimum is accepted by the server
            if not (self.server and array_item):
                self.add(d.name, "min", value, d.describe(), f"Input {d.name} must be at least {fmt(d.min)}")
                return False
        if d.max is not None and v > d.max:
            self.add(d.name, "max", value, d.describe(), f"Input {d.name} must be at most {fmt(d.max)}")
            return False
        if d.step:
            base = d.min if d.min is not None else 0.0
            ratio = (float(v) - base) / d.step
            if abs(ratio - round(ratio)) > _STEP_TOLERANCE * max(1.0, abs(ratio)):
                self.add(d.name, "step", value, d.describe(), f"Input {d.name} must be a multiple of {fmt(d.step)}")
                return False
        return True

    def string(self, d: InputDecl, label: str, value: Any, *, array_item: bool = False) -> Any:
        if not isinstance(value, str):
            return self.wrong_type(d, label, value, "a string")
        if d.allowed_values:
            v = value
            if self.server and self.model.role("modality") is d:
                v = _MODALITY_ALIASES.get(value.strip().lower(), value.strip().lower())
            if v not in d.allowed_values:
                allowed = ", ".join(map(str, d.allowed_values))
                self.add(d.name, "allowed", value, d.describe(), f"Input {d.name} must be one of: {allowed}")
                return MISSING
            return v
        if not array_item and not self.lengths(d, len(value), "characters", value, f"<{len(value)} characters>"):
            return MISSING
        return value

    def file(self, d: InputDecl, label: str, value: Any) -> Any:
        if not isinstance(value, str) or not _ASSET_ID_RE.match(value.strip()):
            return self.wrong_type(d, label, value, "an asset id")
        return value.strip()

    def model_id(self, d: InputDecl, label: str, value: Any) -> Any:
        if value == "" and d.type == "model":
            return value  # the records' default: no model
        if not isinstance(value, str) or not _MODEL_ID_RE.match(value.strip()) or ".." in value:
            return self.wrong_type(d, label, value, "a model id")
        return value.strip()

    def boolean(self, d: InputDecl, label: str, value: Any) -> Any:
        if not isinstance(value, bool):
            return self.wrong_type(d, label, value, "a boolean")
        return value

    def nested(self, d: InputDecl, label: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return self.wrong_type(d, label, value, "an object")
        if not d.nested:
            return dict(value)
        sub = DeclaredModel(self.model.model_id, inputs=d.nested)
        inner = _Checker(sub, SERVER if self.server else CLIENT, self.model_types)
        result = inner.body(value)
        for v in inner.out:
            self.add(d.name, v.code, value, f"{d.name}: {v.input}: {v.allowed}", v.reason, v.status)
        return result if not inner.out else MISSING

    def item(self, d: InputDecl, label: str, value: Any, *, array_item: bool) -> Any:
        t = d.item_type
        if t == "number":
            return self.number(d, label, value, array_item=array_item)
        if t == "string":
            return self.string(d, label, value, array_item=array_item)
        if t == "file":
            return self.file(d, label, value)
        if t == "model":
            return self.model_id(d, label, value)
        if t == "boolean":
            return self.boolean(d, label, value)
        if t == "inputs":
            return self.nested(d, label, value)
        return value  # a type this module does not know yet: presence only

    # -- a declared input's whole value

    def value(self, d: InputDecl, value: Any) -> Any:
        if not d.is_array:
            return self.item(d, d.name, value, array_item=False)
        if not isinstance(value, (list, tuple)):
            return self.wrong_type(d, d.name, value, f"an array of {_PLURAL.get(d.item_type, 'values')}")
        if not self.lengths(d, len(value), "items", list(value), list(value)):
            return MISSING
        out = []
        before = len(self.out)
        for item in value:
            checked = self.item(d, d.name, item, array_item=True)
            if len(self.out) > before:
                # name the whole list in the client's error, as the user wrote it
                v = self.out[-1]
                self.out[-1] = Violation(v.input, v.code, list(value), v.allowed, v.reason, v.status)
                return MISSING
            out.append(checked)
        return out


def _read_number(value: Any) -> Any:
    """Server mode: a numeric string read as a number (as Scenario does); anything else unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return int(value.strip())
    except ValueError:
        try:
            return float(value.strip())
        except ValueError:
            return value


class _Checker(_ValueRules):
    """A whole body: each input's value, then ``required``, referenced models and the rules between inputs."""

    def body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out = self.inputs(body)
        self.required(body, out)
        self.model_refs(out)
        self.pairs(out)
        return out

    def inputs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The declared inputs' checked values; unknown names refused (client) or dropped (server)."""
        model = self.model
        out: dict[str, Any] = {}
        known = set(model.names)
        for key, value in body.items():
            if key not in known:
                if not self.server:
                    self.add(
                        str(key),
                        "unknown",
                        value,
                        f"one of the inputs this model declares: {', '.join(model.names) or '(none)'}",
                        f"Input {key} is not allowed",
                    )
                continue
            if value is None:
                continue
            checked = self.value(model.get(key), value)  # type: ignore[arg-type]
            if checked is not MISSING:
                out[key] = checked
        return out

    def required(self, body: Mapping[str, Any], out: Mapping[str, Any]) -> None:
        """Inputs required for this body and not given (an input already refused is not reported twice)."""
        kinds = inference_types(self.model, out)
        for d in self.model.inputs:
            if defined(out.get(d.name, MISSING)):
                continue
            why = d.required.why(out, kinds)
            if why is not None and not (d.name in body and body[d.name] is not None and d.name not in out):
                self.add(
                    d.name,
                    "required",
                    None,
                    f"a value ({d.describe()}): required {why}",
                    f"Input {d.name} is required",
                )

    def model_refs(self, out: Mapping[str, Any]) -> None:
        """Referenced models: not found (404), then the union of all model inputs' types, then each input's.

        The two type stages reproduce Scenario's recorded texts: a Flux.2 LoRA in
        ``loras`` is refused against the union (``flux.1-lora, flux.1-composition``),
        a composition in ``loras`` against that input's own list (``flux.1-lora``).
        """
        refs: list[tuple[InputDecl, str]] = []
        for d in self.model.model_inputs:
            refs.extend((d, mid) for mid in ids_of(out.get(d.name)))
        for d, mid in refs:
            if mid in self.model_types and self.model_types[mid] is None:
                self.add(
                    d.name, "not_found", mid, "a model that exists and that you can read", f"Model {mid} not found", 404
                )
                return
        self.model_type_stages(refs)

    def model_type_stages(self, refs: list[tuple[InputDecl, str]]) -> None:
        union: list[str] = []
        for d in self.model.model_inputs:
            union.extend(t for t in d.model_types if t not in union)
        stages: list[tuple[list[tuple[InputDecl, str]], tuple[str, ...]]] = [(refs, tuple(union))]
        stages += [([(d, m) for d, m in refs if d is decl], decl.model_types) for decl in self.model.model_inputs]
        for pairs, allowed in stages:
            if not allowed:
                continue
            bad = [(d, mid) for d, mid in pairs if self.model_types.get(mid) not in (None, *allowed)]
            if bad:
                ids = list(dict.fromkeys(mid for _, mid in bad))
                given = ", ".join(f"{mid} is a {self.model_types[mid]}" for mid in ids)
                kinds = ", ".join(allowed)
                self.add(
                    bad[0][0].name,
                    "model_type",
                    ids[0] if len(ids) == 1 else ids,
                    f"models of type {kinds} ({given})",
                    f"Invalid model(s): {', '.join(ids)}.\nAllowed model types: {kinds}",
                )
                return

    def pairs(self, out: Mapping[str, Any]) -> None:
        """Rules between inputs: control start below end (both modes), then the client-only ones."""
        start, end = self.model.role("control_start"), self.model.role("control_end")
        if (
            start
            and end
            and isinstance(out.get(start.name), (int, float))
            and isinstance(out.get(end.name), (int, float))
        ):
            if out[start.name] >= out[end.name]:
                self.add(
                    start.name,
                    "order",
                    out[start.name],
                    f"a value below {end.name} ({fmt(out[end.name])})",
                    f"Input {start.name} must be less than {end.name}",
                )
        if not self.server:  # recorded: loras without lorasScale, or fewer scales than LoRAs, are accepted
            self.client_pairs(out)

    def client_pairs(self, out: Mapping[str, Any]) -> None:
        """A non-empty prompt, strength only with an init image, one LoRA scale per LoRA."""
        model = self.model
        prompt = model.role("prompt")
        if prompt and isinstance(out.get(prompt.name), str) and not out[prompt.name].strip():
            self.add(
                prompt.name, "required", out[prompt.name], "a non-empty text prompt", f"Input {prompt.name} is required"
            )
        image, strength = model.role("image"), model.role("strength")
        if image and strength and strength.name in out and image.name not in out:
            self.add(
                strength.name,
                "order",
                out[strength.name],
                f"{strength.name} only with an init image ({image.name})",
                f"Input {strength.name} needs {image.name}",
            )
        loras, scales = model.role("loras"), model.role("lora_scales")
        if loras and scales:
            n = len(out.get(loras.name) or [])
            s = out.get(scales.name)
            if s is not None and len(s) != n:
                self.add(
                    scales.name,
                    "pairing",
                    s,
                    f"one scale per LoRA in {loras.name} ({n} given)",
                    f"Input {scales.name} must have one item per {loras.name} item",
                )


def check_body(
    model: DeclaredModel,
    body: Mapping[str, Any],
    *,
    mode: str = CLIENT,
    model_types: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, Any], list[Violation]]:
    """The normalised body and every violation found (an empty list: the body is valid).

    ``model_types`` maps referenced model ids (LoRAs, compositions) to their
    ``type`` when known; ``None`` as a value means the model does not exist.
    Ids absent from it are not type-checked.
    """
    if mode not in (CLIENT, SERVER):
        raise ValueError(f"mode must be {CLIENT!r} or {SERVER!r}")
    if not isinstance(body, Mapping):
        v = Violation("(body)", "type", body, "a JSON object of inputs", "Body must be an object")
        return {}, [v]
    checker = _Checker(model, mode, model_types)
    out = checker.body(body)
    return out, checker.out


def validate_body(
    model: DeclaredModel,
    body: Mapping[str, Any],
    *,
    mode: str = CLIENT,
    model_types: Mapping[str, str | None] | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The normalised body, or :class:`ValidationError` for its first violation.

    ``params`` maps input names to the node widget / CLI flag they came from,
    so the error names both (``Invalid lorasScale (loras): ...``).
    """
    out, violations = check_body(model, body, mode=mode, model_types=model_types)
    if violations:
        raise violations[0].error(model.model_id, params)
    return out


def ids_of(value: Any) -> list[str]:
    """The model ids in a ``model`` / ``model_array`` value (empty ones skipped)."""
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v]
    return [value] if isinstance(value, str) and value else []


def referenced_models(model: DeclaredModel, body: Mapping[str, Any]) -> list[str]:
    """Ids given to the model's ``model`` / ``model_array`` inputs (LoRAs, compositions), in order, unique."""
    ids: dict[str, None] = {}
    for d in model.model_inputs:
        for mid in ids_of(body.get(d.name)):
            ids.setdefault(mid.strip(), None)
    return list(ids)


def first_violation_response(
    model: DeclaredModel,
    body: Mapping[str, Any],
    model_types: Mapping[str, str | None] | Callable[[str], str | None] | None = None,
) -> tuple[dict[str, Any], Violation | None]:
    """Server side: the normalised body and the first violation (None = valid), as Scenario answers it."""
    types: Mapping[str, str | None] | None
    if callable(model_types):
        lookup = model_types
        raw_refs = referenced_models(model, body if isinstance(body, Mapping) else {})
        types = {mid: lookup(mid) for mid in raw_refs}
    else:
        types = model_types
    out, violations = check_body(model, body, mode=SERVER, model_types=types)
    return out, (violations[0] if violations else None)
