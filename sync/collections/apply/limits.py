"""The safety limits an apply is held to, as one refusal or none.

Per apply: ``max_suspend_customers`` and ``max_suspend_share`` count the
customers it suspends or stops the renewals of. Over time:
``max_suspended_total`` counts the customers pcsync keeps suspended after it.
Past any of them the whole apply is refused and nothing changes.
"""

from __future__ import annotations

from decimal import Decimal

from sync.config import Settings

__all__ = ["refusal"]


def refusal(
    settings: Settings,
    suspend_customers: int,
    active_customers: int,
    suspended_total: int,
    acted_on: int | None = None,
) -> str | None:
    """Why a safety limit refuses this apply. ``acted_on``: the customers it suspends or
    stops the renewals of (the per-apply limits count both), when not only suspensions."""
    limits = settings.collections
    if acted_on is not None and acted_on != suspend_customers:
        if acted_on > limits.max_suspend_customers:
            return (
                f"this apply would suspend or stop the renewals of {acted_on} customers, more "
                f"than [collections] max_suspend_customers = {limits.max_suspend_customers}"
            )
        if active_customers and Decimal(acted_on) / active_customers > limits.max_suspend_share:
            return (
                f"this apply would suspend or stop the renewals of {acted_on} of the "
                f"{active_customers} customers with active subscriptions, more than "
                f"[collections] max_suspend_share = {limits.max_suspend_share}"
            )
    if suspended_total > limits.max_suspended_total:
        return (
            f"after this apply pcsync would keep {suspended_total} customers suspended, more "
            f"than [collections] max_suspended_total = {limits.max_suspended_total}"
        )
    if suspend_customers > limits.max_suspend_customers:
        return (
            f"this apply would suspend {suspend_customers} customers, more than "
            f"[collections] max_suspend_customers = {limits.max_suspend_customers}"
        )
    if (
        active_customers
        and Decimal(suspend_customers) / active_customers > limits.max_suspend_share
    ):
        return (
            f"this apply would suspend {suspend_customers} of the {active_customers} customers "
            f"with active subscriptions, more than [collections] max_suspend_share = "
            f"{limits.max_suspend_share}"
        )
    return None
