"""IMAGE/MASK conversions: whole batches, clamp and round, H/W order, padding policy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from pack_loader import submodule

pytest_plugins = ["pack_loader"]  # fixtures: pack, comfy, node_env


@pytest.fixture
def tensors(pack):
    return submodule("nodes.tensors")


@dataclass
class Decoded:
    rgb: np.ndarray
    alpha: np.ndarray | None = None


def test_every_batch_item_is_converted_with_clamp_and_round(tensors):
    t = torch.zeros(2, 3, 5, 3)
    t[0, 0, 0] = torch.tensor([0.5, -0.2, 1.3])
    t[1, 2, 4] = torch.tensor([float("nan"), 0.999, 0.001])
    arrays = tensors.image_to_arrays(t, "control_image")
    assert len(arrays) == 2
    assert arrays[0].dtype == np.uint8 and arrays[0].shape == (3, 5, 3)  # H x W x C, not swapped
    assert arrays[0][0, 0].tolist() == [128, 0, 255]  # round(127.5) = 128, clamped below and above
    assert arrays[1][2, 4].tolist() == [0, 255, 0]  # NaN -> 0, 254.7 -> 255, 0.255 -> 0
    assert tensors.image_size(arrays[0]) == (5, 3)  # (width, height)


def test_channel_variants(tensors):
    gray = tensors.image_to_arrays(torch.full((1, 4, 6, 1), 0.2), "x")[0]
    assert gray.shape == (4, 6) and int(gray[0, 0]) == 51
    rgba = torch.rand(1, 4, 6, 4)
    out = tensors.image_to_arrays(rgba, "x")[0]
    assert out.shape == (4, 6, 3)  # alpha dropped: maps and init images are opaque
    single = tensors.image_to_arrays(torch.rand(4, 6, 3), "x")
    assert len(single) == 1 and single[0].shape == (4, 6, 3)


@pytest.mark.parametrize(
    "bad, words",
    [
        (torch.rand(4, 6), "shape"),
        (torch.rand(1, 1, 4, 6, 3), "shape"),
        (torch.rand(1, 4, 6, 2), "2 channels"),
        (torch.rand(0, 4, 6, 3), "empty"),
        (np.zeros((4, 6, 3)), "ndarray"),
    ],
)
def test_bad_images_name_the_input(tensors, bad, words):
    errors = submodule("scenario_api.errors")
    with pytest.raises(errors.ValidationError) as info:
        tensors.image_to_arrays(bad, "init_thing")
    assert "init_thing" in str(info.value) and words in str(info.value)


def test_same_size_results_stack_with_full_masks(tensors):
    a = Decoded(np.full((3, 5, 3), 255, np.uint8))
    b = Decoded(np.zeros((3, 5, 3), np.uint8), alpha=np.full((3, 5), 51, np.uint8))
    images, masks = tensors.results_to_tensors([a, b])
    assert images.dtype == torch.float32 and tuple(images.shape) == (2, 3, 5, 3)
    assert tuple(masks.shape) == (2, 3, 5)
    assert float(images[0].min()) == 1.0 and float(masks[0].min()) == 1.0
    assert torch.allclose(masks[1], torch.full((3, 5), 0.2))


def test_mixed_sizes_pad_centred_with_zero_mask(tensors):
    big = Decoded(np.full((6, 8, 3), 10, np.uint8))
    small = Decoded(np.full((2, 4, 3), 250, np.uint8))
    images, masks = tensors.results_to_tensors([big, small])
    assert tuple(images.shape) == (2, 6, 8, 3)
    inner = images[1, 2:4, 2:6]
    assert torch.allclose(inner, torch.full_like(inner, 250 / 255))
    padding = images[1].clone()
    padding[2:4, 2:6] = 0
    assert float(padding.abs().max()) == 0.0  # black padding
    assert float(masks[1, 2:4, 2:6].min()) == 1.0 and float(masks[1].sum()) == 8.0


def test_tall_and_wide_results_give_the_max_of_each_side(tensors):
    wide = Decoded(np.ones((2, 10, 3), np.uint8))
    tall = Decoded(np.ones((10, 2, 3), np.uint8))
    images, masks = tensors.results_to_tensors([wide, tall])
    assert tuple(images.shape) == (2, 10, 10, 3) and float(masks.sum()) == 40.0


def test_no_results_is_an_error(tensors):
    with pytest.raises(ValueError):
        tensors.results_to_tensors([])


# --------------------------------------------------------------------------- lean paths (issue 9)


def _png(arr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_gray_rgb_images_come_out_as_one_channel(tensors):
    t = torch.rand(2, 4, 6, 1).expand(2, 4, 6, 3).clone()
    t[1, 0, 0, 2] = 0.0 if float(t[1, 0, 0, 0]) > 0.5 else 1.0  # item 1 is not gray any more
    gray, colour = tensors.image_to_arrays(t, "control_image")
    assert gray.shape == (4, 6) and colour.shape == (4, 6, 3)
    assert gray.tolist() == torch.round(t[0, :, :, 0] * 255).to(torch.uint8).tolist()


def test_decode_to_tensors_matches_results_to_tensors(tensors, pack):
    imaging = submodule("scenario_api.imaging")
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, size=(2, 4, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
    blobs = [_png(rgb), _png(rgba), _png(gray)]
    images, masks = tensors.decode_to_tensors(blobs)
    ref_images, ref_masks = tensors.results_to_tensors([imaging.decode_image(b) for b in blobs])
    assert torch.equal(images, ref_images) and torch.equal(masks, ref_masks)
    assert tuple(images.shape) == (3, 6, 8, 3)
    assert torch.equal(images[0], torch.from_numpy(rgb).float() / 255.0)  # exactly what x / 255 gives
    assert torch.equal(masks[1, 2:4, 2:6], torch.from_numpy(rgba[:, :, 3].copy()).float() / 255.0)
    assert float(masks[1].sum() - masks[1, 2:4, 2:6].sum()) == 0.0 and float(images[1, 0].abs().sum()) == 0.0
    assert torch.equal(images[2, :, :, 1], torch.from_numpy(gray).float() / 255.0)
    with pytest.raises(submodule("scenario_api.errors").ImageDecodeError):
        tensors.decode_to_tensors([b"not an image"])
    with pytest.raises(ValueError):
        tensors.decode_to_tensors([])


def test_pixels_decoded_ahead_give_the_same_tensors(tensors, pack):
    imaging = submodule("scenario_api.imaging")
    rng = np.random.default_rng(10)
    colour = _png(rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8))
    gray = _png(rng.integers(0, 256, size=(3, 9), dtype=np.uint8))
    blobs = [colour, _png(rng.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)), gray]
    plain = tensors.decode_to_tensors(blobs)
    ahead = [imaging.decode_image(blobs[0]), None, imaging.decode_image(blobs[2])]  # one left to decode here
    mixed = tensors.decode_to_tensors(blobs, ahead)
    assert all(torch.equal(a, b) for a, b in zip(plain, mixed, strict=True))
    with pytest.raises(submodule("scenario_api.errors").ImageDecodeError):
        tensors.decode_to_tensors([blobs[0], b"not an image"], [imaging.decode_image(blobs[0]), None])


def test_release_memory_is_safe_to_call(tensors):
    tensors.release_memory()
    tensors.release_memory()
