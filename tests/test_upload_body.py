"""A big upload body is built in pieces and sent in pieces: it must arrive whole, also when it is sent again."""

from __future__ import annotations

import io

import numpy as np
from helpers import fast_client
from PIL import Image


def _noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(11).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


async def test_a_many_piece_upload_arrives_whole_and_is_resent_whole(emulator, settings):
    png = _noise_png(400)  # about 480 KB: several base64 pieces
    assert len(png) > 3 * 2**17
    emulator.fault(target="POST /v1/assets", kind="status", status=429, retry_after=0)
    async with fast_client(settings) as client:
        asset = await client.upload_image(png, "noise.png")
        stored = await client.download_asset(asset.asset_id)
    assert [e["status"] for e in emulator.requests("POST", "/v1/assets")] == [429, 200]
    with Image.open(io.BytesIO(stored)) as back, Image.open(io.BytesIO(png)) as sent:
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(sent.convert("RGB")))
