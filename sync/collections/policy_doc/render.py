"""The published collections policy as Markdown, printable HTML or plain text.

Every configured text (stage names, payment instructions, sender) is escaped for the
format it lands in: Markdown markup is backslash-escaped, HTML goes through Jinja2's
autoescaping in a sandbox. Pure: document in, text out.
"""

from __future__ import annotations

import re

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from reconciliation.errors import InputError
from sync.collections.policy_doc.build import FORMATS, PolicyDocument, StageEntry

__all__ = ["render"]


def render(document: PolicyDocument, fmt: str) -> str:
    """The document as ``md``, ``html`` or ``text``."""
    if fmt == "md":
        return _markdown(document)
    if fmt == "html":
        return _html(document)
    if fmt == "text":
        return _text(document)
    raise InputError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def _stage_line(stage: StageEntry) -> tuple[str, str]:
    return stage.name, f"{stage.when}: {stage.what}"


def _text(document: PolicyDocument) -> str:
    lines = [document.title.upper(), "", *[p for para in document.intro for p in (para, "")]]
    for part in document.policies:
        lines += [part.heading, "-" * len(part.heading)]
        for number, stage in enumerate(part.stages, 1):
            name, text = _stage_line(stage)
            lines += [f"{number}. {name}", f"   {text}"]
        lines.append("")
    for section in document.sections:
        lines += [section.heading, "-" * len(section.heading)]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
    return "\n".join(lines).rstrip() + "\n"


# Backslash-escapes every character Markdown (CommonMark, GFM tables and HTML blocks)
# could read as markup inside a line; line-start markers are handled by _md_line.
_MD_INLINE = re.compile(r"([\\`*_\[\]{}<>|~&!#])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+[.)])")


def _md(text: str) -> str:
    return "\n".join(_md_line(line) for line in text.split("\n"))


def _md_line(line: str) -> str:
    escaped = _MD_INLINE.sub(r"\\\1", line)
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def _md_paragraph(text: str) -> str:
    # A backslash at a line's end is Markdown's hard line break: payment details keep theirs.
    return "\\\n".join(_md_line(line) for line in text.split("\n"))


def _markdown(document: PolicyDocument) -> str:
    out = [f"# {_md(document.title)}", ""]
    out += [p for para in document.intro for p in (_md_paragraph(para), "")]
    for part in document.policies:
        out += [f"## {_md(part.heading)}", ""]
        for number, stage in enumerate(part.stages, 1):
            name, text = _stage_line(stage)
            out.append(f"{number}. **{_md(name)}** — {_md(text)}")
        out.append("")
    for section in document.sections:
        out += [f"## {_md(section.heading)}", ""]
        out += [p for para in section.paragraphs for p in (_md_paragraph(para), "")]
    return "\n".join(out).rstrip() + "\n"


_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title>
<style>
body { font: 11pt/1.5 system-ui, -apple-system, "Segoe UI", Arial, sans-serif;
       color: #1b1b1b; max-width: 46em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.8em; margin-bottom: .3em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
ol.stages li { margin: .5em 0; }
.stage-name { font-weight: 600; }
section, li { break-inside: avoid; page-break-inside: avoid; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; color: #000; }
  h2 { break-after: avoid; page-break-after: avoid; }
  @page { margin: 18mm 16mm; }
}
</style>
</head>
<body>
<h1>{{ doc.title }}</h1>
{% for paragraph in doc.intro %}<p>{{ paragraph }}</p>
{% endfor %}
{%- for part in doc.policies %}
<section class="policy">
<h2>{{ part.heading }}</h2>
<ol class="stages">
{%- for stage in part.stages %}
<li><span class="stage-name">{{ stage.name }}</span> — {{ stage.when }}: {{ stage.what }}</li>
{%- endfor %}
</ol>
</section>
{%- endfor %}
{%- for section in doc.sections %}
<section>
<h2>{{ section.heading }}</h2>
{%- for paragraph in section.paragraphs %}
<p>{% for line in paragraph.split("\\n") %}{{ line }}{% if not loop.last %}<br>
{% endif %}{% endfor %}</p>
{%- endfor %}
</section>
{%- endfor %}
</body>
</html>
"""


def _html(document: PolicyDocument) -> str:
    # Autoescape on and the sandbox: every configured text is data, never markup or code.
    environment = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    return environment.from_string(_HTML_TEMPLATE).render(doc=document)
