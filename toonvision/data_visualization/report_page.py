"""The report's HTML page: built section by section, with its figures written beside it.

`Page` collects the sections of `index.html` and writes each figure as a PNG next to it (through
`figures.save_figure`); the small helpers here turn captions, notes and tables into escaped
HTML, and `page_html` wraps the sections in the page with its header, navigation and style.
Nothing here knows what a section says; `report_sections` does.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from toonvision.data_visualization.evaluation import Evaluation, LabelledImages
from toonvision.data_visualization.figures import save_figure
from toonvision.fileio import write_bytes_atomic


@dataclass
class Page:
    """The page being built: sections of HTML and the figures written so far.

    Attributes:
        out_dir: the report folder, where the figures are written.
        sections: the HTML of each section, in page order.
        figures: the file names of the figures written so far.
    """

    out_dir: Path
    sections: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def figure(self, figure: Figure, file_name: str, caption: str) -> str:
        """Saves `figure` as `file_name` beside the page; returns its captioned HTML."""
        save_figure(figure, self.out_dir / file_name)
        self.figures.append(file_name)
        return figure_html(file_name, caption)

    def copy(self, source: Path, file_name: str, caption: str) -> str:
        """Copies the picture `source` as `file_name` beside the page; returns its HTML."""
        write_bytes_atomic(self.out_dir / file_name, source.read_bytes())
        self.figures.append(file_name)
        return figure_html(file_name, caption)

    def section(self, anchor: str, title: str, intro: str, body: str) -> None:
        """Adds a section; `intro` and `body` are HTML, `title` is text (escaped)."""
        self.sections.append(
            f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n'
            f"<p class=\"intro\">{intro}</p>\n{body}\n</section>"
        )


def note_html(text: str | None) -> str:
    """A note (what is missing and why) as an escaped paragraph."""
    return f'<p class="note">{html.escape(text or "")}</p>'


def figure_html(file_name: str, caption: str) -> str:
    """A picture beside the page, linked to itself, with its caption."""
    return (f'<figure><a href="{html.escape(file_name)}"><img src="{html.escape(file_name)}" '
            f'alt="{html.escape(caption[:80])}" loading="eager"></a>\n'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def table_html(header: Sequence[str], rows: Sequence[Sequence[object]],
               caption: str | None = None) -> str:
    """A table; cells that read as numbers are right-aligned, all others escaped."""
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
                 + "</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(_cell_html(cell) for cell in row) + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _cell_html(cell: object) -> str:
    text = str(cell)
    numeric = re.fullmatch(r"-?[\d,]+(\.\d+)?(e-?\d+)?", text) is not None
    return f'<td class="number">{text}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def file_part(name: str) -> str:
    """`name` (e.g. a layer path `outer/conv`) made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "layer"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1320px; margin: 0 auto; padding: 1em 2em;
       color: #222; line-height: 1.45; }
header { border-bottom: 2px solid #ccc; margin-bottom: 1em; }
nav a { margin-right: 1em; }
section { margin: 2em 0; border-top: 1px solid #e4e4e4; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.92em; color: #444; max-width: 60em; margin-top: 0.3em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
caption { caption-side: bottom; text-align: left; font-size: 0.92em; color: #444;
          max-width: 60em; padding-top: 0.4em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
thead { background: #f0f0f0; }
.intro { font-size: 1.05em; }
.good { color: #1a7f37; font-weight: bold; }
.note { color: #8a5a00; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def page_html(
    model_description: str, data: LabelledImages, evaluation: Evaluation, scores: dict,
    sections: list[str],
) -> str:
    """The whole page: a header (the model, the images, accuracy, when), links to each
    section, the sections, and the style; it needs no server and no network."""
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    description = "".join(f"<li>{html.escape(line)}</li>"
                          for line in model_description.splitlines() if line.strip())
    anchors = re.findall(r'<section id="([^"]+)">\n<h2>([^<]+)</h2>', "\n".join(sections))
    navigation = "".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in anchors)
    wrong = int((evaluation.y_pred != evaluation.y_true).sum())
    skipped = ""
    if data.skipped:
        skipped = (f"<details><summary>{len(data.skipped)} inputs left out</summary><ul>"
                   + "".join(f"<li>{html.escape(message)}</li>" for message in data.skipped[:200])
                   + "</ul></details>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>toonvision report</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>What the model sees</h1>
<ul>
{description}
<li>images: {html.escape(data.source)} ({len(data)} images; classes
{html.escape(", ".join(data.class_names))})</li>
<li>accuracy {scores["accuracy"]:.4f}, {wrong} wrong</li>
<li>written {created} by toonvision report</li>
</ul>
{skipped}
<nav>{navigation}</nav>
</header>
{chr(10).join(sections)}
</body>
</html>
"""
