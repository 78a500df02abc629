"""The collections policy a partner publishes, generated from the enforced settings.

``pcsync collections policy``: :mod:`.build` makes the document from ``[collections]``,
:mod:`.render` writes it as Markdown, HTML or text.
"""

from sync.collections.policy_doc.build import (
    FORMATS,
    PolicyDocument,
    PolicyPart,
    Section,
    StageEntry,
    build_document,
    describe_cron,
)
from sync.collections.policy_doc.render import render

__all__ = [
    "FORMATS",
    "PolicyDocument",
    "PolicyPart",
    "Section",
    "StageEntry",
    "build_document",
    "describe_cron",
    "render",
]
