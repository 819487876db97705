"""Model-declared inputs of Scenario's custom models (``GET /models/{id}``: ``inputs`` and ``uiConfig``).

A model with ``custom: true`` runs on ``POST /generate/custom/{modelId}`` and its
body is whatever the model declares in ``GET /models/{id}`` (``model.inputs``,
plus ``model.uiConfig``). This module is the one place that reads those
declarations and applies them, for the client (before any upload or submit)
and for the emulator (as the server's 400/404 answers):

* :class:`DeclaredModel` / :func:`parse_inputs` parse a record leniently: keys
  this module does not know are ignored, a malformed declaration is skipped,
  an unknown ``type`` is kept and checked only for presence.
* :func:`check_body` lists the :class:`Violation` s of a body: types, ``min``,
  ``max``, ``step``, ``allowedValues``, ``minLength`` / ``maxLength`` (the item
  count for arrays), every recorded form of ``required`` and ``modelTypes``
  when a referenced model's type is known. Each violation renders both the
  client's :class:`~scenario_api.errors.ValidationError` (naming the input,
  the model and what is allowed) and Scenario's own ``reason`` text (the
  recorded ones: ``Input lorasScale must be at most 2``, ``Input loras must be
  at most 6 items long``, ``Invalid model(s): ...``, ``Model X not found``).
* :func:`validate_body` raises the first violation as a ``ValidationError``
  (client mode) and returns the normalised body.
* :func:`map_request` maps the pack's generic fields (control map, modality,
  strength, samples, size, init image, LoRAs, extra inputs...) onto whatever a
  model declares, **by meaning**: inputs are found by declared type, kind,
  group, ``uiConfig`` and name patterns, never by model id.
* :func:`parse_loras` reads the ``model_id[:scale]`` list grammar;
  :func:`parse_extra_inputs` and :func:`parse_assignment` read unknown inputs
  given as a JSON object or as ``NAME=VALUE``.

Two modes: ``client`` (strict: unknown input names refused with the list of
the model's inputs, pairing rules of LoRA scales, asset ids only) and
``server`` (what Scenario was recorded to do: unknown names dropped, numeric
strings read as numbers, a LoRA scale *below* its minimum or a missing scale
accepted, as in the recorded dry runs).

The package, one concern a module (this file only re-exports them):
``schema`` (one declaration and its ``required`` rule, parsed leniently),
``model`` (:class:`DeclaredModel`, roles found by meaning), ``checker`` (the
rules, both modes), ``mapping`` (generic fields -> a model's inputs),
``grammars`` (LoRA lists, extra inputs), ``summary`` (what the frontend and
docs are told) and ``cache`` (:class:`RecordCache`). They load on first use
of one of their names (module ``__getattr__``), so importing the pack does not
pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..lazy import export_names, load_export

if TYPE_CHECKING:  # the names, for type checkers; at run time each module loads on first use
    from .cache import (
        RecordCache,
    )
    from .checker import (
        CLIENT,
        SERVER,
        Violation,
        check_body,
        first_violation_response,
        ids_of,
        referenced_models,
        validate_body,
    )
    from .grammars import (
        MAX_EXTRA_TEXT,
        MAX_LORA_ENTRIES,
        MAX_LORA_TEXT,
        collect_assignments,
        format_loras,
        parse_assignment,
        parse_extra_inputs,
        parse_loras,
    )
    from .mapping import (
        DEFAULT_LORA_SCALE,
        GenericFields,
        MappedBody,
        assign_loras,
        derive_size,
        fields_from_request,
        map_request,
    )
    from .model import (
        ROLES,
        DeclaredModel,
        cost_inputs,
        describe_inputs,
        inference_types,
    )
    from .schema import (
        ARRAY_ITEM_TYPE,
        INPUT_TYPES,
        InputDecl,
        LorasComponent,
        Requirement,
        ResolutionComponent,
        parse_input,
        parse_inputs,
        parse_requirement,
    )
    from .summary import (
        CONTROLNET_CAPABILITY,
        LEGACY_PRICE_INPUTS,
        WIDGET_OF_ROLE,
        can_do_controlnet,
        model_summary,
        node_table,
        price_widgets,
    )

_WHERE = {  # public name -> the module of this package that defines it
    "RecordCache": "cache",
    "CLIENT": "checker",
    "SERVER": "checker",
    "Violation": "checker",
    "check_body": "checker",
    "first_violation_response": "checker",
    "ids_of": "checker",
    "referenced_models": "checker",
    "validate_body": "checker",
    "MAX_EXTRA_TEXT": "grammars",
    "MAX_LORA_ENTRIES": "grammars",
    "MAX_LORA_TEXT": "grammars",
    "collect_assignments": "grammars",
    "format_loras": "grammars",
    "parse_assignment": "grammars",
    "parse_extra_inputs": "grammars",
    "parse_loras": "grammars",
    "DEFAULT_LORA_SCALE": "mapping",
    "GenericFields": "mapping",
    "MappedBody": "mapping",
    "assign_loras": "mapping",
    "derive_size": "mapping",
    "fields_from_request": "mapping",
    "map_request": "mapping",
    "ROLES": "model",
    "DeclaredModel": "model",
    "cost_inputs": "model",
    "describe_inputs": "model",
    "inference_types": "model",
    "ARRAY_ITEM_TYPE": "schema",
    "INPUT_TYPES": "schema",
    "InputDecl": "schema",
    "LorasComponent": "schema",
    "Requirement": "schema",
    "ResolutionComponent": "schema",
    "parse_input": "schema",
    "parse_inputs": "schema",
    "parse_requirement": "schema",
    "CONTROLNET_CAPABILITY": "summary",
    "LEGACY_PRICE_INPUTS": "summary",
    "WIDGET_OF_ROLE": "summary",
    "can_do_controlnet": "summary",
    "model_summary": "summary",
    "node_table": "summary",
    "price_widgets": "summary",
}


def __getattr__(name: str) -> Any:
    """Load the module that defines ``name`` on first use (importing the pack stays cheap)."""
    return load_export(__name__, _WHERE, name)


def __dir__() -> list[str]:
    return export_names(__name__, _WHERE)


__all__ = [
    "INPUT_TYPES",
    "CLIENT",
    "SERVER",
    "Requirement",
    "InputDecl",
    "LorasComponent",
    "ResolutionComponent",
    "DeclaredModel",
    "Violation",
    "GenericFields",
    "MappedBody",
    "parse_inputs",
    "parse_requirement",
    "inference_types",
    "check_body",
    "validate_body",
    "map_request",
    "derive_size",
    "parse_loras",
    "format_loras",
    "parse_extra_inputs",
    "parse_assignment",
    "cost_inputs",
    "describe_inputs",
    "MAX_LORA_ENTRIES",
    # also public, used by the client, the emulator, the nodes and the CLI
    "ARRAY_ITEM_TYPE",
    "CONTROLNET_CAPABILITY",
    "DEFAULT_LORA_SCALE",
    "LEGACY_PRICE_INPUTS",
    "MAX_EXTRA_TEXT",
    "MAX_LORA_TEXT",
    "ROLES",
    "WIDGET_OF_ROLE",
    "RecordCache",
    "assign_loras",
    "can_do_controlnet",
    "collect_assignments",
    "fields_from_request",
    "first_violation_response",
    "ids_of",
    "model_summary",
    "node_table",
    "parse_input",
    "price_widgets",
    "referenced_models",
]
