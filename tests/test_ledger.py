"""The durable job ledger: states, claims across threads and processes, reuse, pruning, damaged and
hostile files, kill -9 at any moment, and property tests of its parsers.

Multi-process tests run small writer scripts in subprocesses (the real ``sqlite3`` locking and WAL
between processes); nothing is mocked.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenario_api import ledger as L
from scenario_api.ledger import Ledger, LedgerError, LedgerRowError

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "api_key_for_tests_42", "secret-value-NEVER-in-the-ledger-9"
ACCOUNT = L.account_id(KEY)
BASE = "http://127.0.0.1:9/v1"
SIGNED = "https://cdn.cloud.scenario.com/assets/asset_x.png?Expires=1&Policy=abc&Signature=sIgNaTuRe123&Key-Pair-Id=K"


def fp(**body) -> str:
    return L.fingerprint("submit", "controlnet", {"prompt": "p", "seed": 1, **body}, base_url=BASE, account=ACCOUNT)


def new_intent(ledger: Ledger, *, kind: str = "submit", fingerprint: str | None = None, **kw) -> int:
    args = dict(
        kind=kind,
        fingerprint=fingerprint or fp(),
        account=ACCOUNT,
        endpoint="/generate/controlnet",
        base_url=BASE,
        origin="cli",
        prompt="a lighthouse at dusk",
        seed=1,
        cost=5.0,
    )
    args.update(kw)
    return ledger.begin(**args)


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "state" / "ledger.sqlite3") as lg:
        yield lg


def damaged_files(folder: Path) -> list[Path]:
    """The moved-aside ledger files (without their -wal / -shm companions)."""
    return [p for p in folder.glob("ledger.sqlite3.damaged-*") if not p.name.endswith(("-wal", "-shm"))]


def run_py(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def spawn_py(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# --------------------------------------------------------------------------- lifecycle


def test_file_folder_and_modes(tmp_path):
    path = tmp_path / "deep" / "state" / "ledger.sqlite3"
    with Ledger(path) as lg:
        new_intent(lg)
        assert lg.count() == 1
    assert path.is_file()
    if os.name != "nt":
        assert (path.stat().st_mode & 0o777) == 0o600
        assert (path.parent.stat().st_mode & 0o777) == 0o700
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == L.SCHEMA_VERSION
    conn.close()


def test_an_intent_moves_through_its_states(ledger):
    i = new_intent(ledger)
    rec = ledger.get(i)
    assert rec.state == "submitting" and rec.job_id is None and rec.first_sent_at is None and rec.pending
    ledger.mark_sent(i)
    first = ledger.get(i).first_sent_at
    ledger.mark_sent(i)  # a resend keeps the first send time
    rec = ledger.get(i)
    assert rec.first_sent_at == first and rec.last_sent_at >= first
    assert ledger.claim(i, "job_one111").won
    assert ledger.get(i).state == "accepted" and ledger.owns(i, "job_one111")
    ledger.finish(i, "succeeded", asset_ids=["asset_a1", "asset_a2"])
    ledger.finish(i, "succeeded")  # repeating the same end is harmless
    rec = ledger.get(i)
    assert rec.state == "succeeded" and rec.asset_ids == ("asset_a1", "asset_a2") and not rec.pending
    ledger.add_receipt(i, "asset_a1", "ab" * 32, 1234, path="/out/house_0.png")
    assert ledger.receipts(i) == [L.Receipt("asset_a1", "ab" * 32, 1234, "/out/house_0.png")]
    with pytest.raises(LedgerError, match="cannot go from succeeded to canceled"):
        ledger.finish(i, "canceled")


@pytest.mark.parametrize(
    "steps, bad",
    [
        (["refused"], "accepted"),
        (["uncertain", "refused"], "failed"),
        ([], "failed"),  # submitting -> failed: a submit that was never accepted cannot fail
    ],
)
def test_forbidden_transitions(ledger, steps, bad):
    i = new_intent(ledger)
    for step in steps:
        if step == "refused":
            ledger.mark_refused(i, "HTTP 400")
        elif step == "uncertain":
            ledger.mark_uncertain(i, "reply lost")
    with pytest.raises(LedgerError):
        if bad == "accepted":
            ledger.claim(i, "job_late1234")
        else:
            ledger.finish(i, bad)


def test_an_uncertain_intent_can_still_be_resolved(ledger):
    i = new_intent(ledger)
    ledger.mark_uncertain(i, "no reply", candidates=["job_c1aaaa", "job_c2bbbb"])
    rec = ledger.get(i)
    assert rec.state == "uncertain" and rec.candidates == ("job_c1aaaa", "job_c2bbbb") and rec.note == "no reply"
    assert ledger.claim(i, "job_c1aaaa", adopted=True).won
    assert ledger.get(i).adopted is True


def test_success_needs_a_job_for_a_submit_but_not_for_an_upload(ledger):
    i = new_intent(ledger)
    with pytest.raises(LedgerError, match="without a job id"):
        ledger.finish(i, "succeeded", asset_ids=["asset_x1"])
    u = new_intent(ledger, kind="upload", fingerprint="cd" * 32)
    ledger.mark_upload(u, "asset_up1")
    rec = ledger.get(u)
    assert rec.state == "succeeded" and rec.asset_ids == ("asset_up1",)
    assert ledger.find_reusable("cd" * 32, ACCOUNT, kind="upload").id == u


def test_bad_arguments_are_refused_before_writing(ledger):
    for bad in (
        dict(kind="quote"),
        dict(fingerprint="not-a-digest"),
        dict(account=KEY),  # the raw key is never an account id
        dict(seed=-1),
        dict(cost=float("nan")),
    ):
        with pytest.raises(ValueError):
            new_intent(ledger, **bad)
    i = new_intent(ledger)
    for bad_id in ("job with spaces", "../job_x", "asset_1", ""):
        with pytest.raises(ValueError):
            ledger.claim(i, bad_id)
    assert ledger.count() == 1


# --------------------------------------------------------------------------- claims


def test_a_job_is_held_by_one_intent(ledger):
    a, b = new_intent(ledger), new_intent(ledger)
    assert ledger.claim(a, "job_shared1").won
    lost = ledger.claim(b, "job_shared1")
    assert not lost and lost.holder == a
    lost = ledger.claim(b, "job_shared1", adopted=True)
    assert not lost.won and lost.holder == a
    assert ledger.holder_of("job_shared1") == a and ledger.claimed(["job_shared1", "job_free111"]) == {"job_shared1"}
    assert ledger.claim(a, "job_shared1").won  # idempotent for the holder
    with pytest.raises(LedgerError, match="already holds"):
        ledger.claim(a, "job_other11")


def test_a_direct_claim_displaces_a_guess(ledger):
    """B's reply was lost and B adopted job J by reconciliation; A's own reply then names J: A wins."""
    a, b = new_intent(ledger), new_intent(ledger)
    assert ledger.claim(b, "job_jjjjjj", adopted=True).won
    result = ledger.claim(a, "job_jjjjjj")
    assert result.won and result.displaced == b
    assert ledger.owns(a, "job_jjjjjj") and not ledger.owns(b, "job_jjjjjj")
    rec_b = ledger.get(b)
    assert rec_b.state == "uncertain" and rec_b.candidates == ("job_jjjjjj",) and "claimed by intent" in rec_b.note
    # B may adopt another job later
    assert ledger.claim(b, "job_kkkkkk", adopted=True).won


def test_claims_race_across_threads(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    shared = Ledger(path)
    jobs = [f"job_race{n:04d}" for n in range(40)]
    wins: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for job in jobs:
                intent = new_intent(shared)
                if shared.claim(intent, job).won:
                    with lock:
                        wins.append((job, intent))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(j for j, _ in wins) == jobs  # exactly one winner per job
    for job, intent in wins:
        assert shared.holder_of(job) == intent
    assert shared.count() == 6 * len(jobs)
    shared.close()


CLAIM_WORKER = """
import json, sys
from scenario_api import ledger as L
lg = L.Ledger(sys.argv[1])
acct = L.account_id("api_key_for_tests_42")
won = []
for n in range(int(sys.argv[2])):
    i = lg.begin(kind="submit", fingerprint="ab" * 32, account=acct, endpoint="/generate/controlnet",
                 base_url="http://x/v1", origin="cli")
    lg.mark_sent(i)
    if lg.claim(i, f"job_proc{n:04d}").won:
        won.append([f"job_proc{n:04d}", i])
print(json.dumps(won))
"""


def test_claims_race_across_processes(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    n = 30
    procs = [spawn_py(CLAIM_WORKER, str(path), str(n)) for _ in range(3)]
    wins = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        wins += json.loads(out)
    assert sorted(j for j, _ in wins) == [f"job_proc{k:04d}" for k in range(n)]
    with Ledger(path) as lg:
        assert lg.count() == 3 * n
        for job, intent in wins:
            assert lg.holder_of(job) == intent


# --------------------------------------------------------------------------- reuse, pending, pruning


def test_reuse_finds_the_newest_success_on_the_same_account(ledger):
    older, newer, failed, other = (new_intent(ledger) for _ in range(4))
    for n, i in enumerate((older, newer)):
        ledger.claim(i, f"job_reuse{n}aaa")
        ledger.finish(i, "succeeded", asset_ids=[f"asset_r{n}"])
    ledger.claim(failed, "job_reusefail")
    ledger.finish(failed, "failed", reason="NSFW")
    assert ledger.find_reusable(fp(), ACCOUNT).id == newer
    assert ledger.find_reusable(fp(), ACCOUNT, exclude=[newer]).id == older
    assert ledger.find_reusable(fp(), ACCOUNT, exclude=[newer, older]) is None
    assert ledger.find_reusable(fp(seed=2), ACCOUNT) is None
    assert ledger.find_reusable(fp(), L.account_id("someone-else")) is None
    assert ledger.get(other).state == "submitting"


def test_pending_lists_unfinished_intents_oldest_first(ledger):
    done, accepted, unsure, sending = (new_intent(ledger) for _ in range(4))
    ledger.claim(done, "job_done1111")
    ledger.finish(done, "succeeded", asset_ids=["asset_d"])
    ledger.claim(accepted, "job_acc11111")
    ledger.mark_uncertain(unsure, "no reply")
    assert [r.id for r in ledger.pending()] == [accepted, unsure, sending]
    assert ledger.pending(account=L.account_id("other")) == []
    assert all(r.owner_alive() for r in ledger.pending())


def test_prune_by_age_keeps_pending_three_times_longer(tmp_path, caplog):
    now = [1_000_000.0]
    lg = Ledger(tmp_path / "l.sqlite3", max_age_days=10, clock=lambda: now[0])
    old_done, old_pending, fresh = new_intent(lg), new_intent(lg), None
    lg.claim(old_done, "job_olddone1")
    lg.finish(old_done, "succeeded", asset_ids=["asset_o"])
    lg.add_receipt(old_done, "asset_o", "ef" * 32, 10)
    lg.claim(old_pending, "job_oldpend1")
    now[0] += 11 * 86400
    fresh = new_intent(lg)
    assert lg.prune() == 1
    assert lg.get(old_done) is None and lg.receipts(old_done) == []
    assert lg.get(old_pending) is not None and lg.get(fresh) is not None
    now[0] += 20 * 86400  # 31 days: past 3 x 10 for the pending one
    caplog.set_level(logging.WARNING, "scenario_api.ledger")
    assert lg.prune() == 1
    assert lg.get(old_pending) is None and lg.get(fresh) is not None
    assert "job_oldpend1" in caplog.text
    lg.close()


def test_max_age_comes_from_the_environment(monkeypatch, caplog):
    assert L.max_age_days_from_env({}) == 30
    assert L.max_age_days_from_env({"SCENARIO_LEDGER_MAX_AGE_DAYS": "7.5"}) == 7.5
    caplog.set_level(logging.WARNING, "scenario_api.ledger")
    for bad in ("nan", "inf", "-1", "0", "soon"):
        assert L.max_age_days_from_env({"SCENARIO_LEDGER_MAX_AGE_DAYS": bad}) == 30
    assert "SCENARIO_LEDGER_MAX_AGE_DAYS" in caplog.text


def test_default_paths(tmp_path):
    assert L.default_path({"SCENARIO_STATE_DIR": str(tmp_path)}) == tmp_path / "ledger.sqlite3"
    if os.name != "nt":
        assert L.default_path({}) == Path.home() / ".local" / "state" / "scenario-controlnet" / "ledger.sqlite3"
    assert L.user_dir_ledger_path(tmp_path) == tmp_path / "scenario" / "ledger.sqlite3"


def test_the_size_stays_bounded(tmp_path):
    now = [2_000_000.0]
    lg = Ledger(tmp_path / "l.sqlite3", max_age_days=1, clock=lambda: now[0])
    for _round in range(3):
        for n in range(120):
            i = new_intent(lg, prompt="x" * 80)
            lg.claim(i, f"job_size{_round}_{n:05d}")
            lg.finish(i, "succeeded", asset_ids=[f"asset_s{n}"])
        now[0] += 2 * 86400
        lg.prune()
    assert lg.count() == 0
    lg.close()
    size = sum(p.stat().st_size for p in tmp_path.glob("l.sqlite3*"))
    assert size < 2_000_000, size


# --------------------------------------------------------------------------- no secrets, no signed URLs


def test_no_credential_or_signed_url_reaches_the_file(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    lg = Ledger(path)
    i = new_intent(
        lg,
        prompt=f"see {SIGNED} now",
        endpoint="/generate/controlnet?Signature=abc",
        base_url=f"https://user:{SECRET}@api.example/v1?token={SECRET}",
        origin=f"cli {SIGNED}",
    )
    lg.mark_sent(i)
    lg.mark_uncertain(i, f"HTTP 503 from {SIGNED}; api_secret={SECRET} Signature={SECRET}")
    lg.claim(i, "job_scan1234", adopted=True)
    lg.finish(i, "failed", reason=f"download of {SIGNED} failed (password: {SECRET})")
    lg.add_receipt(i, "asset_x", "00" * 32, 1, path=SIGNED)
    rec = lg.get(i)
    assert "Signature" not in rec.prompt and rec.base_url == "https://api.example/v1"
    lg.close()
    for f in tmp_path.glob("ledger.sqlite3*"):
        data = f.read_bytes()
        assert SECRET.encode() not in data, f
        assert b"Signature=" not in data and b"sIgNaTuRe123" not in data, f
        assert KEY.encode() not in data, f  # the key id is hashed into the account id
        assert b"Policy=abc" not in data and b"Key-Pair-Id=K" not in data


def test_the_request_is_kept_in_canonical_form(ledger):
    png = base64.b64encode(b"\x89PNG fake bytes").decode()
    body = {"seed": 5, "prompt": "p", "controlImage": f"data:image/png;base64,{png}", "image": SIGNED, "g": 3.0}
    i = new_intent(ledger, request=body)
    req = ledger.get(i).request
    assert req["controlImage"].startswith("sha256:") and req["image"].endswith("asset_x.png") and req["g"] == 3
    assert list(req) == sorted(req)
    huge = new_intent(ledger, request={"prompt": "x" * 40_000})
    assert ledger.get(huge).request is None  # too big to keep: the fingerprint still is


def test_repr_shows_the_path_only(ledger):
    assert repr(ledger) == f"Ledger({str(ledger.path)!r})"


# --------------------------------------------------------------------------- schema versions


def test_migrates_a_version_1_file(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    for statement in L._MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO intents (kind, state, fingerprint, account, endpoint, base_url, origin, job_id, created_at, "
        "updated_at) VALUES ('submit', 'accepted', ?, ?, '/generate/controlnet', ?, 'cli', 'job_fromv1aa', ?, ?)",
        ("ab" * 32, ACCOUNT, BASE, time.time(), time.time()),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Ledger(path) as lg:
        [rec] = lg.pending()
        assert rec.job_id == "job_fromv1aa"
        lg.finish(rec.id, "succeeded", asset_ids=["asset_v1"])
        lg.add_receipt(rec.id, "asset_v1", "12" * 32, 5)  # the v2 table exists
        assert len(lg.receipts(rec.id)) == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


def test_a_newer_schema_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="newer version of the pack") as info:
        Ledger(path)
    assert str(path) in str(info.value)
    assert path.exists() and not damaged_files(tmp_path)


# --------------------------------------------------------------------------- damaged and hostile files


def test_a_file_that_is_not_a_database_is_moved_aside_with_its_job_ids(tmp_path, caplog):
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"garbage garbage job_salvageme123 more garbage " * 10)
    caplog.set_level(logging.WARNING, "scenario_api.ledger")
    with Ledger(path) as lg:
        [rec] = lg.pending()
        assert rec.state == "uncertain" and rec.candidates == ("job_salvageme123",)
        assert "salvaged" in rec.note
    [aside] = damaged_files(tmp_path)
    assert b"job_salvageme123" in aside.read_bytes()  # the damaged file is kept, not deleted
    assert "job_salvageme123" in caplog.text and str(aside) in caplog.text and "damaged" in caplog.text


def test_a_damaged_database_keeps_its_pending_job_ids(tmp_path, caplog):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as lg:
        pending = new_intent(lg)
        lg.claim(pending, "job_pendingAAAA1")
        done = new_intent(lg)
        lg.claim(done, "job_doneBBBBBB1")
        lg.finish(done, "succeeded", asset_ids=["asset_b"])
        for n in range(60):  # enough rows to fill a few pages
            new_intent(lg, prompt=f"filler {n} " + "y" * 60)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xee" * (4096 - 100)  # the schema page, after the file header
    path.write_bytes(bytes(data))
    caplog.set_level(logging.WARNING, "scenario_api.ledger")
    with Ledger(path) as lg:
        carried = {c for r in lg.pending() for c in r.candidates}
        assert "job_pendingAAAA1" in carried
        new_intent(lg)  # the fresh file works
    assert "job_pendingAAAA1" in caplog.text
    assert len(damaged_files(tmp_path)) == 1


def test_another_programs_database_is_moved_aside(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with Ledger(path) as lg:
        assert lg.count() == 0
    assert len(damaged_files(tmp_path)) == 1


def test_hostile_ledger_paths_are_refused_clearly(tmp_path):
    real = tmp_path / "real.sqlite3"
    Ledger(real).close()
    link = tmp_path / "link" / "ledger.sqlite3"
    link.parent.mkdir()
    link.symlink_to(real)
    fifo = tmp_path / "fifo" / "ledger.sqlite3"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    folder = tmp_path / "dir" / "ledger.sqlite3"
    folder.mkdir(parents=True)
    wal_link = tmp_path / "wal" / "ledger.sqlite3"
    wal_link.parent.mkdir()
    Path(str(wal_link) + "-wal").symlink_to(tmp_path / "elsewhere")
    for path, phrase in ((link, "symbolic link"), (fifo, "named pipe"), (folder, "directory"), (wal_link, "link")):
        with pytest.raises(LedgerError) as info:
            Ledger(path)
        assert str(path) in str(info.value) and phrase in str(info.value), str(info.value)
        assert "SCENARIO_STATE_DIR" in str(info.value)


def test_hostile_rows_are_skipped_by_row_id(ledger, caplog):
    good = new_intent(ledger)
    conn = ledger._conn()
    conn.execute(
        "INSERT INTO intents (kind, state, fingerprint, account, endpoint, base_url, origin, asset_ids, created_at, "
        "updated_at) VALUES ('submit', 'uncertain', ?, ?, '', '', '', ?, 0, 0)",
        ("ab" * 32, ACCOUNT, "[" * 5000 + "]" * 5000),
    )
    conn.execute(
        "INSERT INTO intents (kind, state, fingerprint, account, endpoint, base_url, origin, prompt, created_at, "
        "updated_at) VALUES ('submit', 'accepted', ?, ?, '', '', '', ?, 0, 0)",
        ("ab" * 32, ACCOUNT, SECRET),
    )
    caplog.set_level(logging.WARNING, "scenario_api.ledger")
    assert [r.id for r in ledger.pending()] == [good]
    assert "row 2" in caplog.text and "row 3" in caplog.text and SECRET not in caplog.text


# --------------------------------------------------------------------------- locks and kill -9

HOLD_LOCK = """
import sys, time
from scenario_api import ledger as L
lg = L.Ledger(sys.argv[1])
conn = lg._conn()
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE intents SET state = 'failed', note = 'half-written' WHERE id = 1")
print("HOLDING", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_writer_killed_inside_a_transaction_leaves_nothing_behind(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as lg:
        i = new_intent(lg)
        lg.claim(i, "job_killtx111")
    holder = spawn_py(HOLD_LOCK, str(path), "60")
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        with Ledger(path, busy_timeout=0.3, prune_on_open=False) as lg:
            with pytest.raises(LedgerError, match="stayed locked"):
                new_intent(lg)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
        holder.stderr.close()
    with Ledger(path, busy_timeout=5) as lg:
        rec = lg.get(1)
        assert rec.state == "accepted" and rec.note is None  # the uncommitted update is gone
        j = new_intent(lg)  # and the lock is free
        assert lg.get(j).state == "submitting"


WRITER = """
import sys
from scenario_api import ledger as L
lg = L.Ledger(sys.argv[1], prune_on_open=False)
acct = L.account_id("api_key_for_tests_42")
tag = sys.argv[2]
n = 0
while True:
    i = lg.begin(kind="submit", fingerprint="ab" * 32, account=acct, endpoint="/generate/controlnet",
                 base_url="http://x/v1", origin="cli", prompt="kill me", seed=n)
    lg.mark_sent(i)
    lg.claim(i, f"job_{tag}_{n:06d}")
    lg.finish(i, "succeeded", asset_ids=[f"asset_{tag}_{n}"])
    lg.add_receipt(i, f"asset_{tag}_{n}", "ab" * 32, n)
    print(i, flush=True)
    n += 1
"""


def test_kill_9_at_random_moments_keeps_the_file_consistent(tmp_path, caplog):
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    committed: set[int] = set()
    rng = __import__("random").Random(7)
    for round_ in range(2):
        writers = [spawn_py(WRITER, str(path), f"r{round_}w{k}") for k in range(2)]
        for w in writers:
            assert w.stdout.readline().strip().isdigit()  # it is writing
        time.sleep(rng.uniform(0.05, 0.4))
        for w in writers:
            w.send_signal(signal.SIGKILL)
        for w in writers:
            w.wait(10)
            out = w.stdout.read()
            w.stdout.close()
            w.stderr.close()
            committed.update(int(line) for line in out.split() if line.isdigit())
    caplog.set_level(logging.WARNING, "scenario_api.ledger")
    with Ledger(path) as lg:
        assert "damaged" not in caplog.text
        conn = lg._conn()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(f"SELECT {L._COLUMNS} FROM intents").fetchall()
        records = [L.decode_row(dict(r)) for r in rows]  # every row decodes
        by_id = {r.id: r for r in records}
        assert committed <= set(by_id)  # everything a writer saw committed is there
        for rec in records:
            assert rec.state in ("submitting", "accepted", "succeeded")
            if rec.state in ("accepted", "succeeded"):
                assert rec.job_id and rec.first_sent_at is not None
            if rec.state == "succeeded":
                assert rec.asset_ids
        jobs = [r.job_id for r in records if r.job_id]
        assert len(jobs) == len(set(jobs))
        orphans = conn.execute("SELECT COUNT(*) FROM receipts WHERE intent_id NOT IN (SELECT id FROM intents)")
        assert orphans.fetchone()[0] == 0
        assert len(records) >= 4


# --------------------------------------------------------------------------- properties: fingerprints

scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
bodies = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.recursive(
        scalar,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), c, max_size=3),
        max_leaves=8,
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.randoms(use_true_random=False))
def test_canonical_json_ignores_key_order(body, rnd):
    items = list(body.items())
    rnd.shuffle(items)
    assert L.canonical_json(dict(items)) == L.canonical_json(body)
    json.loads(L.canonical_json(body))  # valid JSON


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=-(2**52), max_value=2**52))
def test_integral_floats_equal_ints_but_bools_stay_apart(n):
    assert L.canonical_json({"v": float(n)}) == L.canonical_json({"v": n})
    if n in (0, 1):
        assert L.canonical_json({"v": bool(n)}) != L.canonical_json({"v": n})


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
def test_images_are_named_by_content(a, b):
    url = lambda data, mime="image/png": f"data:{mime};base64," + base64.b64encode(data).decode()  # noqa: E731
    digest = __import__("hashlib").sha256(a).hexdigest()
    same = L.canonical_json({"controlImage": url(a)})
    assert same == L.canonical_json({"controlImage": url(a, "image/PNG")})
    assert same == L.canonical_json({"controlImage": "asset_up1"}, images={"asset_up1": digest})
    assert (same == L.canonical_json({"controlImage": url(b)})) == (a == b)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 10**6), min_size=1, max_size=8),
    st.data(),
)
def test_any_changed_value_changes_the_fingerprint(body, data):
    key = data.draw(st.sampled_from(sorted(body)))
    changed = {**body, key: body[key] + 1}
    f = lambda b, **kw: L.fingerprint("submit", "controlnet", b, base_url=BASE, account=ACCOUNT, **kw)  # noqa: E731
    assert f(body) == f(dict(reversed(list(body.items()))))
    assert f(body) != f(changed)
    assert f(body) != f(body, project_id="proj_1")
    assert f(body) != L.fingerprint("submit", "controlnet", body, base_url=BASE + "x", account=ACCOUNT)
    assert f(body) != L.fingerprint("submit", "controlnet", body, base_url=BASE, account=L.account_id("k2"))
    assert f(body) != L.fingerprint("upload", "controlnet", body, base_url=BASE, account=ACCOUNT)


def test_fingerprints_ignore_signed_url_queries_and_refuse_non_finite_numbers():
    a = L.canonical_json({"image": SIGNED})
    b = L.canonical_json({"image": SIGNED.replace("sIgNaTuRe123", "other")})
    assert a == b and "Signature" not in a
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            L.canonical_json({"guidance": bad})
    with pytest.raises(ValueError):
        nested: dict = {}
        cur = nested
        for _ in range(40):
            cur["x"] = {}
            cur = cur["x"]
        L.canonical_json(nested)
    with pytest.raises(TypeError):
        L.canonical_json({"x": object()})
    assert L.fingerprint("submit", "e", {}, base_url=BASE + "?Signature=1", account=ACCOUNT) == L.fingerprint(
        "submit", "e", {}, base_url=BASE, account=ACCOUNT
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(alphabet="abcdefXYZ0123=&%", min_size=1, max_size=30))
def test_scrub_text_never_keeps_a_query_or_a_signature(prefix, tail):
    assert "u:p" not in L.scrub_text("http://u:p@host/x?y") and L.scrub_text("x" * 50_000, 60_000)
    out = L.scrub_text(f"{prefix} https://cdn.example/a.png?Signature={tail}&x=1 {prefix}", limit=10_000)
    assert "?Signature" not in out and "Signature=" + tail not in out.replace("<redacted>", "")
    out2 = L.scrub_text(f"{prefix} Signature={tail}", limit=10_000)
    assert ("Signature=" + tail) not in out2 or tail.startswith(("&",))


# --------------------------------------------------------------------------- properties: row decoding

VALID_ROW = {
    "id": 1,
    "kind": "submit",
    "state": "accepted",
    "fingerprint": "ab" * 32,
    "account": ACCOUNT,
    "endpoint": "/generate/controlnet",
    "base_url": BASE,
    "origin": "cli",
    "prompt": "p",
    "seed": 3,
    "cost": 1.5,
    "job_id": "job_valid123",
    "adopted": 0,
    "candidates": "[]",
    "asset_ids": '["asset_a"]',
    "note": None,
    "created_at": 1.0,
    "first_sent_at": None,
    "last_sent_at": 2.0,
    "updated_at": 3.0,
    "owner": "host:1",
    "request": '{"prompt":"p","seed":3}',
}
hostile = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=10)
    | st.sampled_from(
        ["[", "[[[]]]", '["job_x"]', '["asset_x", 5]', "{}", "[" * 3000, "nan", "job_ok1", '{"a": NaN}', "{" * 50]
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(VALID_ROW)), hostile, max_size=6))
def test_row_decoding_returns_a_record_or_a_row_error(overrides):
    row = {**VALID_ROW, **overrides}
    try:
        rec = L.decode_row(row)
    except LedgerRowError as exc:
        assert "damaged" in str(exc)
        row_id = row.get("id")
        if isinstance(row_id, int) and not isinstance(row_id, bool) and row_id >= 1:
            assert exc.row_id == row_id
    else:
        assert rec.state in L.STATES and rec.kind in L.KINDS
        assert all(isinstance(a, str) for a in rec.asset_ids + rec.candidates)
        assert rec.seed is None or isinstance(rec.seed, int)
        assert isinstance(rec.created_at, float)


def test_a_valid_row_decodes():
    rec = L.decode_row(VALID_ROW)
    assert rec.job_id == "job_valid123" and rec.asset_ids == ("asset_a",) and rec.pending
