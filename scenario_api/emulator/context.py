"""The shared state of one emulator instance: config, store, faults, log, signer.

Every handler thread reads it; config changes swap an immutable
:class:`EmulatorConfig` under a lock, so a request always sees one
consistent config.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from typing import Any

from . import render
from .faults import FaultPlan
from .logbook import RequestLog
from .options import EmulatorConfig, ServerCredentials
from .signing import UrlSigner
from .state import AssetRecord, Store

DEMO_ASSETS = {
    "asset_demo_pose": ("demo-pose.png", render.demo_pose),
    "asset_demo_canny": ("demo-canny.png", render.demo_canny),
    "asset_demo_depth": ("demo-depth.png", render.demo_depth),
}


class Context:
    def __init__(self, credentials: ServerCredentials, defaults: EmulatorConfig, seed_demo_assets: bool) -> None:
        self.credentials = credentials
        self.defaults = defaults
        self._config = defaults
        self._lock = threading.Lock()
        self.store = Store(defaults.credits)
        self.faults = FaultPlan()
        self.log = RequestLog()
        self.signer = UrlSigner()
        if seed_demo_assets:
            self._seed_demo_assets()

    # ------------------------------------------------------------------ config

    @property
    def config(self) -> EmulatorConfig:
        with self._lock:
            return self._config

    def update_config(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Apply a partial config (ValueError on bad keys); ``credits`` also resets the balance."""
        with self._lock:
            self._config = self._config.updated(changes)
            config = self._config
        if "credits" in changes:
            self.store.set_balance(config.credits)
        return config

    def reset(self) -> None:
        with self._lock:
            self._config = self.defaults
        self.store.reset(self.defaults.credits)
        self.faults.clear()
        self.log.clear()

    # ------------------------------------------------------------------ auth

    def check_auth(self, header: str | None) -> tuple[bool, str | None]:
        """(ok, key) for an ``Authorization: Basic …`` header value."""
        if not header:
            return False, None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic" or not token:
            return False, None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return False, None
        key, sep, secret = decoded.partition(":")
        if not sep:
            return False, None
        ok = hmac.compare_digest(key.encode(), self.credentials.key.encode()) & hmac.compare_digest(
            secret.encode(), self.credentials.secret.encode()
        )
        return bool(ok), (key if ok else None)

    @staticmethod
    def author_id(key: str | None) -> str:
        return "user_" + hashlib.sha256((key or "").encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ demo data

    def _seed_demo_assets(self) -> None:
        now = time.time()
        for asset_id, (name, make) in DEMO_ASSETS.items():
            data = make()
            width, height = render.png_size(data)
            record = AssetRecord(
                id=asset_id,
                width=width,
                height=height,
                metadata={"type": "uploaded", "width": width, "height": height, "name": name},
                created=now,
                data=data,
                name=name,
            )
            self.store.add_asset(record, permanent=True)
