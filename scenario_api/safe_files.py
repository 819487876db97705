"""Reading the pack's own files without trusting them.

The pack reads two files it did not necessarily write: the credentials JSON
(``<user dir>/scenario/credentials.json``, edited by hand, possibly in an
editor that saves UTF-16) and the job ledger (a SQLite file other processes
write). Either can be in a bad state: the wrong encoding, not JSON, a list
instead of an object, nested absurdly deep, a FIFO that would block a read
forever, a symlink pointing somewhere else, a directory, unreadable, or far
too large.

Every such state ends in :class:`UnsafeFileError`, whose message names the
path and says what to do, and **never shows the file's content**: the
credentials file holds a secret, and Python's own errors would happily quote
it (a ``UnicodeDecodeError`` keeps the whole input in ``.object`` and its
repr; ``json.JSONDecodeError`` keeps it in ``.doc``). Errors are raised
``from None`` so no such exception rides along as ``__context__`` either.

A UTF-8 byte-order mark is tolerated (Windows tools write one and it carries
no meaning); a UTF-16 or UTF-32 file is refused with "save it as UTF-8".

Public functions: :func:`check_regular_file`, :func:`read_bytes`,
:func:`decode_text`, :func:`loads_json_object`, :func:`read_json_object`,
:func:`json_depth`.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "UnsafeFileError",
    "check_regular_file",
    "read_bytes",
    "decode_text",
    "loads_json_object",
    "read_json_object",
    "json_depth",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
]

MAX_JSON_BYTES = 256 * 1024  # a credentials file is a few hundred bytes
MAX_JSON_DEPTH = 32

_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class UnsafeFileError(ConfigurationError):
    """A file the pack reads is missing a property it needs; ``path`` names it.

    The message never contains any of the file's bytes.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, *, what: str = "file") -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"The {what} {self.path} {problem}")


def _describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_regular_file(
    path: str | os.PathLike[str], *, what: str = "file", missing_ok: bool = True, allow_symlink: bool = False
) -> bool:
    """True if ``path`` is a regular file, False if it is absent (and ``missing_ok``).

    Raises :class:`UnsafeFileError` for a symlink (unless ``allow_symlink``),
    a directory, a FIFO, a socket or a device, or when it cannot be inspected.
    Nothing is opened, so a FIFO never blocks.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if missing_ok:
            return False
        raise UnsafeFileError(path, "does not exist", what=what) from None
    except OSError as exc:
        raise UnsafeFileError(path, f"cannot be inspected ({_os_reason(exc)})", what=what) from None
    if stat.S_ISLNK(info.st_mode):
        if not allow_symlink:
            raise UnsafeFileError(
                path, "is a symbolic link; replace it with the file itself (links are not followed)", what=what
            )
        try:
            info = os.stat(path)
        except OSError as exc:
            raise UnsafeFileError(
                path, f"is a symbolic link that cannot be followed ({_os_reason(exc)})", what=what
            ) from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(path, f"is {_describe_mode(info.st_mode)}, not a regular file", what=what)
    return True


def _os_reason(exc: OSError) -> str:
    """A short reason for an OSError that holds no path or content (``strerror`` only)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def read_bytes(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_JSON_BYTES,
    what: str = "file",
    missing_ok: bool = True,
) -> bytes | None:
    """The bytes of a regular file of at most ``max_bytes``; None if absent and ``missing_ok``.

    Opened with ``O_NOFOLLOW`` and ``O_NONBLOCK`` where the platform has them
    (a symlink swapped in after the check is refused; a FIFO swapped in never
    blocks), then checked again on the open descriptor.
    """
    if not check_regular_file(path, what=what, missing_ok=missing_ok):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise UnsafeFileError(path, "does not exist", what=what) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(path, "is a symbolic link; replace it with the file itself", what=what) from None
        raise UnsafeFileError(path, f"cannot be read ({_os_reason(exc)})", what=what) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(path, f"is {_describe_mode(info.st_mode)}, not a regular file", what=what)
        if info.st_size > max_bytes:
            raise UnsafeFileError(path, f"is too large ({info.st_size} bytes; at most {max_bytes})", what=what)
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, min(65536, max_bytes + 1 - total))
            except OSError as exc:
                raise UnsafeFileError(path, f"cannot be read ({_os_reason(exc)})", what=what) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while we read it
                raise UnsafeFileError(path, f"is too large (more than {max_bytes} bytes)", what=what)
        return b"".join(chunks)
    finally:
        os.close(fd)


def decode_text(data: bytes, path: str | os.PathLike[str], *, what: str = "file") -> str:
    """``data`` as UTF-8 text (a UTF-8 BOM is dropped); UnsafeFileError otherwise, never quoting it."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            raise UnsafeFileError(path, f"is saved as {name}; save it as UTF-8 (without BOM)", what=what)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    elif len(data) >= 4 and (data[1:4:2] == b"\x00\x00" or data[0:3:2] == b"\x00\x00"):
        # UTF-16 without a BOM: every other byte of ASCII text is NUL.
        raise UnsafeFileError(path, "looks like UTF-16 text; save it as UTF-8", what=what)
    try:
        text = data.decode("utf-8")
        position = -1
    except UnicodeDecodeError as exc:
        # exc.object is the whole file: keep only the offset, and raise outside this block so the
        # UnicodeDecodeError is not even kept as __context__.
        text, position = "", exc.start
    if position >= 0:
        raise UnsafeFileError(
            path, f"is not UTF-8 text (undecodable byte at offset {position}); save it as UTF-8", what=what
        )
    if "\x00" in text:
        raise UnsafeFileError(path, "contains NUL characters; it is not a text file", what=what)
    return text


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """Greatest nesting depth of ``[`` / ``{`` outside strings, counting stops just past ``limit``.

    A linear scan with no recursion, so it is safe on any input; it does not
    validate the JSON (the parser does that afterwards).
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


class _Refused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"holds the non-finite number {name}")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # the key is the pack's own field name at worst; it is never a value
            raise _Refused(f"repeats the key {key[:40]!r}")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused("holds a number too large to represent")
    return value


def loads_json_object(
    text: str, path: str | os.PathLike[str], *, what: str = "file", max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Any]:
    """Parse ``text`` as one JSON object; UnsafeFileError (never quoting it) otherwise.

    Refused: nesting deeper than ``max_depth``, NaN / Infinity (and numbers
    that overflow to infinity), repeated keys, anything but an object at the
    top.
    """
    depth = json_depth(text, max_depth)
    if depth > max_depth:
        raise UnsafeFileError(path, f"is nested too deeply (more than {max_depth} levels)", what=what)
    problem = None
    try:
        data = json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_unique_object, parse_float=_finite_float
        )
    except _Refused as exc:
        problem = f"{exc}; fix or recreate it"
    except json.JSONDecodeError as exc:  # exc.doc is the whole text: keep line and column only
        problem = f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError):  # e.g. an integer with too many digits
        problem = "is not valid JSON"
    if problem is not None:
        # raised outside the except blocks: the parser's exception (holding the text) is not chained
        raise UnsafeFileError(path, problem, what=what)
    if not isinstance(data, Mapping):
        raise UnsafeFileError(path, f"must hold a JSON object {{...}}, not {_json_kind(data)}", what=what)
    return dict(data)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def read_json_object(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    missing_ok: bool = True,
) -> dict[str, Any] | None:
    """The JSON object in ``path`` (None if absent and ``missing_ok``); UnsafeFileError for any bad state."""
    data = read_bytes(Path(path), max_bytes=max_bytes, what=what, missing_ok=missing_ok)
    if data is None:
        return None
    text = decode_text(data, path, what=what)
    if not text.strip():
        raise UnsafeFileError(path, "is empty; it must hold a JSON object", what=what)
    return loads_json_object(text, path, what=what, max_depth=max_depth)
