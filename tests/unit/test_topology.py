"""docs/topology.svg is what tools/topology.py draws (its source), and a picture a browser shows."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from tools import topology


def test_the_picture_is_drawn_from_its_source():
    assert topology.OUTPUT.read_text() == topology.svg(), "docs/topology.svg is stale: run `python -m tools.topology`"


def test_the_picture_is_svg_naming_every_host():
    root = ElementTree.fromstring(topology.svg())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for name in ("lb1", "web1", "web2", "redis1", "OMERO.server"):
        assert name in text
