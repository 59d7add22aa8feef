"""``report.html``: one self-contained page. Tables inline, every image a ``data:`` URI
(figures and CAM strips), the CSS inline, no script, no font or other external request, so
it opens offline and can be mailed as one file. Rendered with a Jinja2 template
(autoescaped; pre-built table HTML is passed as ``Markup``).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from jinja2 import Environment
from markupsafe import Markup

from bebias.errors import BebiasError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes, path: str = "image") -> tuple[int, int]:
    """(width, height) of PNG ``data``; a :class:`BebiasError` naming ``path`` if it is not a
    PNG with a non-empty image (a browser would show a broken image)."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise BebiasError("not a PNG image", path)
    w, h = struct.unpack(">II", data[16:24])
    if w == 0 or h == 0:
        raise BebiasError(f"PNG image of size {w}x{h}", path)
    return w, h


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


@dataclass
class Image:
    """An embedded PNG with its alt text and caption."""

    png: bytes
    alt: str
    caption: str = ""
    #: shown at this many times its pixel size (small CAM strips are blown up, pixelated)
    zoom: int = 1

    @property
    def uri(self) -> str:
        return data_uri(self.png)

    @property
    def width(self) -> int:
        """Display width in CSS pixels."""
        return png_size(self.png, self.alt)[0] * self.zoom


@dataclass
class Section:
    """One part of the page: a heading, optional table HTML and note, then images."""

    id: str
    title: str
    table_html: str = ""
    note: str = ""
    images: list[Image] = field(default_factory=list)
    #: CAM strips: (video caption, image) rows
    strips: list[tuple[str, Image]] = field(default_factory=list)


CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f;
       margin: 0; background: #fafafa; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; color: #333; }
h2 { font-size: 20px; margin: 36px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 12px; }
nav a { margin-right: 14px; color: #0a58a8; text-decoration: none; }
.scroll { margin-bottom: 8px; overflow-x: auto; background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; }
table.results { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; width: 100%; }
table.results th, table.results td { padding: 5px 10px; border-bottom: 1px solid #eee; white-space: nowrap; }
table.results thead th { background: #f3f5f8; text-align: center; }
table.results td { text-align: right; }
table.results thead th { white-space: normal; }
table.d1 td:nth-child(-n+1) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d2 td:nth-child(-n+2) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d3 td:nth-child(-n+3) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d4 td:nth-child(-n+4) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d5 td:nth-child(-n+5) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d6 td:nth-child(-n+6) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d7 td:nth-child(-n+7) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.d8 td:nth-child(-n+8) { text-align: left; white-space: normal; min-width: 5em; max-width: 22em; }
table.results tbody tr:hover { background: #f6faff; }
.ci { color: #777; font-size: 11px; }
.delta { font-size: 11px; color: #555; }
.delta.better { color: #0b7a3e; }
.delta.worse { color: #b3261e; }
.base { color: #0a58a8; font-size: 11px; }
.note { color: #555; font-size: 13px; margin: 6px 0 0; }
figure { margin: 18px 0; background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 10px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #444; font-size: 13px; margin-top: 6px; }
.strip { margin: 12px 0; }
.strip p { margin: 0 0 4px; font-size: 13px; color: #333; }
.strip img { max-width: 100%; height: auto; image-rendering: pixelated; border: 1px solid #ddd; }
footer { color: #666; font-size: 12px; margin-top: 40px; padding-bottom: 30px; }
footer code { font-size: 11px; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>bebias report: {{ name }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>bebias report: {{ name }}</h1>
<p class="sub">{{ summary }}</p>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav>
</header>
<main>
{% for s in sections %}
<section id="{{ s.id }}">
<h2>{{ s.title }}</h2>
{% if s.table_html %}{{ s.table_html }}{% endif %}
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% for im in s.images %}
<figure><img src="{{ im.uri }}" alt="{{ im.alt }}" width="{{ im.width }}">
{% if im.caption %}<figcaption>{{ im.caption }}</figcaption>{% endif %}</figure>
{% endfor %}
{% for cap, im in s.strips %}
<div class="strip"><p>{{ cap }}</p><img src="{{ im.uri }}" alt="{{ im.alt }}" width="{{ im.width }}"></div>
{% endfor %}
</section>
{% endfor %}
</main>
<footer>
<p>Made by <code>bebias report</code> {{ version }} from:</p>
<ul>{% for s in sources %}<li><code>{{ s }}</code></li>{% endfor %}</ul>
</footer>
</body>
</html>
"""


def render(name: str, summary: str, sections: Sequence[Section], sources: Sequence[str], version: str) -> str:
    """The page as one HTML string (deterministic: no dates)."""
    env = Environment(autoescape=True, keep_trailing_newline=True)
    secs = [Section(s.id, s.title, Markup(s.table_html), s.note, s.images, s.strips) for s in sections]
    return env.from_string(TEMPLATE).render(name=name, summary=summary, sections=secs, sources=sources,
                                             version=version, css=Markup(CSS))
