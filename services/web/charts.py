"""The dashboard's charts (R-CL7): a table of numbers as the clocks service sends it → an SVG drawn on the server
by pygal (no script in it: the desk's Content-Security-Policy stays as it is), and the same numbers as CSV."""

import csv
import io
import math
from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import Style

# series colours by column name (GOV.UK's red, orange, green, blue, dark grey): RAG reads as RAG
COLOURS = {"red": "#d4351c", "amber": "#f47738", "green": "#00703c", "breached": "#d4351c", "at risk": "#f47738",
           "overdue": "#d4351c", "on track": "#00703c", "due": "#1d70b8"}
OTHER = "#505a5f"
KINDS = {"line": pygal.Line, "bar": pygal.Bar, "stacked_bar": pygal.StackedBar}
# the image's own document: its inline <style> applies to it alone, and nothing in it may load or run
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def svg(table: dict[str, Any]) -> bytes:
    """The chart of one table: its first column along the x axis, one series per other column."""
    columns, rows = table["columns"], table["rows"]
    series = columns[1:]
    style = Style(background="white", plot_background="white", font_family="Arial, sans-serif",
                  colors=tuple(COLOURS.get(s, OTHER) for s in series), label_font_size=12,
                  major_label_font_size=12, legend_font_size=13, title_font_size=15)
    labels = [str(r[0]) for r in rows]
    chart = KINDS[table["kind"]](js=[], style=style, width=720, height=360, x_label_rotation=30 if len(rows) > 8
                                 else 0, show_minor_x_labels=len(rows) <= 14, x_labels_major_every=7,
                                 legend_at_bottom=True, title=table["title"], print_zeroes=False,
                                 no_data_text="Nobody yet", include_x_axis=True)
    chart.x_labels = labels
    chart.y_labels = _whole_numbers(table)
    for index, name in enumerate(series, start=1):
        chart.add(name, [r[index] for r in rows])
    return _without_scripts(chart.render_tree())


def _whole_numbers(table: dict[str, Any]) -> list[int]:
    """Ticks on whole numbers (people and cases are counted, never halved), about eight of them."""
    values = [sum(r[1:]) if table["kind"] == "stacked_bar" else max(r[1:], default=0) for r in table["rows"]]
    top = max([1, *values])
    step = math.ceil(top / 8)
    return list(range(0, top + step, step))


def _without_scripts(tree: Any) -> bytes:
    """pygal always writes its configuration as an inline script, for the tooltips of its own JavaScript; the chart
    is drawn without it, and an image never runs scripts, but none is sent at all."""
    for parent in list(tree.iter()):
        for child in list(parent):
            if str(child.tag).endswith("script"):
                parent.remove(child)
    return b"<?xml version='1.0' encoding='utf-8'?>\n" + ElementTree.tostring(tree)


def to_csv(table: dict[str, Any]) -> str:
    """The table's numbers with its column names as the header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table["columns"])
    writer.writerows(table["rows"])
    return out.getvalue()
