"""The optional creative-unit budget: quote first, refuse before anything is paid.

With ``max_creative_units > 0`` every request of the run (one per fan-out job)
is priced with Scenario's free dry run (``?dryRun=true``, HTTP 269, no job).
If the sum is above the budget the node raises :class:`BudgetExceededError`
and submits nothing. The quote is Scenario's price at that moment; the final
``billing.cuCost`` is shown on the node when the job ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..scenario_api import BudgetExceededError, ControlNetRequest
from .concurrency import bounded
from .jobs import FANOUT_LIMIT
from .status import format_cu


async def enforce_budget(client: Any, requests: Sequence[ControlNetRequest], budget: float) -> float | None:
    """Return the quoted total, or raise if it exceeds ``budget``; ``budget <= 0`` skips quoting (``None``)."""
    if budget is None or budget <= 0:
        return None

    async def quote(_: int, req: ControlNetRequest) -> float:
        # A free dry run may be abandoned at any point: Stop (task cancellation) ends it at once, even
        # while it waits out a 429's Retry-After.
        q = await client.quote(req)
        return float(q.creative_units)

    costs = await bounded(FANOUT_LIMIT, list(requests), quote)
    total = sum(costs)
    if total > budget:
        jobs = f"{len(costs)} jobs" if len(costs) > 1 else "1 job"
        raise BudgetExceededError(
            f"Scenario: this run would cost {format_cu(total)} creative units ({jobs}), above "
            f"max_creative_units = {format_cu(budget)}. Nothing was submitted. Raise max_creative_units, lower "
            "num_samples, steps or size, or set max_creative_units to 0 to run without a budget",
            cost=total,
            budget=budget,
        )
    return total
