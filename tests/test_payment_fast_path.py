"""The batch checker takes only rows the row checker takes, with the same values.

``connectors.payments.columns.ColumnChecker`` takes the plainly valid rows of a
CSV batch a column at a time and leaves every other row to the row checker
(``connectors.payments.rows.RowChecker.check``), which gives the reasons. Here
both see generated rows, edge spellings included: every row the batch checker
takes must be a payment the row checker makes of it, value for value.
"""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.payments.columns import ColumnChecker
from connectors.payments.rows import FIELDS, LONGEST, PaymentRow, ReadRules, RowChecker
from reconciliation.money import parse_amount
from sync.payments.credit import minor_units

TENANT = "11111111-1111-1111-1111-111111111111"
KNOWN = {TENANT: TENANT, "contoso.onmicrosoft.com": TENANT}
TODAY = date(2026, 12, 4)

customers = st.sampled_from(
    [
        TENANT,
        " " + TENANT,
        "CONTOSO.onmicrosoft.com",
        "unknown.example",
        "",
        "conto\x00so",
        "x" * 300,
    ]
)
dates = st.sampled_from(
    ["2026-10-01", " 2026-10-01 ", "2026-1-5", "2026-02-30", "1999-12-31", "2000-01-01",
     "2027-12-06", "2026-W40-1", "01.10.2026", "", "2026-10-01\u200b", "２０２６-10-01"]
)  # fmt: skip
amounts = st.one_of(
    st.sampled_from(
        [
            "10",
            "10.5",
            "10.50",
            "10.505",
            "010",
            "0.5",
            ".5",
            "10.",
            "1,000.00",
            "1 000",
            "1.000,50",
            "1446,24",
            "1e3",
            "NaN",
            "-5",
            "+5",
            "1234567890123456",
            "123456789012345",
            "99999999999999.99",
            "١٢٣",
            "１２３",
            "$10",
            "USD 10",
            " 10 ",
            "10\x00",
            "0",
            "0.00",
            "1" * 19,
            "9" * 18 + ".5",
            "",
        ]
    ),
    st.text(alphabet="0123456789.,- ", max_size=20),
)
currencies = st.sampled_from(["USD", "usd", "JPY", "KWD", "EUR", "ABC", "US D", "", "U\x00D"])
references = st.sampled_from(["R1", " R2 ", "", "x" * 300, "a\x00b", "Ref ✓", "a\u202eb"])
invoices = st.sampled_from(["", "G000000001", "x" * 70, "G\x07"])
edges = (customers, dates, amounts, currencies, references, invoices)
plain = st.tuples(
    st.sampled_from([TENANT, "contoso.onmicrosoft.com"]),
    st.sampled_from(["2026-10-01", "2026-11-30"]),
    st.sampled_from(["10", "1234.50", "0.07", "999999999999.99", "5.5"]),
    st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
    st.sampled_from(["R1", "PAY-000000001"]),
    st.sampled_from(["", "G000000001"]),
)


@st.composite
def rows(draw: st.DrawFn) -> tuple[str, ...]:
    """A plain row with none, one or two of its fields spelled otherwise."""
    row = list(draw(plain))
    for field in draw(st.lists(st.integers(0, len(FIELDS) - 1), max_size=2)):
        row[field] = draw(edges[field])
    return tuple(row)


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), min_size=1, max_size=30), st.sampled_from([".", ","]))
def test_a_row_the_batch_checker_takes_is_the_payment_the_row_checker_makes(
    picked: list[tuple[str, ...]], separator: str
) -> None:
    rules = ReadRules(columns={}, today=TODAY, decimal_separator=separator)
    strict = RowChecker(rules, lambda text: KNOWN.get(text.lower()))
    fast = ColumnChecker(
        parse_date=strict.parse_date,
        resolve_customer=strict.resolve,
        longest=LONGEST,
        fields=FIELDS,
        decimal_separator=separator,
        max_digits=rules.max_digits,
    )
    numbers = list(range(2, len(picked) + 2))
    batch, slow = fast.check(numbers, picked)
    assert len(batch.numbers) + len(slow) == len(picked)
    taken = [at for at in range(len(picked)) if at not in set(slow)]
    assert batch.numbers == [numbers[at] for at in taken]
    for position, at in enumerate(taken):
        texts = dict(zip(FIELDS, map(str.strip, picked[at]), strict=True))
        row = strict.check(numbers[at], dict(texts))
        assert isinstance(row, PaymentRow), (picked[at], row)
        assert batch.customer_ids[position] == row.customer_id
        assert batch.dates[position] == row.payment_date.isoformat()
        assert batch.amounts[position] == str(row.amount)
        assert batch.units[position] == minor_units(row.amount, row.currency)
        assert batch.currencies[position] == row.currency
        assert batch.references[position] == row.reference
        assert batch.invoice_ids[position] == row.invoice_id


def test_plain_rows_are_taken_by_the_batch_checker() -> None:
    """The common row does take the fast path (else the test above proves nothing)."""
    rules = ReadRules(columns={}, today=TODAY)
    strict = RowChecker(rules, lambda text: KNOWN.get(text.lower()))
    fast = ColumnChecker(
        parse_date=strict.parse_date,
        resolve_customer=strict.resolve,
        longest=LONGEST,
        fields=FIELDS,
        decimal_separator=".",
        max_digits=rules.max_digits,
    )
    picked = [
        (TENANT, "2026-10-01", "1234.50", "USD", "R1", "G1"),
        ("contoso.onmicrosoft.com", "2026-10-02", "1000", "JPY", "R2", ""),
    ]
    batch, slow = fast.check([2, 3], picked)
    assert slow == []
    assert batch.amounts == ["1234.50", "1000"]
    assert batch.units == [123450, 1000]
    assert parse_amount("1234.50", "USD") == 1234.5
