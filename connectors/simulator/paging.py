"""Partner Center's seek paging: a signed continuation token in a header, ``seekOperation=Next``."""

from __future__ import annotations

from typing import Any

from connectors.simulator.faults import Guarded
from connectors.simulator.wire import Handled

__all__ = ["SeekPaged"]


class SeekPaged(Guarded):
    """A handler that serves long lists a page at a time, as Partner Center v1 does."""

    def _seek_page(
        self, key: str, total: int, size: int, base_uri: str
    ) -> tuple[int, int, dict[str, Any] | None, str | None]:
        """Offset range of this seek page and the next link, from the continuation header."""
        size = self._capped(size)
        offset = 0
        if self.query.get("seekoperation", "").lower() == "next":
            token = self.headers.get("MS-ContinuationToken") or ""
            found = self.sim.read_continuation(token, key)
            if found is None:
                self._error(400, "400", "invalid or missing MS-ContinuationToken")
                raise Handled
            offset = found
        end = min(total, offset + size)
        if end >= total:
            return offset, end, None, None
        token = self.sim.continuation(key, end)
        joiner = "&" if "?" in base_uri else "?"
        link = {
            "uri": f"{base_uri}{joiner}seekOperation=Next",
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": token}],
        }
        return offset, end, link, token
