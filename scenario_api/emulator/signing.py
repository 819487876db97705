"""Signed, expiring asset URLs in the shape of Scenario's CDN (CloudFront style).

``/cdn/assets/<id>.png?Expires=<unix>&Policy=<b64>&Signature=<hmac>&Key-Pair-Id=EMU``.
The HMAC key is random per emulator instance, so a URL is only valid on the
server that issued it, and any edit of the query breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlencode

KEY_PAIR_ID = "EMU"
FILE_PREFIX = "/cdn/assets/"


def file_path(asset_id: str) -> str:
    return f"{FILE_PREFIX}{asset_id}.png"


class UrlSigner:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _signature(self, path: str, expires: int, policy: str) -> str:
        mac = hmac.new(self._key, f"{path}\n{expires}\n{policy}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def sign(self, origin: str, asset_id: str, ttl: float, now: float | None = None) -> str:
        """A full URL for the asset's file, valid for ``ttl`` seconds."""
        path = file_path(asset_id)
        expires = int((time.time() if now is None else now) + ttl)
        policy_doc = {"Statement": [{"Resource": path, "Condition": {"DateLessThan": {"EpochTime": expires}}}]}
        policy = base64.urlsafe_b64encode(json.dumps(policy_doc, separators=(",", ":")).encode()).decode().rstrip("=")
        query = urlencode(
            {
                "Expires": expires,
                "Policy": policy,
                "Signature": self._signature(path, expires, policy),
                "Key-Pair-Id": KEY_PAIR_ID,
            }
        )
        return f"{origin}{path}?{query}"

    def check(self, path: str, query: dict[str, str], now: float | None = None) -> str | None:
        """None if the query is a valid, unexpired signature for ``path``; else the 403 reason."""
        try:
            expires = int(query.get("Expires", ""))
        except ValueError:
            return "Missing or malformed signature"
        policy = query.get("Policy", "")
        given = query.get("Signature", "")
        if query.get("Key-Pair-Id") != KEY_PAIR_ID or not hmac.compare_digest(
            given.encode(), self._signature(path, expires, policy).encode()
        ):
            return "Invalid signature"
        if (time.time() if now is None else now) >= expires:
            return "Request has expired"
        return None
