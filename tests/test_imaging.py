"""imaging.py: arrays <-> PNG <-> data URLs, decoding every common mode, clear errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from scenario_api.errors import ImageDecodeError
from scenario_api.imaging import (
    content_hash,
    decode_image,
    encode_image,
    encode_png,
    from_data_url,
    image_size,
    png_level,
    reencode_png,
    sniff_mime,
    split_alpha,
    to_data_url,
)


def _rng_image(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)


def _pil_bytes(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _mode_of(png: bytes) -> str:
    with Image.open(io.BytesIO(png)) as im:
        return im.mode


# --------------------------------------------------------------------------- encode


def test_rgb_roundtrip_is_exact_and_non_square_keeps_orientation():
    arr = _rng_image(37, 53, 3)
    png = encode_png(arr)
    assert _mode_of(png) == "RGB"
    decoded = decode_image(png)
    assert decoded.rgb.shape == (37, 53, 3)
    assert (decoded.width, decoded.height) == (53, 37)
    assert np.array_equal(decoded.rgb, arr)
    assert decoded.alpha is None and decoded.mime == "image/png"


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3)])
def test_gray_maps_become_single_channel_png(shape):
    gray = np.random.default_rng(1).integers(0, 256, size=(20, 30), dtype=np.uint8)
    arr = gray.reshape(shape) if len(shape) < 3 or shape[2] == 1 else np.repeat(gray[:, :, None], 3, axis=2)
    png = encode_png(arr)
    assert _mode_of(png) == "L"
    assert np.array_equal(decode_image(png).rgb[:, :, 0], gray)


def test_gray_if_equal_false_keeps_rgb():
    arr = np.full((8, 8, 3), 77, np.uint8)
    assert _mode_of(encode_png(arr, gray_if_equal=False)) == "RGB"


def test_rgba_keeps_alpha_and_opaque_alpha_is_dropped():
    arr = _rng_image(10, 12, 4)
    arr[0, 0, 3] = 0
    png = encode_png(arr)
    assert _mode_of(png) == "RGBA"
    decoded = decode_image(png)
    assert np.array_equal(decoded.alpha, arr[:, :, 3]) and np.array_equal(decoded.rgb, arr[:, :, :3])
    opaque = arr.copy()
    opaque[:, :, 3] = 255
    assert _mode_of(encode_png(opaque)) == "RGB"
    assert _mode_of(encode_png(arr, keep_alpha=False)) == "RGB"


def test_gray_with_alpha_becomes_la():
    arr = np.zeros((6, 6, 4), np.uint8)
    arr[:, :, :3] = 90
    arr[:, :, 3] = 128
    png = encode_png(arr)
    assert _mode_of(png) == "LA"
    decoded = decode_image(png)
    assert int(decoded.alpha[0, 0]) == 128 and int(decoded.rgb[0, 0, 1]) == 90


def test_encoding_is_deterministic():
    arr = _rng_image(16, 16, 3, seed=5)
    assert encode_png(arr) == encode_png(arr.copy())


def test_split_alpha_shapes():
    rgb, alpha = split_alpha(_rng_image(4, 5, 4))
    assert rgb.shape == (4, 5, 3) and alpha.shape == (4, 5)
    rgb, alpha = split_alpha(np.zeros((4, 5), np.uint8))
    assert rgb.shape == (4, 5, 3) and alpha is None


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((1, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_encode_rejects_wrong_dtype_or_shape_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        encode_png(bad)


# --------------------------------------------------------------------------- decode


def test_decode_palette_with_transparency():
    im = Image.new("P", (4, 3))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 0
    decoded = decode_image(_pil_bytes(im, transparency=0))
    assert decoded.alpha is not None
    assert int(decoded.alpha[0, 0]) == 0 and int(decoded.alpha[1, 1]) == 255
    assert tuple(decoded.rgb[1, 1]) == (0, 255, 0)


def test_decode_la_and_l():
    la = Image.new("LA", (3, 2), (200, 50))
    decoded = decode_image(_pil_bytes(la))
    assert tuple(decoded.rgb[0, 0]) == (200, 200, 200) and int(decoded.alpha[0, 0]) == 50
    decoded = decode_image(_pil_bytes(Image.new("L", (3, 2), 9)))
    assert decoded.alpha is None and tuple(decoded.rgb[1, 2]) == (9, 9, 9)


def test_decode_16_bit_gray_scales_without_wrapping():
    arr = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    im = Image.fromarray(arr)
    decoded = decode_image(_pil_bytes(im))
    assert decoded.rgb[:, :, 0].tolist() == [[0, 255], [128, 1]]


def test_decode_jpeg_and_webp():
    base = Image.new("RGB", (16, 8), (200, 30, 30))
    jpeg = decode_image(_pil_bytes(base, "JPEG", quality=95))
    assert jpeg.mime == "image/jpeg" and jpeg.rgb.shape == (8, 16, 3)
    assert abs(int(jpeg.rgb[4, 8, 0]) - 200) < 8
    webp = decode_image(_pil_bytes(base, "WEBP", lossless=True))
    assert webp.mime == "image/webp" and tuple(webp.rgb[0, 0]) == (200, 30, 30)
    cmyk = decode_image(_pil_bytes(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "JPEG"))
    assert cmyk.rgb.shape == (4, 4, 3)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, this is not an image at all", "Not an image"),
        (None, "Expected image bytes"),
    ],
)
def test_decode_errors_are_clear(data, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(data)


def test_decode_truncated_png():
    png = encode_png(_rng_image(64, 64, 3))
    with pytest.raises(ImageDecodeError, match="(?i)corrupt or truncated"):
        decode_image(png[: len(png) // 2])


def test_reencode_and_size():
    jpeg = _pil_bytes(Image.new("RGB", (30, 20), (10, 10, 10)), "JPEG")
    png = reencode_png(jpeg)
    assert sniff_mime(png) == "image/png" and image_size(png) == (30, 20)
    assert _mode_of(png) == "L"  # a gray JPEG map is sent as a one-channel PNG


# --------------------------------------------------------------------------- data URLs, hashes


def test_data_url_roundtrip():
    png = encode_png(_rng_image(5, 5, 3))
    url = to_data_url(png)
    assert url.startswith("data:image/png;base64,")
    assert from_data_url(url) == (png, "image/png")
    assert from_data_url(to_data_url(png, "image/jpg"))[1] == "image/jpeg"


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://example.com/a.png", "must start with 'data:"),
        ("data:image/png;base64", "no ','"),
        ("data:image/png,abcd", "base64"),
        ("data:text/plain;base64,aGVsbG8=", "MIME"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64,", "no data"),
    ],
)
def test_from_data_url_errors(url, message):
    with pytest.raises(ImageDecodeError, match=message):
        from_data_url(url)


def test_to_data_url_rejects_bad_input():
    with pytest.raises(ValueError):
        to_data_url(b"")
    with pytest.raises(ValueError, match="MIME"):
        to_data_url(b"x", "text/html")


def test_content_hash_and_sniff():
    assert content_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(base64.b64decode("R0lGODlh")) is None


# --------------------------------------------------------------------------- speed rules (issue 9)


def _level_of(png: bytes) -> int:
    """The zlib level hint in the IDAT stream's header (FLEVEL bits: 0 fastest, 1 fast, 2 default, 3 best)."""
    at = png.index(b"IDAT") + 4
    return png[at + 1] >> 6


def test_png_level_follows_the_content():
    gray = np.random.default_rng(2).integers(0, 256, size=(32, 32), dtype=np.uint8)
    assert png_level("L") == 1 and png_level("RGB") == 3
    assert _level_of(encode_png(gray)) == 0  # zlib level 1 -> FLEVEL 0 ("fastest")
    assert _level_of(encode_png(_rng_image(32, 32, 3))) == 1  # level 3 -> FLEVEL 1 ("fast"), never level 6
    assert _level_of(encode_png(gray, compress_level=9)) == 3
    with pytest.raises(ValueError, match="compress_level"):
        encode_png(gray, compress_level=10)


def test_encode_image_lossless_by_default_and_lossy_on_request():
    arr = _rng_image(40, 48, 3, seed=3)
    png = encode_image(arr)
    assert png.mime == "image/png" and np.array_equal(decode_image(png.data).rgb, arr)
    smooth = np.repeat(np.linspace(0, 255, 48, dtype=np.uint8)[None, :, None], 40, axis=0).repeat(3, axis=2)
    smooth[:, :, 0] //= 2
    jpeg = encode_image(smooth, format="jpeg", quality=90)
    assert jpeg.mime == "image/jpeg" and sniff_mime(jpeg.data) == "image/jpeg"
    assert np.abs(decode_image(jpeg.data).rgb.astype(int) - smooth).mean() < 3
    webp = encode_image(smooth, format="webp", quality=80)
    assert webp.mime == "image/webp" and decode_image(webp.data).rgb.shape == (40, 48, 3)
    assert encode_image(smooth, format="JPG").mime == "image/jpeg"
    assert encode_image(smooth, format="jpeg", quality=50).data == encode_image(smooth, format="jpeg", quality=50).data
    for kwargs, word in (({"format": "gif"}, "format"), ({"format": "jpeg", "quality": 0}, "quality")):
        with pytest.raises(ValueError, match=word):
            encode_image(smooth, **kwargs)
    with pytest.raises(ValueError, match="lossless"):
        encode_image(smooth, format="png", quality=80)


def test_lossy_webp_keeps_alpha_and_jpeg_drops_it():
    arr = _rng_image(16, 16, 4, seed=4)
    arr[:, :, 3] = 100
    assert decode_image(encode_image(arr, format="webp", quality=90).data).alpha is not None
    assert decode_image(encode_image(arr, format="jpeg").data).alpha is None


def test_reencode_leaves_a_suitable_png_untouched_and_fixes_the_rest():
    rgb_png = _pil_bytes(Image.fromarray(_rng_image(12, 10, 3)), compress_level=9)
    assert reencode_png(rgb_png) == rgb_png  # already an RGB PNG: no decode, no encode
    rgba = _rng_image(12, 10, 4)
    rgba_png = _pil_bytes(Image.fromarray(rgba))
    assert reencode_png(rgba_png, keep_alpha=True) == rgba_png
    assert _mode_of(reencode_png(rgba_png)) == "RGB"  # alpha dropped: a new file
    sixteen = _pil_bytes(Image.fromarray(np.array([[0, 32896]], dtype=np.uint16)))
    assert _mode_of(reencode_png(sixteen)) == "L"
    with pytest.raises(ImageDecodeError):
        reencode_png(rgb_png[: len(rgb_png) // 2])  # a damaged PNG is not passed through


def test_decode_keeps_gray_as_one_channel_view_and_splits_rgba_without_copies():
    gray = np.random.default_rng(5).integers(0, 256, size=(9, 7), dtype=np.uint8)
    decoded = decode_image(encode_png(gray))
    assert decoded.rgb.shape == (9, 7, 3) and decoded.rgb.strides[2] == 0  # broadcast, not replicated
    assert np.array_equal(decoded.rgb[:, :, 2], gray)
    rgba = _rng_image(9, 7, 4)
    rgba[0, 0, 3] = 3
    decoded = decode_image(encode_png(rgba))
    assert np.may_share_memory(decoded.rgb, decoded.alpha)  # two views of one buffer (interleaved, no overlap)
    assert np.array_equal(decoded.rgb, rgba[:, :, :3]) and np.array_equal(decoded.alpha, rgba[:, :, 3])


def test_binary_maps_become_exact_one_bit_pngs():
    edges = (np.random.default_rng(6).random((33, 47)) > 0.9).astype(np.uint8) * 255
    png = encode_png(np.repeat(edges[:, :, None], 3, axis=2))
    assert _mode_of(png) == "1"
    assert np.array_equal(decode_image(png).rgb[:, :, 0], edges)  # lossless: 255 -> 1 -> 255
    assert _mode_of(encode_png(edges, bilevel_if_binary=False)) == "L"
    almost = edges.copy()
    almost[0, 0] = 128
    assert _mode_of(encode_png(almost)) == "L"


@pytest.mark.parametrize("shape", [(1, 1), (5, 8), (3, 9), (64, 1), (16, 17)])
@pytest.mark.parametrize("level", [None, 0, 9])
def test_one_bit_pngs_decode_exactly_at_every_width_and_level(shape, level):
    edges = (np.random.default_rng(sum(shape)).random(shape) > 0.5).astype(np.uint8) * 255
    edges[0, 0] = 255  # never all zeros (an all-zero map is binary too, tested below)
    png = encode_png(edges, compress_level=level)
    with Image.open(io.BytesIO(png)) as image:
        image.verify()  # chunk CRCs and structure, as any PNG reader checks them
    assert _mode_of(png) == "1" and np.array_equal(decode_image(png).rgb[:, :, 0], edges)
    blank = np.zeros(shape, np.uint8)
    assert np.array_equal(decode_image(encode_png(blank)).rgb[:, :, 0], blank)
