"""Rewrite the README's data table from ``operations.settings`` (run after changing KEYS)."""

from pathlib import Path

from operations.settings import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- data-table", "<!-- end data-table -->"

text = README.read_text()
head, _, rest = text.partition(START)
marker_line, _, rest = rest.partition("\n")
_, _, tail = rest.partition(END)
README.write_text(f"{head}{START}{marker_line}\n{markdown_table()}\n{END}{tail}")
