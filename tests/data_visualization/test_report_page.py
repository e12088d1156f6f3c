"""The report page's HTML: figures written beside it, escaped text, aligned numbers."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from toonvision.data_visualization.report_page import Page, file_part, table_html


def test_page_writes_each_figure_beside_it_and_links_it(tmp_path: Path) -> None:
    page = Page(tmp_path)
    html = page.figure(Figure(figsize=(1, 1)), "matrix.png", 'Rows are "true" <classes>')
    page.section("metrics", "Metrics & more", "intro", html)

    assert (tmp_path / "matrix.png").is_file() and page.figures == ["matrix.png"]
    assert '<img src="matrix.png"' in html and "&lt;classes&gt;" in html
    assert page.sections[0].startswith('<section id="metrics">\n<h2>Metrics &amp; more</h2>')


def test_table_cells_that_read_as_numbers_are_right_aligned_and_others_escaped() -> None:
    text = table_html(["layer", "parameters"], [["conv<1>", "25,537"], ["dense", "1e-05"]])
    assert "<td>conv&lt;1&gt;</td>" in text
    assert '<td class="number">25,537</td>' in text and '<td class="number">1e-05</td>' in text


def test_file_part_makes_layer_paths_safe_file_names() -> None:
    assert file_part("outer/conv 2") == "outer_conv_2"
    assert file_part("///") == "layer"
