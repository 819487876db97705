"""The emulator's model catalog and custom route, against the recorded Scenario behaviour (issue 8).

Over real loopback HTTP: model records and paginated lists, the custom route's
validation by the declared inputs with Scenario's recorded texts, and prices
shaped like the recorded dry runs.
"""

from __future__ import annotations

import pytest

FLUX = "model_bfl-flux-1-dev"
ZIMAGE = "model_z-image"
INK, CLAY = "model_emu-flux-lora-ink", "model_emu-flux-lora-clay"
COMPOSITION = "model_emu-flux-composition"
PROMPT = {"prompt": "a small wooden cabin in a snowy forest"}
RECORDED_PRICE = {
    "creativeUnitsCost": 10.75,
    "creativeUnitsDiscount": 0,
    "costDetails": {"custom-generation": 9.0, "quality-gate": 1.75},
}


@pytest.fixture
def api(emulator):
    with emulator.api() as client:
        yield client


def _all_pages(api, **params) -> tuple[list[dict], int]:
    rows, pages, token = [], 0, None
    while True:
        query = dict(params, **({"paginationToken": token} if token else {}))
        data = api.get("/models", params=query).json()
        rows += data["models"]
        pages += 1
        token = data.get("nextPaginationToken")
        if not token:
            return rows, pages


def test_lists_are_private_by_default_paginated_and_carry_no_inputs(api):
    private, _ = _all_pages(api)
    assert private and {r["privacy"] for r in private} == {"private"}
    assert {"model_my-flux-style", "model_my-composition", "model_my-zimage-style"} <= {r["id"] for r in private}
    public, pages = _all_pages(api, privacy="public", pageSize=3)
    ids = [r["id"] for r in public]
    assert pages >= 4 and len(ids) == len(set(ids))
    assert {FLUX, ZIMAGE, "flux.1-dev", INK, COMPOSITION, "model_emu-flux2-lora"} <= set(ids)
    assert all("inputs" not in r and "uiConfig" not in r for r in public + private)
    loras, _ = _all_pages(api, privacy="public", type="flux.1-lora")
    assert loras and {r["type"] for r in loras} == {"flux.1-lora"}
    assert api.get("/models", params={"privacy": "team"}).status_code == 400
    assert api.get("/models", params={"pageSize": 501}).status_code == 400


def test_short_pages_are_followed(api, emulator):
    emulator.config(short_pages=True)
    rows, pages = _all_pages(api, privacy="public", pageSize=50)
    assert pages >= 2 and FLUX in {r["id"] for r in rows}


def test_records_carry_declared_inputs_and_ui_config(api):
    flux = api.get(f"/models/{FLUX}").json()["model"]
    z = api.get(f"/models/{ZIMAGE}").json()["model"]
    fi = {i["name"]: i for i in flux["inputs"]}
    zi = {i["name"]: i for i in z["inputs"]}
    assert fi["controlImage"]["type"] == "file" and zi["controlImage"]["type"] == "file_array"
    assert fi["controlModality"]["allowedValues"][0] == "canny" and "controlModality" not in zi
    assert zi["controlnetConditioningScale"]["required"] == {"when": {"inferenceType": ["controlnet"]}}
    assert zi["loras"]["modelTypes"] == ["zimage-lora", "zimage-turbo-lora", "zimage-de-turbo-lora"]
    assert fi["loras"]["maxLength"] == 6 and fi["lorasScale"]["max"] == 2
    assert flux["uiConfig"]["lorasComponent"]["scaleInput"] == "lorasScale"
    assert z["uiConfig"]["resolutionComponent"]["presets"][0] == {"label": "Auto (match input)"}
    lora = api.get(f"/models/{INK}").json()["model"]
    assert lora["type"] == "flux.1-lora" and lora["custom"] is False and "controlnet" in lora["capabilities"]
    assert lora["compliantModelIds"] == ["flux.1-dev", "flux.1-schnell"] and "inputs" not in lora
    comp = api.get(f"/models/{COMPOSITION}").json()["model"]
    assert comp["type"] == "flux.1-composition" and [c["modelId"] for c in comp["concepts"]] == [INK, CLAY]
    assert api.get("/models/model_emu-zimage-lora-neon").json()["model"]["type"] == "zimage-lora"


def test_recorded_dry_runs_over_http(api):
    def dry(model_id, body):
        r = api.post(f"/generate/custom/{model_id}", params={"dryRun": "true"}, json=body)
        return r.status_code, r.json()

    for body in (
        PROMPT,
        {**PROMPT, "loras": [INK], "lorasScale": [0.8]},
        {**PROMPT, "loras": [INK, CLAY], "lorasScale": [0.8, 0.5]},
        {**PROMPT, "modelId": INK},
        {**PROMPT, "modelId": COMPOSITION},
        {**PROMPT, "modelId": COMPOSITION, "loras": [INK], "lorasScale": [0.5]},
        {**PROMPT, "loras": [INK]},
        {**PROMPT, "loras": [INK], "lorasScale": [-0.5]},
    ):
        assert dry(FLUX, body) == (269, RECORDED_PRICE), body
    assert dry(FLUX, {**PROMPT, "loras": [INK], "lorasScale": [3.0]}) == (
        400,
        {"reason": "Input lorasScale must be at most 2"},
    )
    assert dry(FLUX, {**PROMPT, "loras": [INK] * 7, "lorasScale": [0.5] * 7}) == (
        400,
        {"reason": "Input loras must be at most 6 items long"},
    )
    assert dry(FLUX, {**PROMPT, "loras": ["model_emu-flux2-lora"], "lorasScale": [0.8]}) == (
        400,
        {"reason": "Invalid model(s): model_emu-flux2-lora.\nAllowed model types: flux.1-lora, flux.1-composition"},
    )
    assert dry(FLUX, {**PROMPT, "loras": [COMPOSITION], "lorasScale": [0.8]}) == (
        400,
        {"reason": f"Invalid model(s): {COMPOSITION}.\nAllowed model types: flux.1-lora"},
    )
    assert dry(FLUX, {**PROMPT, "loras": ["model_FIXTUREMISSING"], "lorasScale": [0.8]}) == (
        404,
        {"reason": "Model model_FIXTUREMISSING not found"},
    )
    for direct in (INK, COMPOSITION, "model_emu-flux2-lora"):
        assert dry(direct, {**PROMPT, "aspectRatio": "1:1"}) == (
            400,
            {"reason": "Custom models only are supported for this endpoint"},
        )
    assert dry("model_nope", PROMPT) == (404, {"reason": "Model model_nope not found"})
    assert api.get("/jobs").json()["jobs"] == []


def test_prices_follow_cost_impact_inputs(api):
    def price(model_id, body, dry_run="true"):
        r = api.post(f"/generate/custom/{model_id}", params={"dryRun": dry_run}, json=body)
        assert r.status_code == 269, r.text
        return r.json()

    z = price(ZIMAGE, PROMPT)  # 4 outputs by default
    assert z["costDetails"] == {"custom-generation": 16.0, "quality-gate": 1.75} and z["creativeUnitsCost"] == 17.75
    assert price(ZIMAGE, {**PROMPT, "numOutputs": 1, "numInferenceSteps": 56})["costDetails"]["custom-generation"] == 8
    assert price(FLUX, {**PROMPT, "numOutputs": 2}, dry_run="api")["creativeUnitsCost"] == 19.75
    assert price(FLUX, {**PROMPT, "width": 2048, "height": 2048}) == RECORDED_PRICE  # size has no costImpact


def test_z_image_job_with_a_file_array_control_and_no_job_on_violations(api, emulator):
    ok = {**PROMPT, "controlImage": ["asset_demo_depth"], "controlnetConditioningScale": 0.5, "numOutputs": 2}
    for bad, reason in (
        ({**ok, "controlImage": "asset_demo_depth"}, "Input controlImage must be an array of asset ids"),
        ({**ok, "controlnetConditioningScale": 1.5}, "Input controlnetConditioningScale must be at most 1"),
        ({k: v for k, v in ok.items() if k != "controlnetConditioningScale"}, "required"),
        ({**ok, "width": 1000, "height": 1024}, "Input width must be a multiple of 16"),
        ({**ok, "loras": [INK], "lorasScale": [1]}, "Allowed model types: zimage-lora"),
    ):
        r = api.post(f"/generate/custom/{ZIMAGE}", json=bad)
        assert r.status_code == 400 and reason in r.json()["reason"], (bad, r.text)
    assert api.get("/jobs").json()["jobs"] == []
    r = api.post(f"/generate/custom/{ZIMAGE}", json={**ok, "loras": ["model_my-zimage-style"], "lorasScale": [0.9]})
    assert r.status_code == 200, r.text
    job = r.json()["job"]
    assert job["jobType"] == "custom" and job["metadata"]["input"]["controlImage"] == ["asset_demo_depth"]
    assert job["metadata"]["input"]["modelId"] == ZIMAGE and r.json()["creativeUnitsCost"] == 9.75


def test_a_lora_in_the_model_id_input_is_echoed_as_sent(api):
    body = {**PROMPT, "controlImage": "asset_demo_canny", "modelId": INK, "numOutputs": 1}
    r = api.post(f"/generate/custom/{FLUX}", json=body)
    assert r.status_code == 200, r.text
    echo = r.json()["job"]["metadata"]["input"]
    assert echo["modelId"] == INK and echo["type"] == "custom"
