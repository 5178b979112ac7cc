"""
Rewrite the generated parts of the docs from ``model.settings`` (run after changing a Settings field):

    .venv/bin/python -m tools.readme_table

- docs/configuration.md: the full data-key table (key, default, meaning), between
  ``<!-- data-table`` and ``<!-- end data-table -->``;
- README.md: the short key index (key names grouped by section, one line per section),
  between ``<!-- key-index`` and ``<!-- end key-index -->``.

tests/unit/test_settings.py fails when either is stale. Never edit them by hand.
"""

from __future__ import annotations

from pathlib import Path

from model.settings import KEYS, markdown_table

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
README = ROOT / "README.md"
START, END = "<!-- data-table", "<!-- end data-table -->"
INDEX_START, INDEX_END = "<!-- key-index", "<!-- end key-index -->"


def key_index() -> str:
    """The README's key index: one line per section of ``KEYS``, in table order."""
    sections: dict[str, list[str]] = {}
    for key in KEYS:
        sections.setdefault(key.section, []).append(key.name)
    return "\n".join(f"- **{section}**: " + ", ".join(f"`{name}`" for name in names)
                     for section, names in sections.items())


def replace_between(text: str, start: str, end: str, body: str, name: str = "the file") -> str:
    """``text`` with what lies between the line starting with ``start`` and ``end`` replaced by ``body``."""
    head, found, rest = text.partition(start)
    marker_line, _, rest = rest.partition("\n")
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise SystemExit(f"{name}: markers {start!r} ... {end!r} not found")
    return f"{head}{start}{marker_line}\n{body}\n{end}{tail}"


def main() -> None:
    for path, start, end, body in ((CONFIGURATION, START, END, markdown_table()),
                                   (README, INDEX_START, INDEX_END, key_index())):
        text = path.read_text()
        new = replace_between(text, start, end, body, str(path.relative_to(ROOT)))
        if new != text:
            path.write_text(new)
            print(f"rewrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
