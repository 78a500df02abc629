"""A v2 export manifest that does not add up is refused, never read in part."""

from __future__ import annotations

import pytest
import responses

from connectors.partner_center.errors import BadResponseError
from tests.test_connector_http import (
    GRAPH,
    MANIFEST,
    STORAGE,
    api,
    connect,
    register_export,
    sleeps,
)

__all__ = ["api", "sleeps"]  # the fixtures, used by name


def test_a_manifest_whose_blob_count_is_not_its_blobs_is_refused(api, sleeps) -> None:
    register_export(api, [])
    api.replace(
        responses.GET,
        MANIFEST,
        json={
            "id": "m-1",
            "rootDirectory": STORAGE,
            "sasToken": "sv=1&sr=d&sig=SECRETSIG",
            "blobCount": 3,
            "blobs": [{"name": "part-0.json.gz"}, {"name": "part-1.json.gz"}],
        },
    )
    with pytest.raises(BadResponseError, match=r"lists 2 blob.*blobCount 3"):
        list(connect(sleeps).v2_line_items("G000024135", currency="USD"))
    assert not [call for call in api.calls if call.request.url.startswith(STORAGE)]
    assert [call for call in api.calls if call.request.url.startswith(GRAPH)]
