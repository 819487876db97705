"""Model-declared inputs (issue 8): parsing, validation rules, mapping by meaning, the LoRA grammar.

Pure functions, no network: the records are the emulator's, which are shaped like
the ones recorded live from Scenario. Property tests (Hypothesis) cover the
lenient schema parser, the validator and the LoRA grammar on arbitrary input.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenario_api import ValidationError
from scenario_api import declared_inputs as di
from scenario_api.emulator import models_catalog

FLUX = "model_bfl-flux-1-dev"
ZIMAGE = "model_z-image"
SKETCH = "model_emu-sketchnet"


def declared(model_id: str) -> di.DeclaredModel:
    return di.DeclaredModel.from_record({"model": models_catalog.get_model(model_id)})


def fields(**changes) -> di.GenericFields:
    base = {
        "prompt": "a stone bridge",
        "control_image": "asset_map1",
        "modality": "depth",
        "modality_strength": 0.6,
        "num_samples": 2,
        "guidance": 3.5,
        "num_inference_steps": 28,
        "seed": 7,
        "width": 1024,
        "height": 768,
    }
    base.update(changes)
    return di.GenericFields(**base)


def types_of(model: di.DeclaredModel, body: dict) -> dict:
    return {mid: models_catalog.model_type(mid) for mid in di.referenced_models(model, body)}


def build(model_id: str, **changes) -> dict:
    model = declared(model_id)
    mapped = di.map_request(model, fields(**changes))
    return di.validate_body(model, mapped.body, params=mapped.params, model_types=types_of(model, mapped.body))


# --------------------------------------------------------------------------- parsing


def test_both_recorded_bases_parse_with_their_roles():
    flux, z = declared(FLUX), declared(ZIMAGE)
    assert flux.role_map() == {
        "prompt": "prompt",
        "negative_prompt": None,
        "control_image": "controlImage",
        "modality": "controlModality",
        "control_scale": "controlStrength",
        "control_start": "controlStart",
        "control_end": "controlEnd",
        "image": "image",
        "strength": "strength",
        "num_outputs": "numOutputs",
        "steps": "numInferenceSteps",
        "guidance": "guidance",
        "seed": "seed",
        "width": "width",
        "height": "height",
        "loras": "loras",
        "lora_scales": "lorasScale",
        "lora_model": "modelId",
    }
    zr = z.role_map()
    assert zr["control_image"] == "controlImage" and z.get("controlImage").type == "file_array"
    assert zr["control_scale"] == "controlnetConditioningScale" and zr["modality"] is None
    assert zr["negative_prompt"] == "negativePrompt" and zr["control_start"] is None
    assert z.cost_impact_inputs == ("numOutputs", "numInferenceSteps")
    assert z.get("strength").required.inference_types == ("img2img",)
    assert flux.loras == di.LorasComponent("loras", "lorasScale", "modelId")
    assert z.resolution.presets[0] == ("Auto (match input)", None, None)


def test_a_made_up_model_is_understood_from_its_declarations_alone():
    # names no code knows: found by declared type, group, uiConfig and name patterns
    record = {
        "id": "model_someone-new",
        "custom": True,
        "capabilities": ["controlnet"],
        "inputs": [
            {"name": "positivePrompt", "type": "string", "required": {"always": True}},
            {"name": "negative_prompt", "type": "string"},
            {"name": "structureImage", "type": "file", "group": "ControlNet Inputs", "kind": "image"},
            {"name": "structureMode", "type": "string", "group": "ControlNet", "allowedValues": ["edges", "depth"]},
            {"name": "structureInfluence", "type": "number", "group": "ControlNet", "min": 0, "max": 1.5},
            {"name": "num_images", "type": "number", "min": 1, "max": 3, "step": 1},
            {"name": "sizeW", "type": "number", "min": 64, "max": 1024, "step": 32},
            {"name": "sizeH", "type": "number", "min": 64, "max": 1024, "step": 32},
            {"name": "styles", "type": "model_array", "modelTypes": ["x-lora"], "maxLength": 2},
            {"name": "stylesScale", "type": "number_array", "min": 0, "max": 1},
            {"name": "wobble", "type": "mystery-type", "futureKey": {"anything": 1}},
        ],
        "uiConfig": {"resolutionComponent": {"widthInput": "sizeW", "heightInput": "sizeH"}},
    }
    model = di.DeclaredModel.from_record(record)
    mapped = di.map_request(
        model,
        di.GenericFields(
            prompt="p",
            control_image="asset_a",
            modality="depth:0.9",
            num_samples=3,
            width=0,
            height=0,
            source_size=(640, 480),
            loras=(("model_x1", 0.5),),
            negative_prompt="blur",
        ),
    )
    assert mapped.body == {
        "positivePrompt": "p",
        "structureImage": "asset_a",
        "structureMode": "depth",
        "structureInfluence": 0.9,
        "num_images": 3,
        "negative_prompt": "blur",
        "sizeW": 640,
        "sizeH": 480,
        "styles": ["model_x1"],
        "stylesScale": [0.5],
    }
    assert di.validate_body(model, mapped.body, model_types={"model_x1": "x-lora"}) == mapped.body
    assert model.get("wobble").type == "mystery-type"  # kept, checked for presence only
    assert di.validate_body(model, {"positivePrompt": "p", "wobble": {"x": 1}})["wobble"] == {"x": 1}


def test_required_in_every_recorded_form():
    model = di.DeclaredModel.from_record(
        {
            "id": "model_req",
            "inputs": [
                {"name": "a", "type": "string", "required": {"always": True}},
                {"name": "b", "type": "string", "required": {"ifDefined": {"c": "b goes with c"}}},
                {"name": "c", "type": "string"},
                {"name": "d", "type": "string", "required": {"ifNotDefined": {"e": ""}}},
                {"name": "e", "type": "string"},
                {
                    "name": "f",
                    "type": "number",
                    "required": {"conditional": {"values": {"mode": ["pro", "max"]}, "operator": "or"}},
                },
                {"name": "mode", "type": "string"},
                {"name": "g", "type": "number", "required": {"when": {"inferenceType": ["img2img"]}}},
                {"name": "image", "type": "file"},
                {"name": "h", "type": "boolean", "required": True},
            ],
        }
    )

    def missing(body):
        _, violations = di.check_body(model, body)
        return [(v.input, v.code) for v in violations]

    ok = {"a": "x", "e": "y", "h": False}
    assert missing(ok) == []
    assert missing({"e": "y", "h": True}) == [("a", "required")]
    assert missing({**ok, "c": "z"}) == [("b", "required")]
    assert missing({"a": "x", "h": True}) == [("d", "required")]
    assert missing({**ok, "mode": "pro"}) == [("f", "required")]
    assert missing({**ok, "mode": "basic"}) == []
    assert missing({**ok, "image": "asset_i"}) == [("g", "required")]
    with pytest.raises(ValidationError) as info:
        di.validate_body(model, {**ok, "c": "z"})
    assert info.value.field == "b" and "b goes with c" in str(info.value) and "model_req" in str(info.value)


def test_lenient_parsing_ignores_what_it_does_not_know():
    weird = [
        None,
        "text",
        {"type": "number"},  # no name
        {"name": "n", "type": "number", "min": "low", "max": None, "step": -1, "newKey": [1, 2]},
        {"name": "n", "type": "string"},  # duplicate: first kept
        {"name": "s", "required": {"sometimes": True, "ifDefined": 3}, "allowedValues": "abc"},
        {"name": "m", "type": "model_array", "modelTypes": "flux.1-lora", "maxLength": -3},
    ]
    inputs = di.parse_inputs(weird)
    assert [d.name for d in inputs] == ["n", "s", "m"]
    n, s, m = inputs
    assert n.type == "number" and n.min is None and n.step is None
    assert s.type == "string" and not s.required.ever and s.allowed_values is None
    assert m.model_types == () and m.max_length is None
    assert di.DeclaredModel.from_record({"model": "nonsense"}).inputs == ()


# --------------------------------------------------------------------------- rules and texts


@pytest.mark.parametrize(
    "body_changes, name, code, reason, phrase",
    [
        ({"lorasScale": [3.0]}, "lorasScale", "max", "Input lorasScale must be at most 2", "in [0, 2]"),
        ({"loras": ["model_emu-flux-lora-ink"] * 7, "lorasScale": [0.5] * 7}, "loras", "max_length", None, "6 items"),
        ({"numOutputs": 5}, "numOutputs", "max", "Input numOutputs must be at most 4", "from 1 to 4"),
        ({"numOutputs": 1.5}, "numOutputs", "type", None, "an integer"),
        ({"width": 520}, "width", "step", "Input width must be a multiple of 16", "a multiple of 16"),
        ({"guidance": 11}, "guidance", "max", None, "in [0, 10]"),
        ({"controlModality": "seg"}, "controlModality", "allowed", None, "canny, tile"),
        ({"prompt": "x" * 2049}, "prompt", "max_length", None, "2048 characters"),
        ({"controlImage": "data:image/png;base64,AAAA"}, "controlImage", "type", None, "asset id"),
        ({"seed": True}, "seed", "type", "Input seed must be a number", "a number"),
        ({"loras": "model_emu-flux-lora-ink"}, "loras", "type", None, "a list"),
        ({"controlStart": 0.8, "controlEnd": 0.2}, "controlStart", "order", None, "below controlEnd"),
        ({"strength": 0.5}, "strength", "order", None, "only with an init image"),
        ({"prompt": "  "}, "prompt", "required", None, "non-empty"),
        ({"numSamples": 2}, "numSamples", "unknown", None, "controlImage, controlModality"),
    ],
)
def test_each_rule_names_the_input_the_model_and_what_is_allowed(body_changes, name, code, reason, phrase):
    model = declared(FLUX)
    body = {"prompt": "p", "controlImage": "asset_c", "controlModality": "canny", **body_changes}
    _, violations = di.check_body(model, body, model_types=types_of(model, body))
    assert (violations[0].input, violations[0].code) == (name, code)
    if reason:
        assert violations[0].reason == reason
    with pytest.raises(ValidationError) as info:
        di.validate_body(model, body, model_types=types_of(model, body))
    assert info.value.field == name and phrase in str(info.value) and FLUX in str(info.value)


def test_scenario_texts_for_the_recorded_dry_runs():
    """The server mode gives Scenario's recorded answers, leniencies included."""
    model = declared(FLUX)
    ink, clay = "model_emu-flux-lora-ink", "model_emu-flux-lora-clay"

    def answer(extra):
        body = {"prompt": "a small wooden cabin", **extra}
        _, v = di.first_violation_response(model, body, models_catalog.model_type)
        return None if v is None else (v.status, v.reason)

    accepted = [
        {},
        {"loras": [ink], "lorasScale": [0.8]},
        {"loras": [ink, clay], "lorasScale": [0.8, 0.5]},
        {"modelId": ink},
        {"modelId": "model_emu-flux-composition"},
        {"modelId": "model_emu-flux-composition", "loras": [ink], "lorasScale": [0.5]},
        {"loras": [ink]},  # no scales
        {"loras": [ink, clay], "lorasScale": [0.8]},  # fewer scales
        {"loras": [ink], "lorasScale": [-0.5]},  # below the minimum
        {"aspectRatio": "1:1"},  # unknown input: dropped
    ]
    for extra in accepted:
        assert answer(extra) is None, extra
    assert answer({"loras": [ink], "lorasScale": [3.0]}) == (400, "Input lorasScale must be at most 2")
    assert answer({"loras": [ink] * 7, "lorasScale": [0.5] * 7}) == (400, "Input loras must be at most 6 items long")
    assert answer({"loras": ["model_emu-flux2-lora"], "lorasScale": [0.8]}) == (
        400,
        "Invalid model(s): model_emu-flux2-lora.\nAllowed model types: flux.1-lora, flux.1-composition",
    )
    assert answer({"loras": ["model_emu-flux-composition"], "lorasScale": [0.8]}) == (
        400,
        "Invalid model(s): model_emu-flux-composition.\nAllowed model types: flux.1-lora",
    )
    assert answer({"loras": ["model_nope"], "lorasScale": [0.8]}) == (404, "Model model_nope not found")


def test_client_is_stricter_than_the_server_where_the_server_was_lax():
    model = declared(FLUX)
    ink = "model_emu-flux-lora-ink"
    for body, field_name in (
        ({"prompt": "p", "loras": [ink], "lorasScale": [-0.5]}, "lorasScale"),
        ({"prompt": "p", "loras": [ink, ink], "lorasScale": [0.8]}, "lorasScale"),
        ({"prompt": "p", "aspectRatio": "1:1"}, "aspectRatio"),
    ):
        with pytest.raises(ValidationError) as info:
            di.validate_body(model, body)
        assert info.value.field == field_name
    with pytest.raises(ValidationError) as info:
        di.validate_body(model, {"prompt": "p", "aspectRatio": "1:1"})
    assert "modelId, loras, lorasScale, prompt" in str(info.value)  # the model's inputs, listed


def test_server_mode_reads_numeric_strings_and_modality_aliases():
    model = declared(FLUX)
    out, v = di.first_violation_response(
        model, {"prompt": "p", "seed": "12", "numOutputs": "2", "controlModality": "openpose"}
    )
    assert v is None and out["seed"] == 12 and out["numOutputs"] == 2 and out["controlModality"] == "pose"
    with pytest.raises(ValidationError):
        di.validate_body(model, {"prompt": "p", "seed": "12"})


# --------------------------------------------------------------------------- the mapping by meaning


def test_flux_custom_mapping():
    assert build(FLUX, loras=(("model_emu-flux-lora-ink", 0.8), ("model_emu-flux-lora-clay", None))) == {
        "prompt": "a stone bridge",
        "controlImage": "asset_map1",
        "controlModality": "depth",
        "controlStrength": 0.6,
        "numOutputs": 2,
        "numInferenceSteps": 28,
        "guidance": 3.5,
        "seed": 7,
        "width": 1024,
        "height": 768,
        "loras": ["model_emu-flux-lora-ink", "model_emu-flux-lora-clay"],
        "lorasScale": [0.8, 1.0],
    }


def test_z_image_mapping_and_the_modality_note():
    model = declared(ZIMAGE)
    mapped = di.map_request(model, fields(modality_strength=None, negative_prompt="blurry"))
    assert mapped.body == {
        "prompt": "a stone bridge",
        "controlImage": ["asset_map1"],
        "numOutputs": 2,
        "numInferenceSteps": 28,
        "guidance": 3.5,
        "seed": 7,
        "negativePrompt": "blurry",
        "width": 1024,
        "height": 768,
        "controlnetConditioningScale": 0.75,  # required for controlnet: the declared default
    }
    assert mapped.notes == ("modality not used by this model (model_z-image declares no modality input)",)
    img2img = di.map_request(model, fields(image="asset_init")).body
    assert img2img["image"] == "asset_init" and img2img["strength"] == 0.6  # required for img2img
    assert img2img["controlnetConditioningScale"] == 0.6  # the node's modality strength


def test_sizes_of_zero_follow_the_control_map_with_the_model_step():
    body = build(FLUX, width=0, height=0, source_size=(203, 117))
    assert (body["width"], body["height"]) == (224, 128)
    flux = declared(FLUX)
    assert di.derive_size(flux, 0, 0, (203, 117)) == (224, 128)
    assert di.derive_size(flux, 0, 0, (4000, 3000)) == (2048, 1536)
    assert di.derive_size(flux, 0, 0, None) == (1104, 832)  # the declared defaults
    assert di.derive_size(declared(ZIMAGE), 0, 0, None) == (None, None)  # none declared: Scenario decides
    assert di.derive_size(flux, 0, 512, (1000, 500)) == (1024, 512)
    assert di.derive_size(declared(SKETCH), 0, 0, (300, 300)) == (320, 320)  # step 64


def test_things_a_model_cannot_take_are_clear_errors():
    for model_id, changes, field_name in (
        (FLUX, {"negative_prompt": "blur"}, "negative_prompt"),
        ("model_demo-custom-txt2img", {}, "control_image"),
        ("model_demo-custom-txt2img", {"control_image": None, "loras": (("model_x", 1.0),)}, "loras"),
        ("model_demo-custom-txt2img", {"control_image": None, "image": "asset_i"}, "image"),
        (SKETCH, {"lora_model": "model_x"}, "model_id"),
    ):
        with pytest.raises(ValidationError) as info:
            di.map_request(declared(model_id), fields(**changes))
        assert info.value.field == field_name and model_id in str(info.value) and "its inputs:" in str(info.value)


def test_z_image_lacks_control_start_which_is_a_clear_error():
    with pytest.raises(ValidationError) as info:
        di.map_request(declared(ZIMAGE), fields(control_start=0.1))
    assert info.value.field == "control_start" and "controlnetConditioningScale" in str(info.value)


def test_extra_inputs_are_merged_and_checked_by_name():
    model = declared(FLUX)
    mapped = di.map_request(model, fields(extra_inputs={"controlEnd": 0.65, "numOutputs": 3}))
    body = di.validate_body(model, mapped.body, params=mapped.params)
    assert body["controlEnd"] == 0.65 and body["numOutputs"] == 3
    assert "extra_inputs sets numOutputs (instead of the node's value)" in mapped.notes
    bad = di.map_request(model, fields(extra_inputs={"aspectRatio": "1:1"}))
    with pytest.raises(ValidationError) as info:
        di.validate_body(model, bad.body, params=bad.params)
    assert info.value.field == "aspectRatio" and info.value.param == "extra_inputs"
    assert "controlModality" in str(info.value)  # the list of the model's inputs


def test_the_third_model_maps_to_its_own_names():
    assert build(SKETCH, modality="scribble", modality_strength=1.5, num_samples=6, width=0, height=0) == {
        "text": "a stone bridge",
        "conditioningImages": ["asset_map1"],
        "controlType": "scribble",
        "controlWeight": 1.5,
        "numImages": 6,
        "steps": 28,
        "cfg_scale": 3.5,
        "seed": 7,
        "outputWidth": 768,
        "outputHeight": 768,
    }


def test_lora_types_are_checked_when_known():
    model = declared(ZIMAGE)
    mapped = di.map_request(model, fields(loras=(("model_emu-flux-lora-ink", 0.8),)))
    with pytest.raises(ValidationError) as info:
        di.validate_body(model, mapped.body, params=mapped.params, model_types=types_of(model, mapped.body))
    assert info.value.field == "loras" and "zimage-lora" in str(info.value) and "flux.1-lora" in str(info.value)
    # an unknown type is not checked (the client could not read that model)
    assert di.validate_body(model, mapped.body, model_types={})["loras"] == ["model_emu-flux-lora-ink"]


# --------------------------------------------------------------------------- grammars


def test_lora_grammar():
    assert di.parse_loras("") == ()
    assert di.parse_loras(" model_a:0.8 , model_b,, model_c:1") == (
        ("model_a", 0.8),
        ("model_b", None),
        ("model_c", 1.0),
    )
    assert di.parse_loras(["model_a", "model_b:0.5"]) == (("model_a", None), ("model_b", 0.5))
    for bad in ("model_a:", "model_a:x", "model_a:0.5:1", "../etc", "model a", "model_a:nan", ":0.5"):
        with pytest.raises(ValidationError) as info:
            di.parse_loras(bad)
        assert info.value.field == "loras"
    with pytest.raises(ValidationError):
        di.parse_loras(",".join(["model_a"] * (di.MAX_LORA_ENTRIES + 1)))


def test_input_assignments_and_extra_inputs():
    assert di.parse_assignment("guidance=4") == ("guidance", 4)
    assert di.parse_assignment("controlModality=depth") == ("controlModality", "depth")
    assert di.parse_assignment('loras=["model_a"]') == ("loras", ["model_a"])
    assert di.parse_assignment("note=a=b") == ("note", "a=b")
    assert di.collect_assignments(["a=1", "a=2"]) == {"a": 2}
    assert di.parse_extra_inputs("") == {} and di.parse_extra_inputs('{"x": [1]}') == {"x": [1]}
    for bad in ("[1]", "{nope", '{"bad name": 1}'):
        with pytest.raises(ValidationError) as info:
            di.parse_extra_inputs(bad)
        assert info.value.field == "extra_inputs"
    with pytest.raises(ValidationError):
        di.parse_assignment("noequals")


# --------------------------------------------------------------------------- properties

_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z").filter(lambda s: ".." not in s)
_scales = st.one_of(st.none(), st.floats(min_value=-10, max_value=10, allow_nan=False).map(lambda x: round(x, 3)))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_ids, _scales), max_size=8))
def test_lora_grammar_round_trips(loras):
    parsed = di.parse_loras(di.format_loras(loras))
    assert [m for m, _ in parsed] == [m for m, _ in loras]
    for (_, got), (_, want) in zip(parsed, loras, strict=True):
        assert (got is None) == (want is None) and (want is None or math.isclose(got, want, abs_tol=1e-6))


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_lora_grammar_only_ever_raises_validation_errors(text):
    try:
        out = di.parse_loras(text)
    except ValidationError as exc:
        assert exc.field == "loras"
    else:
        assert len(out) <= di.MAX_LORA_ENTRIES and all(":" not in m for m, _ in out)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_decl = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "prompt", "controlImage", "loras", "width"])},
    optional={
        "type": st.sampled_from([*di.INPUT_TYPES, "weird", 3]),
        "min": _json,
        "max": _json,
        "step": _json,
        "allowedValues": _json,
        "maxLength": _json,
        "minLength": _json,
        "required": _json,
        "modelTypes": _json,
        "default": _json,
        "inputs": _json,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(_decl, _json), max_size=6),
    st.dictionaries(st.sampled_from(["a", "b", "prompt", "loras", "x"]), _json),
)
def test_any_schema_and_body_give_violations_never_crashes(inputs, body):
    model = di.DeclaredModel.from_record({"id": "model_fuzz", "inputs": inputs})
    for mode in (di.CLIENT, di.SERVER):
        out, violations = di.check_body(model, body, mode=mode, model_types={"model_x": "flux.1-lora"})
        assert isinstance(out, dict) and all(isinstance(v, di.Violation) for v in violations)
        for v in violations:
            assert v.reason and v.status in (400, 404) and isinstance(v.error("model_fuzz"), ValidationError)
        if not violations and mode == di.CLIENT:
            assert set(out) <= set(model.names)


# --------------------------------------------------------------------------- helpers


def test_a_composition_in_the_lora_list_goes_to_the_single_model_input():
    model = declared(FLUX)
    comp = "model_emu-flux-composition"
    types = {m: models_catalog.model_type(m) for m in (comp, "model_emu-flux-lora-ink")}
    single, rest = di.assign_loras(model, (("model_emu-flux-lora-ink", 0.5), (comp, None)), types)
    assert single == comp and rest == (("model_emu-flux-lora-ink", 0.5),)
    with pytest.raises(ValidationError) as info:
        di.assign_loras(model, ((comp, 0.5),), types)
    assert info.value.field == "loras" and "carries its own" in str(info.value)
    with pytest.raises(ValidationError):
        di.assign_loras(model, ((comp, None),), types, lora_model="model_other")
    # unknown types stay in the list (checked by Scenario)
    assert di.assign_loras(model, (("model_unknown", None),), {}) == (None, (("model_unknown", None),))


def test_fields_from_a_request_like_object():
    class Req:
        prompt = "p"
        modality = "depth:0.5"
        control_image_id = "asset_m"
        control_image = None
        image = None
        num_samples = 2
        width = 0
        height = 512
        loras = "model_a:0.4, model_b"
        extra_inputs = '{"controlEnd": 0.6}'

    f = di.fields_from_request(Req(), source_size=(100, 50))
    assert f.control_image == "asset_m" and f.loras == (("model_a", 0.4), ("model_b", None))
    assert f.extra_inputs == {"controlEnd": 0.6} and f.height == 512 and f.source_size == (100, 50)
    assert di.fields_from_request(Req(), control_image="asset_placeholder").control_image == "asset_placeholder"


def test_model_summary_for_the_frontend():
    z = di.model_summary(declared(ZIMAGE))
    assert z["roles"]["modality"] is None and "modality" in z["unused_widgets"]
    assert z["price_inputs"] == ["numOutputs", "numInferenceSteps"]
    assert z["price_widgets"] == ["model_id", "num_samples", "num_inference_steps"]
    assert z["size"]["width"] == {"input": "width", "min": 128, "max": 2048, "step": 16, "default": None}
    assert z["loras"]["max_items"] == 6 and z["loras"]["scale_max"] == 2
    flux = di.model_summary(declared(FLUX))
    assert flux["modalities"][:2] == ["canny", "tile"] and flux["unused_widgets"] == ["negative_prompt"]
    assert di.can_do_controlnet({"capabilities": ["txt2img", "controlnet"]})
    assert not di.can_do_controlnet({"capabilities": "controlnet"})


def test_record_cache_expires_and_is_scoped():
    now = [0.0]
    cache = di.RecordCache(ttl=10, max_entries=2, clock=lambda: now[0])
    cache.put("account-a", "model_x", 1)
    assert cache.get("account-a", "model_x") == 1 and cache.get("account-b", "model_x") is None
    now[0] = 11
    assert cache.get("account-a", "model_x") is None
    cache.put("a", "1", 1)
    cache.put("a", "2", 2)
    cache.put("a", "3", 3)  # evicts the oldest
    assert cache.get("a", "1") is None and cache.get("a", "3") == 3
