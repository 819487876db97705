"""Fingerprints and canonical bodies: what makes two paid requests "the same" (never the secret)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .constants import KINDS
from .text import scrub_text, strip_url


def account_id(api_key: str) -> str:
    """A stable, non-reversible id of the account behind an API key (the key itself is never stored)."""
    key = (api_key or "").strip()
    if not key:
        raise ValueError("account_id needs the API key id")
    return "acct_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]  # as Credentials.account_id


_MAX_CANON_DEPTH = 24


def _data_url_hash(value: str) -> str:
    head, sep, payload = value.partition(",")
    if not sep:
        return "sha256-text:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    if head.lower().endswith(";base64"):
        try:
            raw = base64.b64decode(payload.strip(), validate=False)
        except (binascii.Error, ValueError):
            return "sha256-text:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    else:
        raw = payload.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _canon(value: Any, images: Mapping[str, str], depth: int) -> Any:
    if depth > _MAX_CANON_DEPTH:
        raise ValueError("request body nested too deeply to fingerprint")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a request body with a non-finite number cannot be fingerprinted")
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, str):
        if value in images:
            return "sha256:" + images[value]
        if value[:5].lower() == "data:":
            return _data_url_hash(value)
        if value.startswith(("http://", "https://")):
            return strip_url(value)
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"request body keys must be strings, got {type(key).__name__}")
            out[key] = _canon(item, images, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_canon(item, images, depth + 1) for item in value]
    raise TypeError(f"cannot fingerprint a value of type {type(value).__name__}")


def canonical_json(body: Any, images: Mapping[str, str] | None = None) -> str:
    """One text per meaning of ``body``: sorted keys, no spaces, ``1.0`` == ``1``.

    Images are named by content: a data URL becomes ``sha256:<digest of its
    bytes>`` (its MIME label does not matter), and any string found in
    ``images`` (asset id -> sha256 hex of the uploaded bytes) becomes the same
    ``sha256:...``, so an image re-uploaded after a restart under a new asset
    id still fingerprints the same. http(s) URLs lose their query (a signed
    URL changes on every fetch). Non-finite numbers raise ValueError.
    """
    canon = _canon(body, dict(images or {}), 0)
    return json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def fingerprint(
    kind: str,
    endpoint: str,
    body: Any,
    *,
    base_url: str,
    account: str,
    project_id: str | None = None,
    images: Mapping[str, str] | None = None,
) -> str:
    """sha256 (hex) of what makes two paid requests "the same": kind, endpoint, body, base URL, account, project.

    ``account`` is :func:`account_id` of the key (never the secret). Same
    fingerprint + same account + a succeeded record = a result that can be
    served again instead of paid for again.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    payload = {
        "v": 1,
        "kind": kind,
        "endpoint": str(endpoint),
        "base": strip_url(base_url).rstrip("/"),
        "account": str(account),
        "project": project_id or None,
        "body": json.loads(canonical_json(body, images)),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def node_origin(node_id: Any, prompt_id: Any) -> str:
    """The origin text of an intent made by a ComfyUI node."""
    return scrub_text(f"node {node_id} prompt {prompt_id}", 200)
