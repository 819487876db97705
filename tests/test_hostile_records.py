"""Hostile records and id lists: bounded parsers, no RecursionError, a ScenarioError naming the job id.

Property tests (Hypothesis) over the job / asset / quote record parsers and the nodes' id-list parser.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pack_loader import submodule

from scenario_api.errors import ScenarioError
from scenario_api.models import Asset, Job, Quote

pytest_plugins = ["pack_loader"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=15,
)
FIELDS = ["jobId", "status", "progress", "jobType", "metadata", "billing", "createdAt", "error", "hint"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8), json_values)
def test_any_job_record_parses_or_names_the_job(record, asset_ids):
    record = dict(record)
    meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    record["metadata"] = {**meta, "assetIds": asset_ids}
    try:
        job = Job.from_api({"job": record})
    except ScenarioError as exc:
        job_id = record.get("jobId")
        if isinstance(job_id, str) and job_id and len(job_id) <= 200:
            assert exc.job_id == job_id and job_id in str(exc)
    else:
        assert isinstance(job.job_id, str) and isinstance(job.asset_ids, tuple)
        assert all(isinstance(a, str) and a.startswith("asset_") for a in job.asset_ids)
        assert job.progress is None or job.progress == job.progress  # finite or absent, never NaN
        assert job.error is None or isinstance(job.error, str)


@pytest.mark.parametrize(
    "asset_ids",
    ["asset_abc", {"a": 1}, [["asset_a"]], [1, 2], ["asset_ok", "../../etc"], ["asset_x"] * 5000, 7],
)
def test_wrong_asset_ids_end_in_an_error_naming_the_job(asset_ids):
    with pytest.raises(ScenarioError) as info:
        Job.from_api({"job": {"jobId": "job_hostile1", "status": "success", "metadata": {"assetIds": asset_ids}}})
    assert info.value.job_id == "job_hostile1" and "job_hostile1" in str(info.value)


def test_nan_progress_and_odd_cost_details_are_harmless():
    job = Job.from_api({"job": {"jobId": "job_n", "progress": "nan", "billing": {"cuCost": "inf"}}})
    assert job.progress is None and job.cost is None
    for details in ("abc", [1, 2], ["ab"], None, 5):
        quote = Quote.from_api({"creativeUnitsCost": 1.5, "costDetails": details})
        assert quote.details == {} and quote.creative_units == 1.5
    with pytest.raises(ScenarioError):
        Quote.from_api({"creativeUnitsCost": float("nan")})


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "url", "mimeType", "status", "metadata", "kind"]), json_values))
def test_any_asset_record_parses(record):
    asset = Asset.from_api({"asset": record})
    assert isinstance(asset.asset_id, str) and (asset.url is None or isinstance(asset.url, str))


# --------------------------------------------------------------------------- id lists in the nodes


def test_deep_or_huge_id_lists_are_bounded(pack):
    ids = submodule("nodes.ids")
    ValidationError = submodule("scenario_api.errors").ValidationError  # noqa: N806 - the pack's own class
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValidationError):
        ids.parse_ids(deep, "asset", "asset_ids")
    assert ids.split_ids("[" * 50_000)  # no RecursionError: tokens, then a clear validation error
    with pytest.raises(ValidationError, match="at most"):
        ids.parse_ids("asset_a," * 3000, "asset", "asset_ids")
    with pytest.raises(ValidationError, match="characters"):
        ids.parse_ids("x" * 300_000, "job", "job_id")
    assert ids.parse_ids(json.dumps(["asset_a", "asset_b"]), "asset", "asset_ids") == ["asset_a", "asset_b"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.lists(st.text(max_size=20), max_size=5))
def test_the_id_list_parser_only_ever_raises_a_validation_error(text):
    ids = submodule("nodes.ids")
    ValidationError = submodule("scenario_api.errors").ValidationError  # noqa: N806 - the pack's own class
    try:
        out = ids.parse_ids(text, "asset", "asset_ids", required=False)
    except ValidationError as exc:
        assert "asset_ids" in str(exc)
    else:
        assert all(i.startswith("asset_") for i in out)
