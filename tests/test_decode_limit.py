"""The decoded-pixel limit holds with many decodes at once, and no process-wide ``warnings`` filter is touched."""

from __future__ import annotations

import struct
import threading
import warnings
import zlib

import pytest
from helpers import make_png

from scenario_api import imaging
from scenario_api.errors import ImageDecodeError


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny file whose header claims width x height gray pixels (nothing real behind it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_by_its_header():
    with pytest.raises(ImageDecodeError, match="too large to decode safely"):
        imaging.decode_image(bomb_png())


def test_the_limit_holds_in_every_thread_and_leaves_warnings_alone():
    filters_before = list(warnings.filters)
    small = make_png(32, 32)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(10):
            data = bomb_png() if (n + i) % 2 else small
            try:
                imaging.decode_image(data)
                result = "decoded-bomb" if data is not small else "ok"
            except ImageDecodeError as exc:
                result = "refused" if "too large" in str(exc) else f"other: {exc}"
            with lock:
                outcomes.append(result if data is not small else ("ok" if result == "ok" else f"small {result}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(set(outcomes)) == ["ok", "refused"], set(outcomes)
    assert outcomes.count("refused") == 40 and outcomes.count("ok") == 40
    assert warnings.filters == filters_before
