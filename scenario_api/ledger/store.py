"""The SQLite layer: the file checks, one connection per thread, WAL, integrity, migrations, transactions."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..safe_files import UnsafeFileError, check_regular_file
from .constants import ENV_STATE_DIR, PRUNE_EVERY_WRITES, SQLITE_HEADER
from .records import LedgerError
from .schema import _MIGRATIONS, _OUR_TABLES, SCHEMA_VERSION, _Corrupt

log = logging.getLogger("scenario_api.ledger")


class Store:
    """The ledger file's connections (one per thread, re-made after a ``fork``) and its transactions.

    ``every_writes`` is called (its LedgerError ignored) after every
    ``PRUNE_EVERY_WRITES`` committed writes: the ledger prunes there.
    """

    def __init__(self, path: Path, *, busy_timeout: float, clock: Any) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.every_writes: Callable[[], object] | None = None
        self.local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._writes = 0
        self.closed = False

    # -------------------------------------------------------------- opening

    def open(self) -> None:
        """Make the folder and file if needed, check the file (a damaged one is moved aside), migrate."""
        from .damaged import recover  # damaged.py writes through a Store

        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise LedgerError(
                f"Scenario: cannot create the job ledger's folder {parent} ({exc.strerror or type(exc).__name__}); "
                f"set {ENV_STATE_DIR} to a writable folder"
            ) from None
        if not parent.is_dir():
            raise LedgerError(f"Scenario: the job ledger's folder {parent} is not a folder")
        self.check_files()
        self.create_file()
        try:
            self.check_integrity()
        except _Corrupt as exc:
            recover(self, str(exc))
        self.migrate()

    def check_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            candidate = Path(str(self.path) + suffix)
            try:
                check_regular_file(candidate, what="job ledger file")
            except UnsafeFileError as exc:
                raise LedgerError(
                    f"Scenario: {exc.message}. Move it away (or set {ENV_STATE_DIR} to another folder) and retry"
                ) from None

    def create_file(self) -> None:
        if self.path.exists():
            return
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
            os.close(fd)
        except FileExistsError:
            pass  # another process made it first
        except OSError as exc:
            raise LedgerError(
                f"Scenario: cannot create the job ledger {self.path} ({exc.strerror or type(exc).__name__}); "
                f"set {ENV_STATE_DIR} to a writable folder"
            ) from None

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LedgerError(
                f"Scenario: cannot open the job ledger {self.path} ({type(exc).__name__}); "
                f"check its permissions or set {ENV_STATE_DIR} to another folder"
            ) from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            # WAL + NORMAL: a commit is in the WAL before it returns, so a killed process loses nothing; only
            # a power cut could drop the last few commits (FULL would fsync every write, slowing each submit).
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error:
            conn.close()
            raise
        with self._all_lock:
            self._all.append(conn)
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a ``fork``)."""
        if self.closed:
            raise LedgerError(f"Scenario: the job ledger {self.path} was closed")
        local = self.local
        pid = os.getpid()
        conn = getattr(local, "conn", None)
        if conn is None or getattr(local, "pid", None) != pid:
            conn = self.connect()
            local.conn, local.pid = conn, pid
        return conn

    def _check_header(self) -> int:
        """The file's size; _Corrupt when a non-empty file does not start like an SQLite database."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if size > 0:
            with open(self.path, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
            if header != SQLITE_HEADER:
                raise _Corrupt("it is not an SQLite database")
        return size

    def _inspect(self, size: int) -> tuple[set[str], int]:
        """WAL on, a quick check: (table names, schema version) of the file."""
        conn = self.connect()
        self.local.conn, self.local.pid = conn, os.getpid()
        if size == 0:  # a new file: settings that only take effect before the first table
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":  # switching needs a moment of exclusive access; only once per file
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("job ledger %s: WAL mode unavailable (%s); continuing", self.path, mode)
        conn.execute("PRAGMA journal_size_limit = 4194304")
        result = conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in result] != [("ok",)]:
            raise _Corrupt("SQLite's integrity check failed")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return tables, version

    def check_integrity(self) -> None:
        """Raise _Corrupt when the file is not a healthy SQLite database of ours."""
        size = self._check_header()
        try:
            tables, version = self._inspect(size)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
                raise LedgerError(
                    f"Scenario: the job ledger {self.path} stayed locked by another process for "
                    f"{self.busy_timeout:g} s; retry"
                ) from None
            raise _Corrupt(f"SQLite cannot read it ({type(exc).__name__})") from None
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"Scenario: the job ledger {self.path} was written by a newer version of the pack (schema {version}, "
                f"this version reads up to {SCHEMA_VERSION}); update the pack, or set {ENV_STATE_DIR} to another "
                "folder"
            )
        if version == 0 and tables - _OUR_TABLES:
            raise _Corrupt("it holds another program's tables")
        if version >= 1 and "intents" not in tables:
            raise _Corrupt("its tables are missing")

    def migrate(self) -> None:
        conn = self.conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        with self.write() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target - 1]:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {target}")
            if version < SCHEMA_VERSION:
                log.debug("job ledger %s migrated from schema %d to %d", self.path, version, SCHEMA_VERSION)

    # -------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front, so read-then-write is atomic."""
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self.db_error(exc) from None
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise self.db_error(exc) from None
        self._writes += 1
        if self._writes % PRUNE_EVERY_WRITES == 0 and self.every_writes is not None:
            with contextlib.suppress(LedgerError):
                self.every_writes()

    def db_error(self, exc: sqlite3.Error) -> LedgerError:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return LedgerError(
                f"Scenario: the job ledger {self.path} stayed locked by another process for {self.busy_timeout:g} s"
            )
        if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
            return LedgerError(
                f"Scenario: the job ledger {self.path} is damaged; it will be moved aside (pending job ids kept) "
                "the next time it is opened"
            )
        return LedgerError(f"Scenario: the job ledger {self.path} could not be written ({type(exc).__name__})")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self.db_error(exc) from None

    # -------------------------------------------------------------- closing

    def close_connections(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self.local = threading.local()
