"""
Conformance with the official walkthroughs, step by step (``walkthrough_steps.py``): each
walkthrough's commands and file lines, taken from its text (``data/omero-web-install.txt``),
are found in the deploy's simulated plan for that distro, or are a deliberate difference
the README lists. The README's table of counts is checked too; regenerate it with

    python -m tests.unit.test_conformance --table
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import pytest
from pyinfra.connectors.fake import CommandOutput, FakeConnector, OutputLine

from tests.unit.simulate import SimulatedHost, simulate
from tests.unit.walkthrough_steps import DISTROS, STAGED, STEPS, omero_run

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).resolve().parent / "data" / "omero-web-install.txt"
DIFFERENCES = "Differences from the walkthroughs (on purpose)"
CONFORMANCE = "Conformance with the walkthroughs"
TABLE_HEADER = "| distro | steps | match | of which on a real host | deviate | deviations |"
#: The walkthroughs whose steps are also checked on a real host of that distro, by
#: tests/integration/test_core_deploy_ubuntu.py: the ``real_host_steps`` of each.
REAL_HOSTS = ("ubuntu1804", "ubuntu2004")
#: Lines the PDF wrapped: a break followed by one of these marks continues the line.
WRAPPED = re.compile(r"[ \t]*\n[↪↳↵↔]")
BULLET_ID = re.compile(r"^- \*\*([a-z0-9][a-z0-9-]*)\*\*")


# --- The walkthrough text ------------------------------------------------------------------


@lru_cache(maxsize=None)
def walkthrough(distro: str) -> str:
    """That distro's part of the source, from its heading to the next walkthrough's, unwrapped."""
    text = SOURCE.read_text(encoding="utf-8")
    start = text.index("\n" + DISTROS[distro]["heading"])
    later = [text.find("\n" + d["heading"], start + 1) for d in DISTROS.values()]
    end = min([i for i in later if i > start] or [len(text)])
    part = "\n".join(line.rstrip() for line in text[start:end].splitlines())
    return WRAPPED.sub("", part)


# --- Simulating each distro's host ---------------------------------------------------------


@contextmanager
def fresh_virtualenv():
    """
    The pip requirements fact answers as on a host without the venv yet (every spec is
    unsatisfied: its ``printf`` branch), whatever the data adds to the specs.
    """
    original = FakeConnector._lookup_response
    pattern = re.compile(r"packaging\.requirements.*; else printf '%s\\n' (.*); fi$", re.S)

    def lookup(self, command):
        found = pattern.search(command)
        if found:
            return True, CommandOutput([OutputLine("stdout", spec) for spec in shlex.split(found.group(1))])
        return original(self, command)

    FakeConnector._lookup_response = lookup
    try:
        yield
    finally:
        FakeConnector._lookup_response = original


def templates_folder() -> str:
    folder = Path(tempfile.mkdtemp(prefix="walkthrough-templates-"))
    (folder / "mytemplate").mkdir()
    (folder / "mytemplate" / "index.html").write_text("<h1>Index</h1>\n")
    (folder / "base_include.html").write_text('<script>\n  console.log("Hello World");\n</script>\n')
    return str(folder)


WORK = {}  # the Ice wheel cache and templates folder of this run


def with_work(value):
    if isinstance(value, str):
        return value.replace("{templates}", WORK["templates"])
    if isinstance(value, dict):
        return {k: with_work(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_work(v) for v in value]
    return value


def simulated_host(distro: str, overrides: dict) -> SimulatedHost:
    spec = dict(DISTROS[distro]["host"])
    rhel = spec["distro"] == "centos"
    spec.setdefault("existing_paths", ("/etc/nginx/conf.d/default.conf",) if rhel else
                    ("/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default"))
    # nginx.conf with a default_server listen, which the walkthroughs' sed comments out
    spec.setdefault("nginx_conf", "        listen       80 default_server;")
    spec.update(overrides)
    known = {f.name for f in fields(SimulatedHost)}
    return SimulatedHost(**{k: v for k, v in spec.items() if k in known})


@lru_cache(maxsize=None)
def plan(distro: str, data_json: str, host_json: str, role: str):
    """The simulated plan (a Simulation) for one data set, or the exception that stopped it."""
    data = {"omero_web_ice_cache_dir": WORK["wheels"], **with_work(json.loads(data_json))}
    if "omero_web_omero_server_group_config" in data:  # JSON keys are strings; group ids are numbers
        data["omero_web_omero_server_group_config"] = {
            int(k): v for k, v in data["omero_web_omero_server_group_config"].items()}
    try:
        with fresh_virtualenv():
            if role == "omero_server":
                from tests.unit.test_omero_server import inventory_groups, server_host

                with inventory_groups({"omero_server": ["@fake/omero1"]}):
                    return simulate(server_host(), data, name="@fake/omero1")
            return simulate(simulated_host(distro, json.loads(host_json)), data)
    except Exception as exc:  # noqa: BLE001 - reported by every step of this data set
        return exc


def plan_for(distro: str, step: dict):
    return plan(distro, json.dumps(step.get("data", {})),  # (key order kept: it is the data's)
                json.dumps(step.get("host", {}), sort_keys=True), step.get("role", "web"))


# --- Checking a step -----------------------------------------------------------------------


def installed_packages(sim) -> set[str]:
    words = set()
    for command in sim.find(r"(^|\s)(apt-get\s.*\binstall|(yum|dnf) install)\s"):
        words.update(command.split())
    return words


def staged_config(sim) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sim.uploads.get(STAGED, "").splitlines() if "=" in line)


def problems(sim, match: dict) -> list[str]:
    """What the plan lacks for ``match`` (empty when the step is there)."""
    found = []
    found += [f"no planned command matches {r!r}" for r in match.get("commands", ()) if not sim.find(r)]
    found += [f"a planned command matches {r!r}: {sim.find(r)[0][:200]!r}" for r in match.get("absent", ())
              if sim.find(r)]
    packages = installed_packages(sim)
    found += [f"package {p} not installed" for p in match.get("packages", ()) if p not in packages]
    config = staged_config(sim)
    for prop, value in match.get("config", {}).items():
        if prop not in config or not re.fullmatch(value, config[prop]):
            found.append(f"configuration {prop}={config.get(prop)!r}, expected {value!r}")
    for prop, items in match.get("append", {}).items():
        for item in items:
            if not sim.find(omero_run(re.escape(f"config append --set {prop} {shlex.quote(item)}"))):
                found.append(f"{item} not appended to {prop}")
    for path, regexes in match.get("lines", {}).items():
        lines = [line.strip() for line in sim.uploads.get(path, "").splitlines()]
        found += [f"{path} has no line {r!r}" for r in regexes if not any(re.fullmatch(r, line) for line in lines)]
    for path, regexes in match.get("upload", {}).items():
        content = sim.uploads.get(path)
        found += [f"{path} not written" if content is None else f"{path} lacks {r!r}" for r in regexes
                  if content is None or not re.search(r, content)]
    return found


def real_host_steps(distro: str) -> list[dict]:
    """The steps the real hosts check: those the deploy with the default data does (the
    walkthrough's own host kind, init.d; no feature data, no OMERO.server)."""
    if distro not in REAL_HOSTS:
        return []
    return [s for s in STEPS[distro] if "match" in s and not s.get("data") and not s.get("host")
            and s.get("role", "web") == "web"]


def all_steps():
    for distro, steps in STEPS.items():
        for step in steps:
            yield distro, step


MATCH_STEPS = [pytest.param(d, s, id=f"{d}-{s['id']}") for d, s in all_steps() if "match" in s]


@pytest.fixture(scope="module", autouse=True)
def work_folders(tmp_path_factory):
    WORK.update(wheels=str(tmp_path_factory.mktemp("wheels")), templates=templates_folder())
    plan.cache_clear()
    yield
    plan.cache_clear()


@pytest.mark.parametrize("distro", list(STEPS))
def test_steps_are_the_walkthroughs_own_text(distro):
    text = walkthrough(distro)
    ids = [s["id"] for s in STEPS[distro]]
    assert len(ids) == len(set(ids)), f"repeated step ids in {distro}"
    missing = [s["id"] for s in STEPS[distro] if s["seed"] not in text]
    assert not missing, f"seeds not found in {DISTROS[distro]['heading']}: {missing}"


@pytest.mark.parametrize("distro, step", MATCH_STEPS)
def test_step_is_in_the_plan(distro, step):
    sim = plan_for(distro, step)
    if isinstance(sim, Exception):
        pytest.fail(f"{distro} with data {step.get('data', {})} cannot be planned: {type(sim).__name__}: {sim}")
    found = problems(sim, step["match"])
    assert not found, f"{step['section']}: {step['seed']!r}:\n  " + "\n  ".join(found)


# --- The README: documented deviations and the table of counts ------------------------------


def section(text: str, title: str) -> str | None:
    """The body of the markdown section headed ``title`` (up to the next heading of its level or above)."""
    found = re.search(rf"^(#+) {re.escape(title)}[ \t]*\n", text, re.M)
    if not found:
        return None
    level = len(found.group(1))
    end = re.search(rf"^#{{1,{level}}} ", text[found.end():], re.M)
    return text[found.end():found.end() + end.start()] if end else text[found.end():]


def differences_section() -> str:
    """The Differences section: in README.md, or in the docs/ page it moved to."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        body = section(page.read_text(encoding="utf-8"), DIFFERENCES)
        if body is not None:
            return body
    raise AssertionError(f"no section '{DIFFERENCES}' in README.md or docs/*.md")


def documented_deviations() -> list[str]:
    """The ids the Differences section's bullets start with (every bullet must start with one)."""
    bullets = [line for line in differences_section().splitlines() if line.startswith("- ")]
    unnamed = [b[:60] for b in bullets if not BULLET_ID.match(b)]
    assert not unnamed, f"bullets of '{DIFFERENCES}' not starting with **<id>**: {unnamed}"
    return [BULLET_ID.match(b).group(1) for b in bullets]


def used_deviations() -> set[str]:
    return {s["deviation"] for _, s in all_steps() if "deviation" in s}


def test_every_deviation_is_documented_and_every_documented_one_is_used():
    documented = documented_deviations()
    assert len(documented) == len(set(documented)), f"ids listed twice: {documented}"
    undocumented = sorted(used_deviations() - set(documented))
    stale = sorted(set(documented) - used_deviations())
    assert not undocumented, f"deviations of walkthrough steps missing from '{DIFFERENCES}': {undocumented}"
    assert not stale, f"'{DIFFERENCES}' lists ids no walkthrough step uses: {stale}"


def table_rows() -> list[str]:
    rows = []
    for distro, steps in STEPS.items():
        deviations = sorted({s["deviation"] for s in steps if "deviation" in s})
        matching = sum("match" in s for s in steps)
        real = len(real_host_steps(distro)) or "–"
        rows.append(f"| {DISTROS[distro]['label']} | {len(steps)} | {matching} | {real} | {len(steps) - matching} | "
                    + ", ".join(f"`{d}`" for d in deviations) + " |")
    return rows


def table() -> str:
    return "\n".join([TABLE_HEADER, "| --- | --- | --- | --- | --- | --- |", *table_rows()])


def test_readme_states_the_counts_per_walkthrough():
    # in the README, or in the docs/ page it moved to (the README points at it)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    bodies = [b for b in (section(p.read_text(encoding="utf-8"), CONFORMANCE) for p in pages) if b is not None]
    assert bodies, f"no section '{CONFORMANCE}' in README.md or docs/*.md"
    body = bodies[0]
    rows = [line.strip() for line in body.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows and rows[0] == TABLE_HEADER, f"expected the table header {TABLE_HEADER!r}"
    assert rows[1:] == table_rows(), "README table out of date; regenerate it with:\n" \
        "python -m tests.unit.test_conformance --table\n" + table()


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(table())
    else:
        sys.exit("usage: python -m tests.unit.test_conformance --table")
