"""Sources, sizes and validation drafts of a generate node's requests (no network except free reads).

Policies decided here, documented in the tooltips and help pages:

* **Control source**: exactly one of ``control_image`` (IMAGE) and
  ``control_image_id`` (asset ids). A batch of B images, or B comma-separated
  ids, becomes B jobs.
* **Init image** (img2img): exactly one of ``image`` and ``image_id``; 1 item
  (shared by every job) or B items (paired by index); anything else is an error.
* **Size**: width and height 0 are derived per job from the control image
  (its pixel size, or an asset's recorded width/height, 512 x 512 if none),
  fitted to the model family's limits with ``spec.fit_size`` (aspect kept,
  multiples of 8). One side 0 keeps the other side and follows the control
  image's aspect ratio.
* **Validation drafts**: before any network call a request is checked with
  the placeholder asset id ``spec.PLACEHOLDER_ASSET_ID`` (:func:`draft`):
  first the rules no model family accepts (``spec.precheck_request``), then,
  once the model is known, the model's rules (``spec.check_request``), and
  again per job once the control images' sizes are known - all before any
  upload.

The widget values themselves become the base request in ``request_builder``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scenario_api import declared_inputs, spec, upload_array
from ..scenario_api.errors import ValidationError
from ..scenario_api.models import ControlNetRequest
from . import tensors
from .concurrency import bounded
from .ids import parse_ids
from .jobs import FANOUT_LIMIT

if TYPE_CHECKING:
    from ..scenario_api.imaging import EncodedImage


@dataclass(frozen=True)
class Source:
    """One image for one job: pixels still to upload, or an existing asset id."""

    array: np.ndarray | None = None
    asset_id: str | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        return tensors.image_size(self.array) if self.array is not None else None


def _given(text: Any) -> bool:
    return text is not None and bool(str(text).strip())


def _image_given(image: Any) -> bool:
    return image is not None


def _exactly_one(tensor_name: str, id_name: str, what: str, tensor: Any, ids: Any) -> None:
    has_tensor, has_ids = _image_given(tensor), _given(ids)
    if has_tensor == has_ids:
        got = "both" if has_tensor else "neither"
        raise ValidationError(
            f"{tensor_name} / {id_name}",
            got,
            f"exactly one of {tensor_name} (connect an IMAGE) or {id_name} (a Scenario asset id like 'asset_...') "
            f"for the {what}",
            param=f"{tensor_name} / {id_name}",
        )


async def sources(tensor: Any, ids: Any, tensor_name: str, id_name: str, what: str) -> list[Source]:
    """Split an IMAGE batch or an id list into one :class:`Source` per item.

    The tensor conversion runs in a worker thread: a large batch would
    otherwise block the event loop that other nodes' jobs share.
    """
    _exactly_one(tensor_name, id_name, what, tensor, ids)
    if _image_given(tensor):
        arrays = await asyncio.to_thread(tensors.image_to_arrays, tensor, tensor_name)
        return [Source(array=a) for a in arrays]
    return [Source(asset_id=i) for i in parse_ids(ids, "asset", id_name)]


def pair_inits(inits: list[Source], count: int) -> list[Source]:
    """Init images per job: 1 shared, or exactly one per control image."""
    if len(inits) == count:
        return inits
    if len(inits) == 1:
        return inits * count
    raise ValidationError(
        "image / image_id",
        f"{len(inits)} init images for {count} control images",
        f"1 init image (used for every job) or {count} (one per control image, paired by index)",
        param="image / image_id",
    )


def draft(request: ControlNetRequest, width: int | None, height: int | None, img2img: bool) -> ControlNetRequest:
    """``request`` ready for validation only: placeholder asset ids, and sizes still 0 at 512.

    Validating a draft needs no upload and no asset read. A size of 0 is
    derived later from the control image; 512 stands in for it because every
    model family accepts it, so only the user's explicit values can fail.
    ``None`` (a custom model's size left to the model) stays ``None``.
    """
    return replace(
        request,
        width=None if width is None else int(width) or spec.DEFAULTS["width"],
        height=None if height is None else int(height) or spec.DEFAULTS["height"],
        control_image=None,
        control_image_id=spec.PLACEHOLDER_ASSET_ID,
        image=spec.PLACEHOLDER_ASSET_ID if img2img else None,
    )


def output_size(
    width: int,
    height: int,
    source_size: tuple[int, int] | None,
    family: str,
    declared: declared_inputs.DeclaredModel | None = None,
) -> tuple[int | None, int | None]:
    """The request's width/height from the widgets (0 = derive) and the control image's size.

    A custom model (``declared``) derives with its own declared range and step
    (:func:`declared_inputs.derive_size`); without a known source size a side
    may stay ``None``: the model's default, or Scenario's choice.
    """
    width, height = int(width or 0), int(height or 0)
    if width > 0 and height > 0:
        return width, height
    if declared is not None and declared.inputs:
        return declared_inputs.derive_size(declared, width, height, source_size)
    sw, sh = source_size or (spec.DEFAULTS["width"], spec.DEFAULTS["height"])
    if width == 0 and height == 0:
        return spec.fit_size(sw, sh, family)
    wlo, whi = spec.size_range("width", family)
    hlo, hhi = spec.size_range("height", family)
    step = spec.size_multiple(family)
    if width == 0:
        return spec.snap_size(height * sw / sh, wlo, whi, step), height
    return width, spec.snap_size(width * sh / sw, hlo, hhi, step)


async def source_size(client: Any, src: Source) -> tuple[int, int] | None:
    """Pixel size of a source; for an asset id, from its metadata (a free read that honours Stop)."""
    if src.array is not None:
        return src.size
    if src.asset_id is None:
        return None
    asset = await client.get_asset(src.asset_id)
    meta = asset.metadata or {}
    try:
        w, h = int(meta.get("width") or 0), int(meta.get("height") or 0)
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


async def resolve_ids(
    client: Any,
    settings: Any,
    srcs: Sequence[Source],
    name: str | Sequence[str],
    *,
    format: str = "png",
    quality: int | None = None,
    on_encoded: Callable[[EncodedImage, float], None] | None = None,
) -> list[str]:
    """Asset ids for the sources, uploading pixels once each (the upload service); ``name`` per source or shared.

    ``format`` / ``quality``: how pixels are encoded (:func:`upload_array`):
    lossless PNG unless the caller opts in to a lossy one (init images only).
    A source repeated in ``srcs`` (one init image shared by every job) is
    encoded once; ``on_encoded`` is told about each encode.
    """
    names = [name] * len(srcs) if isinstance(name, str) else list(name)
    distinct: dict[int, int] = {}  # id(source) -> index of its first occurrence
    for i, src in enumerate(srcs):
        distinct.setdefault(id(src), i)
    firsts = sorted(distinct.values())

    async def one(_: int, i: int) -> str:
        src = srcs[i]
        if src.asset_id is not None:
            return src.asset_id
        assert src.array is not None
        return await upload_array(client, src.array, names[i], format=format, quality=quality, on_encoded=on_encoded)

    ids = dict(zip(firsts, await bounded(FANOUT_LIMIT, firsts, one), strict=True))
    return [ids[distinct[id(src)]] for src in srcs]
