"""Collections: the plan under the policy, approvals, safe suspension and reactivation, notices.

``plan`` flags customers and keeps the flag history; ``approvals`` records
who approved which suspension; ``apply`` makes the changes in Partner Center;
``notices`` writes to customers.
"""

from sync.collections.plan import CollectionsPlan, plan_collections, policy_from_settings

__all__ = ["CollectionsPlan", "plan_collections", "policy_from_settings"]
