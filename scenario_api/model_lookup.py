"""Model records for one client: look-ups shared by concurrent callers, cached per client and, for custom models, per
process.

The model record decides a request's rules (family, custom flag, declared
inputs), so every submit, validation and quote asks for it first. It is free,
but not instant:

* each record is kept for the client's life (a ComfyUI prompt's nodes share
  one client, :mod:`nodes.sessions`);
* concurrent callers asking for the same model await one ``GET /models/{id}``;
  one caller's cancellation never cancels the others' look-up, and the last
  caller to leave cancels a look-up nobody waits for any more;
* custom models' records (their declared inputs) are shared by every client of
  the process for :data:`CUSTOM_RECORDS_TTL` seconds (:data:`CUSTOM_RECORDS`),
  keyed by account (:meth:`ModelLookup.scope`), so private models stay with
  their owner and a new prompt does not look them up again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from . import spec
from .config import Settings
from .declared_inputs import RecordCache
from .errors import NotFoundError, ScenarioError, ValidationError
from .models import ControlNetRequest, Model
from .retry import RetryPolicy
from .transport import Transport, decode_body, read_pages

__all__ = ["CUSTOM_RECORDS", "CUSTOM_RECORDS_TTL", "ModelLookup"]

CUSTOM_RECORDS_TTL = 600.0
CUSTOM_RECORDS = RecordCache(ttl=CUSTOM_RECORDS_TTL)  # a plain lock, no event loop inside


class ModelLookup:
    """The model look-ups of one client (see the module doc); ``policy()`` is the client's read retry policy."""

    def __init__(self, transport: Transport, settings: Settings, policy: Callable[[], RetryPolicy]) -> None:
        self._transport = transport
        self._settings = settings
        self._policy = policy
        self._models: dict[str, Model] = {}
        self._lookups: dict[str, list[Any]] = {}  # model id -> [shared look-up task, callers waiting]

    @property
    def scope(self) -> str:
        """Whose models these are: the API URL, a digest of the key (never the secret) and the project."""
        creds = self._settings.credentials
        key = creds.key_digest if creds else ""
        digest = hashlib.sha256(f"{self._settings.base_url}|{key}|{self._settings.project_id or ''}".encode())
        return digest.hexdigest()[:24]

    async def get(self, model_id: str) -> Model:
        """The model record (cached), which decides the request rules."""
        model_id = spec.check_id("modelId", model_id)
        cached = self._models.get(model_id) or CUSTOM_RECORDS.get(self.scope, model_id)
        if cached is not None:
            self._models[model_id] = cached
            return cached
        entry = self._lookups.get(model_id)
        if entry is None or entry[0].done():  # nobody asks yet: start the one look-up the others will share
            entry = [asyncio.ensure_future(self._lookup(model_id)), 0]
            self._lookups[model_id] = entry
        lookup = entry[0]
        entry[1] += 1
        try:
            return await asyncio.shield(lookup)  # one caller's cancellation never cancels the others' look-up
        finally:
            entry[1] -= 1
            if entry[1] == 0:  # the last one waiting: drop the look-up (cancel it if it still runs)
                if self._lookups.get(model_id) is entry:
                    del self._lookups[model_id]
                if not lookup.done():
                    lookup.cancel()
                elif not lookup.cancelled():
                    lookup.exception()  # retrieved: each caller re-raises it itself

    async def _lookup(self, model_id: str) -> Model:
        response = await self._transport.read(
            "GET", f"/models/{model_id}", what=f"model '{model_id}'", policy=self._policy()
        )
        model = Model.from_api(decode_body(response))
        if not model.model_id:
            raise ScenarioError(f"Scenario answered the lookup of model '{model_id}' without a model record")
        self._models[model_id] = model
        if model.custom and model.declared.inputs:
            CUSTOM_RECORDS.put(self.scope, model_id, model)  # declared inputs: shared by later clients
        return model

    async def model_types(self, model_ids: Sequence[str]) -> dict[str, str | None]:
        """The ``type`` of each model id (LoRAs, compositions), ``None`` for one Scenario does not know (404)."""
        out: dict[str, str | None] = {}
        for mid in dict.fromkeys(model_ids):
            spec.check_id("modelId", mid, field="loras")
            try:
                out[mid] = (await self.get(mid)).type or None
            except NotFoundError:
                out[mid] = None
        return out

    async def referenced_types(self, request: ControlNetRequest, model: Model) -> dict[str, str | None]:
        """The types of the LoRAs a request names (free reads), for a custom model; ``{}`` otherwise.

        A LoRA given as ``model_id`` whose type has no legacy endpoint (say a
        ``zimage-lora``) is refused here: it runs through a base's LoRA input.
        """
        if model.family == spec.CUSTOM and not model.custom and model.is_lora:
            raise ValidationError(
                "modelId",
                model.model_id,
                f"a base model: {model.model_id} is a {model.type}, which runs through a custom base model's LoRA "
                f"input; set model_id to a base whose LoRA input takes {model.type} and put {model.model_id} in loras",
                param="model_id",
            )
        if model.family != spec.CUSTOM:
            return {}
        return await self.model_types(spec.lora_ids(request))

    async def list_models(
        self, *, max_pages: int, privacy: str | None, model_type: str | None, page_size: int | None
    ) -> list[Model]:
        """Models visible to the key, across pages (see :meth:`ScenarioClient.list_models`)."""
        params: dict[str, Any] = {}
        if privacy:
            params["privacy"] = privacy
        if model_type:
            params["type"] = model_type
        if page_size:
            params["pageSize"] = page_size
        rows = await read_pages(
            self._transport,
            "/models",
            "models",
            params,
            max_pages=max_pages,
            what="the model list",
            policy=self._policy(),
        )
        return [Model.from_api(row) for row in rows]
