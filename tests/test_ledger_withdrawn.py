"""A debt in a withdrawn currency paid in its successor: a December 2022 HRK charge paid in
EUR after the changeover settles at the fixed rate (7.53450 HRK per EUR)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from reconciliation.ledger import (
    BilledLine,
    BillingTerms,
    Conversion,
    CustomerLedger,
    CustomerTerms,
    Payment,
    build_charges,
    build_ledgers,
)
from reconciliation.statement import StatementParty, build_statement

D = Decimal
DEC = date(2022, 12, 5)
AS_OF = date(2023, 2, 15)
TERMS = BillingTerms(payment_terms_days=30)


def ledgers(
    payments: list[Payment], currency: str = "HRK", extra: tuple[BilledLine, ...] = ()
) -> dict[str, CustomerLedger]:
    lines = [BilledLine("G000055451", DEC, "c1", currency, D("699.20"), D("699.20")), *extra]
    return {g.currency: g for g in build_ledgers(build_charges(lines, TERMS), payments, AS_OF)}


def euros(amount: str, invoice: str | None = "g000055451", currency: str = "EUR") -> Payment:
    return Payment("EU-1", "c1", date(2023, 2, 1), D(amount), currency, invoice)


def test_a_euro_payment_naming_a_kuna_invoice_settles_it_at_the_fixed_rate() -> None:
    by = ledgers([euros("92.80")])
    hrk, eur = by["HRK"], by["EUR"]
    assert hrk.open_amounts == {"G000055451": D(0)}
    assert (hrk.overdue_amount, hrk.days_overdue, hrk.paid, hrk.balance) == (0, 0, D("699.20"), 0)
    assert (eur.paid, eur.unapplied, eur.balance) == (0, 0, 0)
    conversion = Conversion(
        "EU-1", date(2023, 2, 1), "G000055451", D("92.80"), "EUR", D("7.53450"), D("699.20"), "HRK"
    )
    assert hrk.conversions == eur.conversions == [conversion]
    assert str(conversion) == "92.80 EUR at 7.53450 = 699.20 HRK"


def test_an_overpayment_in_euro_leaves_a_euro_credit() -> None:
    by = ledgers([euros("100.00")])
    assert by["HRK"].open_amounts == {"G000055451": D(0)}
    assert (by["EUR"].paid, by["EUR"].unapplied, by["EUR"].balance) == (
        D("7.20"),
        D("7.20"),
        D("-7.20"),
    )


def test_a_partial_euro_payment_settles_its_amount_times_the_rate_rounded_half_up() -> None:
    by = ledgers([euros("50.00")])
    assert by["HRK"].open_amounts == {"G000055451": D("699.20") - D("376.73")}  # 376.725
    assert by["EUR"].unapplied == 0


def test_the_open_part_converted_and_rounded_to_the_cent_settles_it_in_full() -> None:
    """699.23 HRK ÷ 7.53450 = 92.8038… → 92.80 EUR (× 7.53450 = 699.20): paying that
    settles the debt."""
    lines = [BilledLine("G2", DEC, "c1", "HRK", D("699.23"), D("699.23"))]
    (eur, hrk) = build_ledgers(build_charges(lines, TERMS), [euros("92.80", "G2")], AS_OF)
    assert (hrk.open_amounts, eur.unapplied) == ({"G2": D(0)}, 0)


def test_a_euro_payment_naming_no_kuna_invoice_leaves_the_kuna_charge_open() -> None:
    eur_charge = BilledLine("G9", date(2023, 1, 20), "c1", "EUR", D("50.00"), D("50.00"))
    by = ledgers([euros("92.80", invoice=None)], extra=(eur_charge,))
    assert by["HRK"].open_amounts == {"G000055451": D("699.20")}
    assert by["HRK"].overdue_amount == D("699.20")
    assert (by["EUR"].open_amounts, by["EUR"].unapplied) == ({"G9": D(0)}, D("42.80"))
    assert by["HRK"].conversions == by["EUR"].conversions == []


def test_a_withdrawal_without_a_fixed_rate_converts_nothing() -> None:
    by = ledgers([euros("92.80", currency="ZWG")], currency="ZWL")
    assert by["ZWL"].open_amounts == {"G000055451": D("699.20")}
    assert (by["ZWG"].unapplied, by["ZWG"].conversions) == (D("92.80"), [])


def test_both_statements_show_the_conversion() -> None:
    party = StatementParty("Contoso", "", "", "", show_microsoft_invoice=True)
    by = ledgers([euros("92.80")])
    terms = CustomerTerms(D(0), D(0), 30)
    hrk, eur = (
        build_statement(
            by[c],
            customer_name="F",
            party=party,
            terms=terms,
            periods={},
            lines=[],
            stage=None,
            stage_known=False,
        ).document()
        for c in ("HRK", "EUR")
    )
    (charge,) = hrk["charges"]
    assert charge["paid"] == [
        {
            "reference": "EU-1 (92.80 EUR at 7.53450 = 699.20 HRK)",
            "date": "2023-02-01",
            "amount": "699.20",
        }
    ]
    assert (charge["open"], hrk["balance"], hrk["paid"]) == ("0.00", "0.00", "699.20")
    (payment,) = eur["payments"]
    assert payment["applied_to"] == [
        {"charge": "the HRK charge (92.80 EUR at 7.53450 = 699.20 HRK)", "amount": "92.80"}
    ]
    assert (payment["credit"], eur["balance"]) == ("0.00", "0.00")
