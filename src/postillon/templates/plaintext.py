"""The plain-text part of an email, derived from its HTML.

Readable rather than faithful: paragraphs and table rows become lines, headings get a
`#` mark, list items a dash or their number, links read `text (url)`, images their alt
text; styles, scripts and hidden elements (a preheader) are left out. It runs once per
template version, on the HTML with its Jinja tags protected, so each message only renders
the resulting text template.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "table", "tr", "section", "article", "header", "footer", "blockquote",
     "ul", "ol", "center", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
)  # fmt: skip
_SKIPPED = frozenset({"style", "script", "head", "title", "template"})
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]+")


def html_to_text(html: str) -> str:
    """Readable plain text for `html`."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    return converter.text()


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[str] = []
        self._line: list[str] = []
        self._skip_depth = 0
        self._open: list[str] = []  # tags opened inside a skipped element, to match closes
        self._links: list[tuple[str, int]] = []  # href and where its text starts
        self._lists: list[list[int]] = []  # counters of open lists (-1: unordered)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._skip_depth:
            if tag not in _VOID:
                self._skip_depth += 1
            return
        if tag in _SKIPPED or _HIDDEN_STYLE.search(attributes.get("style") or ""):
            if tag not in _VOID:
                self._skip_depth = 1
            return
        if tag in _BLOCKS or tag == "li":
            self._break()
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self._line.append("#" * int(tag[1]) + " ")
        elif tag in {"ul", "ol"}:
            self._lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            counter = self._lists[-1] if self._lists else [-1]
            if counter[0] >= 0:
                counter[0] += 1
                self._line.append(f"{counter[0]}. ")
            else:
                self._line.append("- ")
        elif tag == "br":
            self._break(blank=False)
        elif tag == "hr":
            self._lines.append("----")
        elif tag == "img" and attributes.get("alt"):
            self._line.append(f" {attributes['alt']} ")
        elif tag == "a":
            self._links.append((attributes.get("href") or "", len(self._line)))

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            self._skip_depth -= 1
            return
        if tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self._line[start:]).strip()
            if href and not href.startswith("#") and href != label:
                self._line.append(f" ({href})" if label else href)
        elif tag in {"ul", "ol"} and self._lists:
            self._lists.pop()
        if tag in _BLOCKS or tag == "li":
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._line.append(_SPACES.sub(" ", data.replace("\n", " ")))

    def _break(self, *, blank: bool = True) -> None:
        line = _SPACES.sub(" ", "".join(self._line)).strip()
        self._line = []
        if line:
            self._lines.append(line)
        if (blank and self._lines and self._lines[-1] != "") or (not blank and not line):
            self._lines.append("")

    def text(self) -> str:
        self._break()
        text = "\n".join(self._lines).strip()
        return re.sub(r"\n{3,}", "\n\n", text) + "\n"
