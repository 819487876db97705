"""The SQLite schema: its version, the migrations that build it, and the columns a record reads."""

from __future__ import annotations

SCHEMA_VERSION = 2

# Each entry upgrades the file from version i to i + 1 (applied in one transaction).
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE intents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            account TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            base_url TEXT NOT NULL,
            origin TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            seed INTEGER,
            cost REAL,
            job_id TEXT UNIQUE,
            adopted INTEGER NOT NULL DEFAULT 0,
            candidates TEXT NOT NULL DEFAULT '[]',
            asset_ids TEXT NOT NULL DEFAULT '[]',
            note TEXT,
            created_at REAL NOT NULL,
            first_sent_at REAL,
            last_sent_at REAL,
            updated_at REAL NOT NULL,
            owner TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX intents_reuse ON intents (fingerprint, account, state, updated_at)",
        "CREATE INDEX intents_state ON intents (state, updated_at)",
    ),
    (
        """CREATE TABLE receipts (
            intent_id INTEGER NOT NULL REFERENCES intents (id) ON DELETE CASCADE,
            asset_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            path TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (intent_id, asset_id)
        )""",
        "CREATE INDEX intents_updated ON intents (updated_at)",
        # the canonical request (data URLs as content hashes), so `resume` can match a crashed send's job
        "ALTER TABLE intents ADD COLUMN request TEXT",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION
_OUR_TABLES = {"intents", "receipts", "sqlite_sequence"}

_COLUMNS = (
    "id, kind, state, fingerprint, account, endpoint, base_url, origin, prompt, seed, cost, job_id, adopted, "
    "candidates, asset_ids, note, created_at, first_sent_at, last_sent_at, updated_at, owner, request"
)


class _Corrupt(Exception):
    pass
