"""Which customer an operator means: by tenant id, primary domain or unique name.

Every command that names a customer (approve, hold, statement, audit, payments
list, collections history) goes through :func:`resolve_customers`, so the same
words find the same customer everywhere. A name that matches nobody gets the
closest names, domains or ids as suggestions; a name shared by several
customers is refused with their tenant ids, since guessing would act on the
wrong tenant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconciliation.errors import InputError
from sync.db.models import Customer

__all__ = ["customer_names", "resolve_customers"]


def resolve_customers(session: Session, given: Iterable[str]) -> dict[str, str]:
    """Map each argument (tenant id, primary domain or unique name, any case) to a customer id."""
    rows = session.execute(select(Customer.id, Customer.domain, Customer.name)).all()
    exact = {cid.lower(): cid for cid, _, _ in rows}
    exact |= {domain.lower(): cid for cid, domain, _ in rows if domain}
    named: dict[str, set[str]] = {}
    for cid, _, name in rows:
        if name:
            named.setdefault(" ".join(name.lower().split()), set()).add(cid)
    found: dict[str, str] = {}
    problems: list[str] = []
    for text in given:
        key = " ".join(text.strip().lower().split())
        customer = exact.get(key)
        if customer is None and key in named:
            ids = named[key]
            if len(ids) > 1:
                problems.append(
                    f"{text!r}: {len(ids)} customers have this name; "
                    f"give a tenant id ({', '.join(sorted(ids))})"
                )
                continue
            customer = next(iter(ids))
        if customer is None:
            problems.append(f"unknown customer {text!r}{_suggestion(key, rows)}")
        else:
            found[text] = customer
    if problems:
        raise InputError(
            problems[0]
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + " — give a tenant id, primary domain or unique name; "
            "run `pcsync sync` if the customer is new",
            tuple(problems) if len(problems) > 1 else (),
        )
    return found


def _suggestion(key: str, rows: Iterable[tuple[str, str | None, str]]) -> str:
    """``; did you mean …?`` with the closest names, domains or ids, or nothing."""
    shown: dict[str, str] = {}  # what is compared (lower case) → how it is shown
    for cid, domain, name in rows:
        for value in (name, domain, cid):
            if value:
                shown.setdefault(value.lower(), value)
    close = difflib.get_close_matches(key, list(shown), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(shown[c]) for c in close) + "?"


def customer_names(session: Session) -> dict[str, str]:
    """Every known customer's name by tenant id, to print beside the ids."""
    return {cid: name for cid, name in session.execute(select(Customer.id, Customer.name))}
