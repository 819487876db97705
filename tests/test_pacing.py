"""The ETA-aware poll schedule, driven by the emulator's own timeline on a simulated clock (no real waiting)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from scenario_api import pacing
from scenario_api.emulator import Timing, timeline

EPOCH = 1_800_000_000.0
SHARES = {"queued": 0.15, "warming_up": 0.10, "running": 0.70, "finalizing": 0.05}


def _iso(offset: float) -> str:
    return datetime.fromtimestamp(EPOCH + offset, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def simulate(seconds, profile, history, *, kind="k", rtt=0.02, policy=None, seed="job"):
    """Follow one job with the schedule; returns (latency after success, polls, gaps asked for)."""
    timing = Timing(**{k: v * seconds for k, v in SHARES.items()})
    now = [rtt / 2]
    schedule = pacing.EtaSchedule(
        policy, submitted_at=now[0], created_at=_iso(0.0), history=history, clock=lambda: now[0]
    )
    t = now[0] + schedule.first_delay()
    polls, gaps = 0, []
    while True:
        seen_at = t + rtt / 2
        snap = timeline.snapshot(seen_at, timing, profile=profile, seed=seed)
        polls += 1
        now[0] = seen_at + rtt / 2
        job = SimpleNamespace(
            status=snap.status,
            progress=snap.progress,
            input={"modelId": "flux.1-dev", "numInferenceSteps": kind},
            status_history=[{"date": _iso(o), "status": s} for s, o in snap.history],
        )
        gap = schedule(job, polls)
        if snap.terminal:
            return now[0] - timing.total, polls, gaps
        gaps.append(gap)
        t = now[0] + gap


def test_no_poll_while_certainly_queued_and_learned_queue_times_move_the_first_poll():
    history = pacing.PhaseHistory()
    first = pacing.EtaSchedule(history=history, submitted_at=0.0, clock=lambda: 0.0)
    assert first.first_delay() == pacing.PollPolicy().first_poll
    simulate(30.0, "linear", history)  # queued + warming up = 7.5 s
    later = pacing.EtaSchedule(history=history, submitted_at=0.0, clock=lambda: 0.0)
    assert later.first_delay() == pacing.PollPolicy().first_poll_max  # capped: a short job may follow
    simulate(5.0, "linear", history)  # 1.25 s to start
    assert pacing.EtaSchedule(history=history, submitted_at=0.0, clock=lambda: 0.0).first_delay() < 1.25


@pytest.mark.parametrize("profile", ["linear", "jumpy"])
@pytest.mark.parametrize("seconds", [5.0, 12.0, 30.0, 60.0])
def test_a_repeated_job_is_seen_just_after_it_ends_within_the_request_budget(profile, seconds):
    history = pacing.PhaseHistory()
    simulate(seconds, profile, history, seed="first")
    latency, polls, gaps = simulate(seconds * 1.02, profile, history, seed="second")
    assert 0 <= latency <= 0.6
    assert polls <= (seconds * 1.02) / 3 + 3
    policy = pacing.PollPolicy()
    assert all(policy.min_gap <= g <= policy.max_gap for g in gaps)


def test_a_first_smooth_job_needs_no_history():
    latency, polls, _ = simulate(60.0, "linear", pacing.PhaseHistory())
    # the end of the run is exact; only the finalizing phase is unknown the first time
    assert latency <= pacing.PollPolicy().tail_max and polls <= 60 / 3 + 3


def test_a_misleading_progress_still_ends_with_short_gaps():
    latency, polls, gaps = simulate(30.0, "stalled-then-fast", pacing.PhaseHistory())
    assert latency <= pacing.PollPolicy().tail_max + 0.1
    assert polls <= 30 / 3 + 3


def test_scaled_policy_scales_durations_only():
    policy = pacing.PollPolicy()
    fast = policy.scaled(0.1)
    assert fast.first_poll == pytest.approx(policy.first_poll * 0.1)
    assert fast.tail_gap == pytest.approx(policy.tail_gap * 0.1)
    assert fast.approach == policy.approach and fast.budget_extra == policy.budget_extra
    history = pacing.PhaseHistory()
    simulate(600.0, "linear", history, policy=policy)
    slow = simulate(600.0, "linear", history, policy=policy, seed="b", rtt=0.2)
    history = pacing.PhaseHistory()
    simulate(60.0, "linear", history, policy=fast)
    quick = simulate(60.0, "linear", history, policy=fast, seed="b", rtt=0.02)
    assert quick[1] == slow[1]  # the same run, ten times faster
    assert quick[0] == pytest.approx(slow[0] / 10, abs=0.01)


def test_terminal_and_unknown_statuses():
    schedule = pacing.EtaSchedule()
    assert schedule(SimpleNamespace(status="failure", progress=0.3, status_history=[])) == 0.0
    assert schedule(SimpleNamespace(status="unknown", progress=None, status_history=[])) == schedule.policy.min_gap
    assert pacing.server_time("not a date") is None and pacing.job_kind({"prompt": "x"}) is None


async def test_the_client_learns_from_every_job_it_follows(emulator, settings):
    from helpers import fast_client

    from scenario_api import ControlNetRequest

    emulator.config(timing={"queued": 0.05, "warming_up": 0.05, "running": 0.2})
    request = ControlNetRequest(prompt="learn", control_image_id="asset_demo_canny", seed=5, width=256, height=256)
    async with fast_client(settings, poll_interval=None, poll_policy=pacing.PollPolicy().scaled(0.1)) as client:
        sub = await client.submit(request)
        await client.wait_for_job(sub.job_id)
    assert pacing.HISTORY.shortest_start() is not None and pacing.HISTORY.finalize_ratio() is not None
    assert len(emulator.requests("GET", f"/v1/jobs/{sub.job_id}")) <= 0.3 / 3 / 0.1 + 3  # the budget, scaled


def test_two_staircase_readings_that_agree_by_chance_do_not_fix_the_end():
    # Running since 1.0; readings 0.1 at 2.0 and 0.4 at 5.0 both allow a run of at most 10 s. A stale
    # staircase gives that by chance (its jump to 0.4 came some time after 2.0): the run may end well
    # before 11.0, so the schedule keeps looking instead of jumping to 11.0. A third reading that agrees
    # (0.7 at 8.0) is a smooth progress: now the end is exact and the next look lands just after it.
    now = [0.0]
    history = pacing.PhaseHistory()
    schedule = pacing.EtaSchedule(submitted_at=0.0, created_at=_iso(0.0), history=history, clock=lambda: now[0])
    dates = [{"date": _iso(0.0), "status": "queued"}, {"date": _iso(1.0), "status": "in-progress"}]

    def look(at: float, progress: float) -> float:
        now[0] = at
        return schedule(SimpleNamespace(status="in-progress", progress=progress, status_history=dates), 0)

    look(2.0, 0.1)
    assert look(5.0, 0.4) < 11.0 - 5.0
    assert look(8.0, 0.7) == pytest.approx(11.0 - 8.0 + schedule.policy.landing)


@pytest.mark.parametrize("profile", ["linear", "jumpy"])
@pytest.mark.parametrize("seconds", [5.0, 12.0, 30.0, 60.0])
def test_even_a_first_job_stays_within_its_request_budget(profile, seconds):
    # No earlier job says how long this kind runs or finalizes: the request budget (T / 3 + 3) still holds,
    # because a poll that could not leave room for the final one becomes the last look instead.
    for seed in ("a", "b", "c", "d"):
        length = seconds * {"a": 0.95, "b": 1.0, "c": 1.03, "d": 1.05}[seed]
        latency, polls, _ = simulate(length, profile, pacing.PhaseHistory(), seed=seed)
        assert polls <= length / 3 + 3, (seed, polls)
        assert 0 <= latency <= pacing.PollPolicy().tail_max + 0.5


@pytest.mark.parametrize("profile", ["linear", "jumpy"])
def test_a_scaled_policy_keeps_the_request_budget_of_the_job_it_follows(profile):
    # A job clock ten times faster with a policy ten times faster is the same run: the same polls and
    # the request budget counts job seconds (budget_period scales), so it is neither spent early nor starved.
    history, fast_history = pacing.PhaseHistory(), pacing.PhaseHistory()
    policy = pacing.PollPolicy()
    fast = policy.scaled(0.1)
    assert fast.budget_period == pytest.approx(policy.budget_period * 0.1)
    for seed in ("first", "second", "third"):
        slow = simulate(30.0, profile, history, policy=policy, seed=seed, rtt=0.2)
        quick = simulate(3.0, profile, fast_history, policy=fast, seed=seed, rtt=0.02)
        assert quick[1] == slow[1], seed
        assert quick[0] == pytest.approx(slow[0] / 10, abs=0.01)
        assert quick[1] <= 30.0 / 3 + 3


def test_a_tiny_progress_reading_does_not_pull_the_end_forward():
    # A progress of 0.0025 read 7.6 ms after the dated start would allow a run of 3 s: the dates' rounding
    # and the clock offset are the whole of that. Only clear readings bound the run: 0.4 at 5.0 says 10 s.
    now = [0.0]
    schedule = pacing.EtaSchedule(
        submitted_at=0.0, created_at=_iso(0.0), history=pacing.PhaseHistory(), clock=lambda: now[0]
    )
    dates = [{"date": _iso(0.0), "status": "queued"}, {"date": _iso(1.0), "status": "in-progress"}]

    def look(at: float, progress: float) -> SimpleNamespace:
        now[0] = at
        job = SimpleNamespace(status="in-progress", progress=progress, status_history=dates)
        schedule(job, 0)
        return job

    look(1.0076, 0.0025)
    job = look(5.0, 0.4)
    assert schedule.predicted_end(job) == pytest.approx(11.0)


@pytest.mark.parametrize("length", [0.9, 0.92, 0.94, 1.08])
def test_a_known_kind_is_seen_finalizing_wherever_its_run_ends(length):
    # Earlier jobs of this kind ran 60, 63 and 58 s and taught the finalizing phase: a jumpy job that runs
    # somewhat shorter or longer than all of them is still seen finalizing (its exact end), then just
    # after success, and within its request budget.
    history = pacing.PhaseHistory()
    for seed, seconds in (("a", 60.0), ("b", 63.0), ("c", 58.0)):
        simulate(seconds, "jumpy", history, seed=seed)
    for k in range(3):
        latency, polls, _ = simulate(60.0 * length, "jumpy", history, seed=f"new{length}{k}")
        assert 0 <= latency <= 0.3, k
        assert polls <= 60.0 * length / 3 + 3, k


def test_a_job_that_runs_longer_than_its_kind_keeps_looks_for_where_its_progress_says_it_can_end():
    # Earlier jobs of this kind ran about 11.5 s; this one runs 13 s. Their window is no hard bound: the
    # looks are shared out up to the latest end the progress readings allow, so some are left when the job
    # outlives the learned window, and the budget still holds.
    for seed in ("n0", "n1", "n2", "n3"):
        history = pacing.PhaseHistory()
        for earlier, seconds in (("a", 12.0 * 0.95), ("b", 12.0 * 0.96)):
            simulate(seconds, "jumpy", history, seed=earlier)
        latency, polls, _ = simulate(12.0 * 1.08, "jumpy", history, seed=seed)
        assert 0 <= latency <= 0.6, seed
        assert polls <= 12.0 * 1.08 / 3 + 3, seed
