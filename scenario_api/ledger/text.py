"""Text hygiene: what the ledger stores never holds a signed URL, a secret pair or control characters."""

from __future__ import annotations

import re
from typing import Any

from .constants import MAX_TEXT

_TOKEN = re.compile(r"[^\s\"'<>]+")
_SECRET_PAIR = re.compile(
    r"(?i)\b(signature|policy|key-pair-id|x-amz-[a-z-]+|sig|token|access_token|api_secret|secret|password)"
    r"(\s*[=:]\s*)[^\s&\"'<>,;]+"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_url(url: str) -> str:
    """``scheme://host/path`` of a URL: the query, fragment and user-info dropped."""
    text = str(url).strip()
    for sep in ("?", "#"):
        text = text.split(sep, 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}" if sep else text


def _strip_url_token(match: re.Match[str]) -> str:
    """One whitespace/quote-delimited token: from its ``//`` on, no user-info, query or fragment (linear time)."""
    token = match.group(0)
    start = token.find("//")
    if start < 0:
        return token
    head, rest = token[:start], token[start:]
    cuts = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    if cuts:
        rest = rest[: min(cuts)]
    slash = rest.find("/", 2)
    authority = rest[2 : slash if slash >= 0 else len(rest)]
    if "@" in authority:
        rest = "//" + rest[2 + authority.rindex("@") + 1 :]
    return head + rest


def scrub_text(text: Any, limit: int = MAX_TEXT) -> str:
    """A copy of ``text`` safe to store: no URL query strings, no ``signature=...`` pairs, no control chars."""
    value = "" if text is None else str(text)
    value = _TOKEN.sub(_strip_url_token, value)
    value = _SECRET_PAIR.sub(lambda m: m.group(1) + m.group(2) + "<redacted>", value)
    value = _CONTROL.sub(" ", value)
    return value if len(value) <= limit else value[: limit - 3] + "..."
