"""``pcsync payments import --dry-run``: what the import would do, found in memory, nothing staged.

The import stages every row in a temporary table and lets the database find
repeats and conflicts; the dry run finds the same things without writing a
row anywhere. The file is read a column at a time
(:mod:`connectors.payments.columnar`: a plain CSV parsed and checked in
native code, any other file record by record), its payments kept as compact
columns (about 60 bytes a row). Then, in memory:

* references repeated in the file, rejected rows' sound references included
  (:mod:`sync.payments.references`: 64-bit hashes, equal ones confirmed as text);
* references already stored, read once from ``payments``: the same content
  (the import's content hash) is a payment already imported or voided, other
  content a conflict;
* the counts, the problems in row order (only the first ``shown`` are kept
  as text) and the credit preview (:func:`sync.payments.credit.credit_left`,
  the import's own arithmetic).

The rules and messages are the import's: rows are checked by the same row
checker, the repeat and conflict messages are the database's, written here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table, select

from connectors.payments.arrays import ints, strings
from connectors.payments.arrays import numbers as numpy_of
from connectors.payments.columnar import BIG_UNITS
from connectors.payments.files import PaymentBatch, PaymentFile, RowProblem
from reconciliation.money import minor_unit
from sync.config import Settings
from sync.db.models import Payment
from sync.payments.credit import (
    SHOWN_PAYMENTS,
    CreditPayment,
    FirstPayments,
    InCredit,
    credit_left,
    minor_units,
)
from sync.payments.digest import batch_digests, same_payment
from sync.payments.references import HashIndex, repeats, text_hashes
from sync.payments.scan import Scan, scan_file

__all__ = ["Preview", "preview"]

_PAYMENTS = cast(Table, Payment.__table__)
_STORED_BATCH = 20_000


@dataclass(frozen=True)
class Preview:
    """What the import of a file would do."""

    rows: int
    rejected: int  # rows
    unchanged: int
    voided: int
    problems: int  # problem lines (a row may have several)
    listed: tuple[RowProblem, ...]  # the first ``shown`` problems, in row order
    in_credit: tuple[InCredit, ...]

    @property
    def new(self) -> int:
        return self.rows - self.rejected - self.unchanged - self.voided


def _stored(connection: Connection) -> Iterator[list[tuple[str, str | None, bool, Decimal]]]:
    p = _PAYMENTS
    result = connection.execute(
        select(
            p.c.reference, p.c.content_hash, p.c.voided_at.is_not(None), p.c.amount
        ).execution_options(stream_results=True, yield_per=_STORED_BATCH)
    )
    for part in result.partitions(_STORED_BATCH):
        yield [
            (reference, digest, bool(voided), amount) for reference, digest, voided, amount in part
        ]


_UNSTORED, _UNCHANGED, _VOIDED, _CONFLICT = 0, 1, 2, 3


def preview(
    settings: Settings,
    connection: Connection,
    file: PaymentFile,
    *,
    today: date,
    shown: int,
    skip_bad_rows: bool,
) -> Preview:
    """What importing ``file`` would do; reads the database, writes nothing.

    The credit preview is worked out when the import would go on: no row is
    rejected, or ``skip_bad_rows``.
    """
    scan = scan_file(file, shown)
    numbers = scan.column("numbers")
    good = len(numbers)
    hashes = scan.hashes
    # rejected rows whose reference is sound take part in the repeats
    sound = [at for at, text in enumerate(scan.rejected_references) if text is not None]
    sound_texts = [cast(str, scan.rejected_references[at]) for at in sound]
    all_numbers, all_hashes = numbers, hashes
    if sound:
        all_numbers = np.concatenate(
            [numbers, np.array([scan.rejected_numbers[at] for at in sound], np.int64)]
        )
        all_hashes = np.concatenate([hashes, text_hashes(strings(sound_texts))])

    def texts(positions: np.ndarray[Any, Any]) -> list[str]:
        inside = positions[positions < good]
        found = dict(zip(inside.tolist(), scan.texts("references", inside), strict=True))
        return [found[at] if at < good else sound_texts[at - good] for at in positions.tolist()]

    repeated = repeats(all_numbers, all_hashes, texts)
    first_rows: dict[int, int] = {}  # row number → the first row with its reference
    good_repeat = np.zeros(good, bool)
    for at, first in zip(repeated.positions.tolist(), repeated.first_rows.tolist(), strict=True):
        if at < good:
            good_repeat[at] = True
            first_rows[int(numbers[at])] = first
        else:
            first_rows[scan.rejected_numbers[sound[at - good]]] = first
    index = None
    if good and connection.execute(select(_PAYMENTS.c.id).limit(1)).first() is not None:
        index = HashIndex(hashes, np.flatnonzero(~good_repeat) if good_repeat.any() else None)
    del hashes, all_hashes  # the index has what is wanted of them
    scan.forget("hashes")
    state, conflicts = _match_stored(connection, scan, index, good)
    new = ~good_repeat & (state == _UNSTORED)
    rejected = len(scan.rejected_numbers) + int(good_repeat.sum()) + len(conflicts)
    del numbers, all_numbers, good_repeat  # room for the credit preview
    scan.forget("numbers")
    in_credit: tuple[InCredit, ...] = ()
    if new.any() and (not rejected or skip_bad_rows):
        in_credit = tuple(_credit(settings, connection, scan, new, today))
    return Preview(
        rows=good + len(scan.rejected_numbers),
        rejected=rejected,
        unchanged=int((state == _UNCHANGED).sum()),
        voided=int((state == _VOIDED).sum()),
        problems=sum(scan.rejected_problems) + len(repeated) + len(conflicts),
        listed=_listed(file.path.name, scan, first_rows, conflicts),
        in_credit=in_credit,
    )


def _match_stored(
    connection: Connection, scan: Scan, index: HashIndex | None, good: int
) -> tuple[np.ndarray[Any, Any], dict[int, str]]:
    """Each payment's state against the stored ones, and the conflicts (row → reference).

    ``index`` holds the payments that are not repeats (the database marks only
    rows without a problem); None when nothing is stored. The stored payments
    are read once, streamed; each part is matched and confirmed at once, so
    memory holds a part, not every match.
    """
    state = np.zeros(good, np.int8)
    conflicts: dict[int, str] = {}
    if index is None:
        return state, conflicts
    codes = scan.codes
    for part in _stored(connection):
        which, rows = index.meeting([reference for reference, *_ in part])
        if not len(rows):
            continue
        order = np.argsort(rows)
        which, rows = which[order], rows[order]
        texts = scan.texts("references", rows)
        same = [n for n, at in enumerate(which.tolist()) if part[at][0] == texts[n]]
        if not same:
            continue  # collisions of hashes, not the same references
        which, rows = which[same], rows[same]
        invoices: list[str | None] = list(scan.texts("invoices", rows))
        batch = PaymentBatch.empty()._replace(
            customer_ids=[codes.customer_ids[c] for c in scan.column("customers")[rows]],
            dates=[date.fromordinal(d).isoformat() for d in scan.column("days")[rows].tolist()],
            amounts=scan.texts("amounts", rows),
            currencies=[codes.currencies[c] for c in scan.column("currencies")[rows]],
            invoice_ids=invoices,
        )
        digests = batch_digests(batch)
        numbers = scan.column("numbers")[rows].tolist()
        for n, (at, row, number, digest) in enumerate(
            zip(which.tolist(), rows.tolist(), numbers, digests, strict=True)
        ):
            reference, stored_digest, voided, stored_amount = part[at]
            if digest != stored_digest and not same_payment(
                batch.customer_ids[n], batch.dates[n], Decimal(batch.amounts[n]),
                batch.currencies[n], invoices[n],
                stored_amount=stored_amount, stored_digest=stored_digest,
            ):  # fmt: skip
                state[row] = _CONFLICT
                conflicts[number] = reference
            else:
                state[row] = _VOIDED if voided else _UNCHANGED
    return state, conflicts


def _listed(
    file: str, scan: Scan, first_rows: dict[int, int], conflicts: dict[int, str]
) -> tuple[RowProblem, ...]:
    """The first ``scan.shown`` problems in row order, each row's sorted as the import sorts them.

    Every rejected row has a problem of its own, so none after the last of the
    rejected rows kept in full can be among the first ``shown``.
    """
    kept = {row.row: row for row in scan.first_rejected}
    last = (
        scan.first_rejected[-1].row
        if len(scan.rejected_numbers) > len(scan.first_rejected)
        else None
    )
    rows = sorted(
        {*kept, *first_rows, *conflicts} if last is None
        else {*kept, *(r for r in first_rows if r <= last), *(r for r in conflicts if r <= last)}
    )  # fmt: skip
    listed: list[RowProblem] = []
    for number in rows:
        if len(listed) >= scan.shown:
            break
        lines = [f"{name}: {reason}" for name, reason in kept[number].problems] if (
            number in kept
        ) else []  # fmt: skip
        if number in first_rows:
            lines.append(f"reference: duplicate of row {first_rows[number]}")
        if number in conflicts:
            lines.append(
                f"reference: '{conflicts[number]}' was imported before with different content "
                "(a corrected payment needs a reference of its own)"
            )
        for line in sorted(lines):
            name, _, reason = line.partition(": ")
            listed.append(RowProblem(file, number, name, reason))
    return tuple(listed[: scan.shown])


def _credit(
    settings: Settings, connection: Connection, scan: Scan, new: np.ndarray[Any, Any], today: date
) -> list[InCredit]:
    """The import's credit preview, from the new payments' columns."""
    codes = scan.codes
    width = max(len(codes.currencies), 1)
    everything = bool(new.all())

    def of_new(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return values if everything else values[new]

    keys = of_new(scan.column("customers")) * np.int32(width) + of_new(scan.column("currencies"))
    days = of_new(scan.column("days"))
    size = len(codes.customer_ids) * width
    sums = np.zeros((2, size), np.int64)
    units = of_new(scan.column("units"))
    big = np.flatnonzero(units == BIG_UNITS)
    past_64_bits: dict[int, int] = {}  # by key: minor units of amounts read from their text
    if len(big):
        at = big if everything else np.flatnonzero(new)[big]
        for key, amount in zip(keys[big].tolist(), scan.texts("amounts", at), strict=True):
            currency = codes.currencies[key % width]
            past_64_bits[key] = past_64_bits.get(key, 0) + minor_units(Decimal(amount), currency)
        units = units.copy()
        units[big] = 0
    for start in range(0, len(units), 1 << 18):  # in parts: two temporaries of 2 MB each
        high, low = np.divmod(units[start : start + (1 << 18)], 10**9)
        np.add.at(sums[0], keys[start : start + (1 << 18)], high)
        np.add.at(sums[1], keys[start : start + (1 << 18)], low)
    counts = np.bincount(keys, minlength=size)
    imported: dict[tuple[str, str], Decimal] = {}
    for key in np.flatnonzero(counts).tolist():
        currency = codes.currencies[key % width]
        total = int(sums[0][key]) * 10**9 + int(sums[1][key]) + past_64_bits.get(key, 0)
        imported[(codes.customer_ids[key // width], currency)] = Decimal(total).scaleb(
            -minor_unit(currency)
        )
    positions = None if everything else np.flatnonzero(new)

    def first(wanted: list[tuple[str, str]]) -> FirstPayments:
        return _first(scan, keys, days, positions, counts, wanted, width)

    touched = sorted({customer for customer, _ in imported})
    latest = date.fromordinal(int(days.max()))
    return credit_left(connection, settings, imported, latest, touched, first, today)


def _first(
    scan: Scan,
    keys: np.ndarray[Any, Any],
    days: np.ndarray[Any, Any],
    positions: np.ndarray[Any, Any] | None,
    counts: np.ndarray[Any, Any],
    wanted: list[tuple[str, str]],
    width: int,
) -> FirstPayments:
    """The first ``SHOWN_PAYMENTS`` new payments of each wanted key, by date and reference."""
    codes = scan.codes
    customer_code = {customer_id: n for n, customer_id in enumerate(codes.customer_ids)}
    currency_code = {currency: n for n, currency in enumerate(codes.currencies)}
    wanted_keys = np.array(
        [customer_code[c] * width + currency_code[k] for c, k in wanted], np.int64
    )
    is_wanted = np.zeros(len(counts), bool)
    is_wanted[wanted_keys] = True
    chosen = is_wanted[keys]
    # A key's payments after its SHOWN_PAYMENTS-th earliest date cannot be among its first:
    # each key's cut date moves to its next date until it covers that many (or all) of them.
    cut = np.full(len(counts), -1, np.int32)
    covered = np.zeros(len(counts), np.int64)
    for _ in range(SHOWN_PAYMENTS):
        short = is_wanted & (covered < np.minimum(counts, SHOWN_PAYMENTS))
        if not short.any():
            break
        never = np.iinfo(np.int32).max
        following = np.full(len(counts), never, np.int32)
        # the next date of each short key (short keys are chosen ones)
        np.minimum.at(following, keys, np.where(short[keys] & (days > cut[keys]), days, never))
        cut[short] = following[short]
        covered = np.bincount(keys[chosen & (days <= cut[keys])], minlength=len(counts))
    near = np.flatnonzero(chosen & (days <= cut[keys]))
    del chosen
    rows = near if positions is None else positions[near]
    table = pa.RecordBatch.from_arrays(
        [ints(keys[near]), ints(days[near]), scan.text_array("references", rows)],
        names=["key", "day", "reference"],
    )
    order = pc.sort_indices(
        table, sort_keys=[("key", "ascending"), ("day", "ascending"), ("reference", "ascending")]
    )
    order_values = numpy_of(order).astype(np.int64)
    near_days = days[near]
    ordered = keys[near][order_values]
    starts = np.searchsorted(ordered, wanted_keys)
    ends = np.searchsorted(ordered, wanted_keys, side="right")
    shown: FirstPayments = {}
    picked: list[np.ndarray[Any, Any]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        picked.append(order_values[start : min(end, start + SHOWN_PAYMENTS)])
    everyone = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    found = dict(
        zip(
            everyone.tolist(),
            zip(
                scan.texts("references", rows[everyone]),
                scan.texts("amounts", rows[everyone]),
                strict=True,
            ),
            strict=True,
        )
    )
    for (customer, currency), key, these in zip(wanted, wanted_keys.tolist(), picked, strict=True):
        listed = [
            CreditPayment(found[at][0], date.fromordinal(int(near_days[at])), Decimal(found[at][1]))
            for at in these.tolist()
        ]
        shown[(customer, currency)] = (listed, int(counts[key]) - len(listed))
    return shown
