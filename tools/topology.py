"""
The web tier's picture (docs/topology.svg), drawn from the description below: the source of
the picture is this file. Rewrite it after changing the description:

    python -m tools.topology

tests/unit/test_topology.py keeps the picture in sync with this source.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "topology.svg"

#: Boxes: name -> (x, y, width, height, title, lines, fill).
BOXES = {
    "clients": (300, 20, 200, 50, "Browsers, API clients", [], "#f4f4f4"),
    "lb": (230, 120, 340, 80, "lb1: NGINX load balancer", ["group omero_web_balancer; HTTPS ends here",
                                                            "failed node skipped; all down: maintenance page"],
           "#dbe9f6"),
    "web1": (60, 260, 300, 80, "web1: NGINX + OMERO.web", ["the walkthrough's site; Gunicorn",
                                                           "allows only lb1 (and itself)"], "#e3f1df"),
    "web2": (440, 260, 300, 80, "web2: NGINX + OMERO.web", ["the walkthrough's site; Gunicorn",
                                                            "allows only lb1 (and itself)"], "#e3f1df"),
    "redis": (60, 410, 300, 70, "redis1: Redis", ["group omero_web_redis; sessions and cache",
                                                   "password required; the URL's address only"], "#fbe6d4"),
    "server": (440, 410, 300, 70, "OMERO.server", ["not deployed here (omero_web_server_host)"], "#eeeeee"),
}
#: Arrows: (from box, to box, label).
ARROWS = [
    ("clients", "lb", "HTTP(S)"),
    ("lb", "web1", "HTTP, X-Forwarded-*"),
    ("lb", "web2", "HTTP, X-Forwarded-*"),
    ("web1", "redis", "sessions"),
    ("web2", "redis", ""),
    ("web1", "server", ""),
    ("web2", "server", "Ice"),
]
WIDTH, HEIGHT = 800, 500


def _anchor(box: tuple, to: tuple) -> tuple[float, float]:
    """Where an arrow leaves ``box`` towards ``to``: the middle of its bottom or top edge."""
    x, y, w, h = box[:4]
    below = to[1] > y
    # towards a box to the side: off the middle, so that two arrows from one edge stay apart
    shift = max(-w / 3, min(w / 3, ((to[0] + to[2] / 2) - (x + w / 2)) / 4))
    return x + w / 2 + shift, (y + h if below else y)


def svg() -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">',
           "<title>omeroweb-deploy: more than one machine</title>",
           '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
           '<path d="M0,0 L10,4 L0,8 z" fill="#555"/></marker></defs>',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>']
    for start, end, label in ARROWS:
        a, b = BOXES[start], BOXES[end]
        x1, y1 = _anchor(a, b)
        x2, y2 = _anchor(b, a)
        out.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#555" '
                   'stroke-width="1.5" marker-end="url(#arrow)"/>')
        out.append(f'<text x="{(x1 + x2) / 2 + 6:.0f}" y="{(y1 + y2) / 2:.0f}" fill="#333" font-size="12">'
                   f"{escape(label)}</text>")
    for x, y, w, h, title, lines, fill in BOXES.values():
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#777"/>')
        out.append(f'<text x="{x + w / 2:.0f}" y="{y + 22}" text-anchor="middle" font-weight="bold">'
                   f"{escape(title)}</text>")
        for i, line in enumerate(lines):
            out.append(f'<text x="{x + w / 2:.0f}" y="{y + 42 + 17 * i}" text-anchor="middle" fill="#333">'
                       f"{escape(line)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(svg())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
