"""Hostile files: the credentials JSON (and the reader the ledger uses) in every bad state.

Each bad state gives an error that names the path and never holds the file's content, not in
``str``, not in ``repr``, not in a chained exception.
"""

from __future__ import annotations

import json
import os
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pack_loader import submodule

from scenario_api import safe_files
from scenario_api.errors import ConfigurationError
from scenario_api.safe_files import UnsafeFileError, decode_text, json_depth, loads_json_object, read_json_object

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy

SECRET = "s3cr3t-VALUE-never-shown-0042"
GOOD = {"api_key": "key-abc", "api_secret": SECRET, "project_id": "proj_1"}


def everything_said(exc: BaseException) -> str:
    """str + repr of the exception and of every exception chained to it."""
    parts = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts += [str(exc), repr(exc), repr(getattr(exc, "args", ()))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def assert_clean(exc: BaseException, path) -> None:
    text = everything_said(exc)
    assert str(path) in str(exc)
    assert SECRET not in text
    assert "key-abc" not in text


BAD_CONTENTS = {
    "utf16_bom": json.dumps(GOOD).encode("utf-16"),
    "utf16_le_no_bom": json.dumps(GOOD).encode("utf-16-le"),
    "utf16_be_no_bom": json.dumps(GOOD).encode("utf-16-be"),
    "utf32": json.dumps(GOOD).encode("utf-32"),
    "latin1": json.dumps(GOOD).replace("VALUE", "VAL\u00e9").encode("latin-1"),
    "list": json.dumps([GOOD]).encode(),
    "string": json.dumps(SECRET).encode(),
    "deep": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '", "x": ' + "[" * 500 + "]" * 500 + "}").encode(),
    "nan": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '", "n": NaN}').encode(),
    "infinity": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '", "n": -Infinity}').encode(),
    "overflow": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '", "n": 1e999}').encode(),
    "duplicate": ('{"api_key": "key-abc", "api_secret": "x", "api_secret": "' + SECRET + '"}').encode(),
    "truncated": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '"').encode(),
    "huge_int": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '", "n": ' + "9" * 5000 + "}").encode(),
    "nul": ('{"api_key": "key-abc",\x00 "api_secret": "' + SECRET + '"}').encode(),
    "empty": b"   \n",
    "too_large": ('{"api_key": "key-abc", "api_secret": "' + SECRET + '", "pad": "' + "x" * 300_000 + '"}').encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_CONTENTS))
def test_bad_contents_name_the_path_and_never_the_content(tmp_path, name):
    path = tmp_path / "credentials.json"
    path.write_bytes(BAD_CONTENTS[name])
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(path, what="credentials file")
    assert_clean(info.value, path)
    assert info.value.path == str(path)
    assert isinstance(info.value, ConfigurationError)


def test_messages_say_what_to_do(tmp_path):
    path = tmp_path / "c.json"
    cases = {
        "utf16_bom": "UTF-16",
        "utf16_le_no_bom": "UTF-16",
        "utf32": "UTF-32",
        "latin1": "not UTF-8",
        "list": "not a list",
        "deep": "nested too deeply",
        "nan": "non-finite",
        "overflow": "too large to represent",
        "duplicate": "repeats the key 'api_secret'",
        "truncated": "not valid JSON",
        "too_large": "too large",
        "empty": "empty",
    }
    for name, phrase in cases.items():
        path.write_bytes(BAD_CONTENTS[name])
        with pytest.raises(UnsafeFileError) as info:
            read_json_object(path)
        assert phrase in str(info.value), (name, str(info.value))


def test_a_utf8_bom_is_tolerated(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert read_json_object(path) == GOOD


def test_missing_file_is_none_or_an_error(tmp_path):
    assert read_json_object(tmp_path / "absent.json") is None
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(tmp_path / "absent.json", missing_ok=False)
    assert "does not exist" in str(info.value)


def test_symlink_is_refused_even_to_a_good_file(tmp_path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps(GOOD))
    link = tmp_path / "credentials.json"
    link.symlink_to(real)
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(link)
    assert_clean(info.value, link)
    assert "symbolic link" in str(info.value)
    assert safe_files.check_regular_file(link, allow_symlink=True) is True


def test_a_dangling_symlink_is_refused(tmp_path):
    link = tmp_path / "credentials.json"
    link.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(link)
    assert "symbolic link" in str(info.value)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "credentials.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_json_object(fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader before failing
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("reading a FIFO blocked")
    [exc] = outcome
    assert isinstance(exc, UnsafeFileError) and "named pipe" in str(exc) and str(fifo) in str(exc)


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "credentials.json"
    folder.mkdir()
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(folder)
    assert "a directory" in str(info.value) and str(folder) in str(info.value)


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(GOOD))
    real_open = os.open

    def denied(p, flags, *a):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, flags, *a)

    monkeypatch.setattr(safe_files.os, "open", denied)
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(path)
    assert_clean(info.value, path)
    assert "permission denied" in str(info.value)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_for_real(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(GOOD))
    path.chmod(0)
    with pytest.raises(UnsafeFileError) as info:
        read_json_object(path)
    assert "permission denied" in str(info.value)


# --------------------------------------------------------------------------- the credentials file in the nodes


def write_creds(comfy, data: bytes):
    path = comfy.user_dir / "scenario" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_bytes(data)
    return path


def test_utf16_credentials_file_never_leaks_the_secret(comfy, pack, monkeypatch):
    """Regression: a UTF-16 file used to raise UnicodeDecodeError, whose repr held the whole file."""
    credentials = submodule("nodes.credentials")
    errors = submodule("scenario_api.errors")
    monkeypatch.delenv("SCENARIO_API_KEY", raising=False)
    monkeypatch.delenv("SCENARIO_API_SECRET", raising=False)
    path = write_creds(comfy, json.dumps(GOOD).encode("utf-16"))
    with pytest.raises(errors.ConfigurationError) as info:
        credentials.resolve_settings()
    text = everything_said(info.value)
    assert SECRET not in text and "key-abc" not in text
    assert not isinstance(info.value, UnicodeError)
    assert str(path) in str(info.value) and "UTF-16" in str(info.value) and "save it as UTF-8" in str(info.value)
    assert str(info.value).startswith("Scenario: ")


@pytest.mark.parametrize("name", ["utf16_le_no_bom", "deep", "nan", "list", "duplicate", "huge_int"])
def test_every_bad_credentials_file_is_a_clean_configuration_error(comfy, pack, monkeypatch, name):
    credentials = submodule("nodes.credentials")
    errors = submodule("scenario_api.errors")
    monkeypatch.delenv("SCENARIO_API_KEY", raising=False)
    monkeypatch.delenv("SCENARIO_API_SECRET", raising=False)
    path = write_creds(comfy, BAD_CONTENTS[name])
    with pytest.raises(errors.ConfigurationError) as info:
        credentials.resolve_settings()
    assert SECRET not in everything_said(info.value)
    assert str(path) in str(info.value)


def test_bom_credentials_file_works_in_the_nodes(comfy, pack, monkeypatch):
    credentials = submodule("nodes.credentials")
    monkeypatch.delenv("SCENARIO_API_KEY", raising=False)
    monkeypatch.delenv("SCENARIO_API_SECRET", raising=False)
    write_creds(comfy, b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    s = credentials.resolve_settings()
    assert s.project_id == "proj_1" and SECRET not in repr(s)


def test_a_symlinked_credentials_file_is_refused_in_the_nodes(comfy, pack, monkeypatch, tmp_path):
    credentials = submodule("nodes.credentials")
    errors = submodule("scenario_api.errors")
    monkeypatch.delenv("SCENARIO_API_KEY", raising=False)
    monkeypatch.delenv("SCENARIO_API_SECRET", raising=False)
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps(GOOD))
    path = comfy.user_dir / "scenario" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(real)
    with pytest.raises(errors.ConfigurationError) as info:
        credentials.resolve_settings()
    assert "symbolic link" in str(info.value) and SECRET not in everything_said(info.value)


# --------------------------------------------------------------------------- properties

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_json_object_reads_back_equal(obj):
    assert loads_json_object(json.dumps(obj), "mem.json") == obj


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_an_object_or_a_clean_error(text):
    marker = "ZQXJ-" + SECRET
    doc = text + marker
    try:
        result = loads_json_object(doc, "mem.json")
    except UnsafeFileError as exc:
        assert marker not in everything_said(exc)
        assert "mem.json" in str(exc)
    else:
        assert isinstance(result, dict)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_fail_cleanly(data):
    try:
        text = decode_text(data, "mem.json")
    except UnsafeFileError as exc:
        assert "mem.json" in str(exc)
        said = everything_said(exc)
        assert data.hex() not in said or len(data) < 2
    else:
        assert isinstance(text, str) and "\x00" not in text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.sampled_from(["[", "{", '{"a":']))
def test_depth_is_bounded_and_never_recurses(depth, opener):
    doc = opener * depth
    measured = json_depth(doc, limit=safe_files.MAX_JSON_DEPTH)
    assert measured == min(depth, safe_files.MAX_JSON_DEPTH + 1)
    if depth > safe_files.MAX_JSON_DEPTH:
        with pytest.raises(UnsafeFileError, match="nested too deeply"):
            loads_json_object(doc, "mem.json")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet='[]{}"\\ab', max_size=200))
def test_depth_ignores_brackets_inside_strings(text):
    doc = json.dumps({"s": text})
    assert json_depth(doc) == 1
