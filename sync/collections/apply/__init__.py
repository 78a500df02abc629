"""``pcsync collections apply``: suspend approved customers, reactivate paid ones — safely.

Preparing an apply (``batch``) changes nothing at Microsoft and revokes
nothing: it lists every subscription that would change and why, the customers
still waiting for an approval, and whether a safety limit (``limits``) refuses
the whole apply. Executing it (``execute``):

* first records the approvals that lapsed (revoked with the reason, audited);
* refuses everything when the safety limits are exceeded;
* makes one change per transaction, written ``pending`` before Microsoft is
  asked, and settles every unclear answer from the live status (``attempt``);
* goes on past a refused subscription and reports the failures at the end — a
  rerun only retries what is not yet in its target state;
* records a refusal no rerun can overcome (an Azure plan with an active Azure
  subscription, 900115; a deleted subscription) as ``refused``: it is not sent
  again under the same approval and never reported as "rerun to finish"
  (``blocked``).

Reactivation touches only subscriptions pcsync owns (see ``suspended_by_pcsync``).
The renewal guard's ``stop_renewal`` and its ``restore_renewal`` go the same way
(``renewal``).
"""

from sync.collections.apply.batch import prepare_apply, refresh_subscriptions
from sync.collections.apply.execute import execute_apply, settle_before_apply
from sync.collections.apply.model import (
    ApplyOutcome,
    ApplyPlan,
    Change,
    Waiting,
    renew_state,
    require_today,
)

__all__ = [
    "ApplyOutcome",
    "ApplyPlan",
    "Change",
    "Waiting",
    "execute_apply",
    "prepare_apply",
    "refresh_subscriptions",
    "renew_state",
    "require_today",
    "settle_before_apply",
]
