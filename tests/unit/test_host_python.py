"""
Every Python script the deploy runs with a host's Python runs on the oldest Python a profile
picks (Debian 9's 3.5; 3.6 on Ubuntu 18.04, CentOS 7 and 8). Here: each script found in the
simulated plans of those hosts parses as that oldest Python, and the venv probe gives the same answers without
``importlib.metadata`` (Python 3.8+) as with it. The integration test on a real Ubuntu 18.04
host (tests/integration/test_ubuntu.py) compiles the same scripts with its Python 3.6 and
runs the whole deploy there.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
import tempfile

import pytest
from pyinfra_cli.util import load_func

from operations import maintenance

from operations import troubleshoot
from host.facts import _VENV_PROBE
from model.distro_profile import APT_RELEASES, RPM_RELEASES
from tests.unit.simulate import SimulatedHost, fake_run, simulate

RELEASES = {**APT_RELEASES, **RPM_RELEASES}
OLDEST = min(r.python_version for r in RELEASES.values())
#: Every release whose Python is 3.6 or older (Debian 9's 3.5; Ubuntu 18.04, CentOS 7 and 8's 3.6).
OLDEST_HOSTS = sorted(key for key, r in RELEASES.items() if r.python_version <= (3, 6))
#: A Python interpreter run with ``-c`` (options such as ``-I`` before it).
PYTHON_C = re.compile(r"(?:\bpython3?(?:\.\d+)?|/bin/python)['\"]?((?:\s+-[IEsS]+)*)\s+['\"]?-c['\"]?\s+")
FEATURES = {"omero_web_redis": True, "omero_web_apps": [{"spec": "omero-figure", "app": "omero_figure"}],
            "omero_web_wsgi_worker_class": "gevent", "omero_web_clearsessions": True}


def python_scripts(commands: list[str]) -> set[str]:
    """The code of every ``python -c CODE`` in ``commands`` (CODE as the shell passes it)."""
    found = set()
    for command in commands:
        for match in PYTHON_C.finditer(command):
            lexer = shlex.shlex(command[match.end():], posix=True)
            lexer.whitespace_split = True
            lexer.commenters = ""
            try:
                found.add(lexer.get_token())
            except ValueError:  # a quote the regex started inside: not a script
                continue
    return {script for script in found if script and "import" in script}


def plan_scripts() -> set[str]:
    scripts: set[str] = set()
    for distro, version in OLDEST_HOSTS:
        for systemd in (True, False):
            host = SimulatedHost(distro, version, systemd=systemd,
                                 existing_paths=("/opt/omero/web/venv3/bin/omero",))
            scripts |= python_scripts(simulate(host, FEATURES).raw)
        for func in (maintenance.restart, troubleshoot.troubleshoot):
            with tempfile.TemporaryDirectory() as bundle:  # troubleshooting writes its bundle there
                data = {"omero_web_troubleshoot_dir": bundle}
                with fake_run({"@fake/web": SimulatedHost(distro, version)}, data,
                              lambda s: load_func(s, func)) as (_, inv):
                    scripts |= python_scripts(list(inv.get_host("@fake/web").connector.executed_commands))
    return scripts


SCRIPTS = sorted(plan_scripts())


def test_the_plans_run_python_scripts():
    # the venv probe, the config reader, the health check, byte-compiling, the troubleshooting mask
    assert len(SCRIPTS) >= 5, SCRIPTS
    assert any("Requirement(spec)" in s for s in SCRIPTS)
    assert any("xml.etree" in s for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.strip().splitlines()[0][:40] for s in SCRIPTS])
def test_every_script_parses_as_the_oldest_python(script):
    ast.parse(script, feature_version=OLDEST)
    # modules Python 3.6 lacks are imported only inside a try (whose ImportError is handled),
    # never at the top level
    for node in ast.parse(script).body:
        names = []
        if isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        assert not set(names) & {"importlib.metadata", "zoneinfo", "dataclasses", "contextvars"}, script


def run_probe(*specs: str, without_metadata: bool) -> list[str]:
    blocker = "import sys; sys.modules['importlib.metadata'] = None; " if without_metadata else ""
    code = blocker + f"exec(compile({_VENV_PROBE!r}, 'probe', 'exec'))"
    result = subprocess.run([sys.executable, "-c", code, *specs], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_the_venv_probe_answers_alike_without_importlib_metadata():
    specs = ("pip>=1", "pip<1", "packaging", "Pyinfra>=3", "no-such-distribution-xyz", "zope.interface>=0")
    with_metadata = run_probe(*specs, without_metadata=False)
    assert "pip<1" in with_metadata and "no-such-distribution-xyz" in with_metadata
    assert any(line.startswith("=pip==") for line in with_metadata)
    assert any(line.lower().startswith("=pyinfra==") for line in with_metadata)
    assert run_probe(*specs, without_metadata=True) == with_metadata
