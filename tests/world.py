"""A synced simulator world driven through the command line (collections and notices tests)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path
from typing import Any

from sync.cli import main
from sync.collections import plan_collections
from sync.config import Settings, load_settings

AS_OF = "2026-11-25"


class World:
    def __init__(self, sim: Any, settings: Settings, engine: Any, sessions: Any, tmp: Path) -> None:
        self.sim, self.settings, self.engine, self.sessions, self.tmp = (
            sim,
            settings,
            engine,
            sessions,
            tmp,
        )
        self.never = sim.data.customers[4]["id"]  # never pays: at the suspend stage

    def configure(self, extra: str) -> None:
        """Append to the config file (the CLI reads it again on every call)."""
        assert self.settings.source is not None
        with self.settings.source.open("a") as f:
            f.write("\n" + extra + "\n")
        self.settings = load_settings(
            self.settings.source, {"PCSYNC_CLIENT_SECRET": self.sim.config.client_secret}
        )

    def cli(self, *args: str) -> int:
        return main(["--config", str(self.settings.source), *args])

    def statuses(self) -> dict[str, str]:
        """Every subscription's status as Microsoft (the simulator) has it."""
        return {
            sub["id"]: sub["status"]
            for subs in self.sim.data.subscriptions.values()
            for sub in subs
        }

    def subs_of(self, customer: str) -> list[dict[str, Any]]:
        return self.sim.data.subscriptions[customer]  # type: ignore[no-any-return]

    def patches(self) -> int:
        return sum(1 for method, *_ in self.sim.requests if method == "PATCH")

    def suspend_customers(self) -> list[str]:
        plan = plan_collections(self.settings, self.sessions, date(2026, 11, 25), store=False)
        return sorted({f.customer_id for f in plan.flags if f.action == "suspend"})

    def audit(self, customer: str | None = None) -> list[dict[str, Any]]:
        args = ["audit", "--json"] + (["--customer", customer] if customer else [])
        return self._json(*args)["entries"]  # type: ignore[no-any-return]

    def _json(self, *args: str) -> Any:
        out = io.StringIO()
        with redirect_stdout(out):
            assert self.cli(*args) == 0
        return json.loads(out.getvalue())

    def pay_everything(self, customer: str) -> None:
        """Import a payment of the customer's whole balance, dated on the plan date."""
        plan = plan_collections(self.settings, self.sessions, date(2026, 11, 25), store=False)
        rows = [
            f"{customer},{AS_OF},{ledger.balance},{currency},SETTLE-{currency}"
            for (who, currency), ledger in plan.ledgers.items()
            if who == customer and ledger.balance > 0
        ]
        path = self.tmp / "settle.csv"
        path.write_text("customer,date,amount,currency,reference\n" + "\n".join(rows) + "\n")
        assert self.cli("payments", "import", str(path)) == 0
