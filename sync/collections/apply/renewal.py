"""The auto-renew changes of an apply: ``stop_renewal`` and ``restore_renewal``.

``stop_renewal`` (auto-renew off, PATCH ``autoRenewEnabled``) is the renewal
guard's action: approved per customer (an approval of kind ``stop_renewal``, at
a follow_up or suspend stage), for the subscriptions the guard lists as renewing
soon. ``restore_renewal`` (auto-renew on) needs no approval and is never
limited: it turns back on what pcsync turned off, once the customer is no longer
at a follow_up or suspend stage because it paid — not while a hold merely sets
the stage aside (see ``renewals_stopped_by_pcsync`` for when it is still
pcsync's) — and after a reactivation it restores auto-renew when it was on
before pcsync's suspension.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sync.collections.apply.model import PRESSED, Change, Waiting, renew_state
from sync.collections.plan import CollectionsPlan, SubscriptionView

__all__ = ["Renewals", "renewal_changes"]


@dataclass(frozen=True)
class Renewals:
    """What the renewal changes of an apply are decided from."""

    approvals: dict[str, int]  # stop_renewal approval per customer
    renewing: dict[str, set[str]]  # per customer: subscriptions renewing within the window
    stopped: dict[str, list[str]]  # per customer: auto-renew pcsync turned off, still off
    refused: dict[str, str]  # subscriptions Microsoft refused for good under the approval


def renewal_changes(
    plan: CollectionsPlan,
    subs: dict[str, list[SubscriptionView]],
    renewals: Renewals,
    changes: list[Change],
    before_suspension: Callable[[str], bool | None],
) -> tuple[list[Change], list[Waiting]]:
    """Auto-renew changes, each placed after the status change of its subscription."""
    out: list[Change] = []
    waiting: list[Waiting] = []
    names = {f.customer_id: f.customer_name for f in plan.flags}
    pressed = {f.customer_id for f in plan.flags if f.action in PRESSED}
    views = {s.id: s for rows in subs.values() for s in rows}
    moving = {c.subscription_id: c.action for c in changes}
    restoring: set[str] = set()
    for change in changes:
        out.append(change)
        if change.action != "reactivate":
            continue
        if before_suspension(change.subscription_id) is True:
            restoring.add(change.subscription_id)
            out.append(
                replace(
                    change,
                    action="restore_renewal",
                    status_now=renew_state(change.auto_renew_now),
                    why="auto-renew was on before pcsync suspended it; restored with the "
                    "reactivation",
                )
            )
    for customer, sub_ids in sorted(renewals.stopped.items()):
        if customer in pressed or customer in plan.held:
            continue  # not paid (a hold sets the stage aside, it does not pay it)
        for sub_id in sub_ids:
            view = views.get(sub_id)
            if sub_id in restoring or view is None:
                continue
            if view.status != "active" and moving.get(sub_id) != "reactivate":
                continue  # Microsoft refuses auto-renew changes on a suspended one (800091)
            restoring.add(sub_id)
            out.append(
                Change(
                    customer,
                    names.get(customer, customer),
                    sub_id,
                    view.name,
                    "restore_renewal",
                    renew_state(view.auto_renew),
                    None,
                    "pcsync turned auto-renew off; the customer is no longer at a follow_up or "
                    "suspend stage",
                    view.auto_renew,
                )
            )
    for customer, approval in sorted(renewals.approvals.items()):
        if customer not in pressed:
            continue
        stages = sorted({f.stage or "" for f in plan.for_customer(customer)} - {""})
        for sub_id in sorted(renewals.renewing.get(customer, set())):
            view = views.get(sub_id)
            if view is None or view.status != "active" or view.auto_renew is not True:
                continue
            if moving.get(sub_id) == "suspend":
                continue  # the suspension turns auto-renew off (recorded to restore it)
            if sub_id in renewals.refused:
                waiting.append(Waiting(customer, names[customer], renewals.refused[sub_id]))
                continue
            end = f", term ends {view.term_end}" if view.term_end else ""
            out.append(
                Change(
                    customer,
                    names[customer],
                    sub_id,
                    view.name,
                    "stop_renewal",
                    renew_state(view.auto_renew),
                    approval,
                    f"renewal guard: auto-renews soon{end}; at stage {', '.join(stages)}; "
                    f"approved (approval {approval})",
                    view.auto_renew,
                )
            )
    return out, waiting
