"""
``run.fact_failures``: a fact whose command fails ends the run with a message naming
the host and the fact (no traceback), before anything acts on the fact's default: in a real
``pyinfra`` run with this project's config.py, for a fact read while planning and for one read
by an operation as it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra import __version__ as pyinfra_version

from run import fact_failures
from run.checked import CHECKED_PYINFRA, require

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''
from pyinfra import host
from pyinfra.api import FactBase, operation


class Broken(FactBase):
    """Fails as the venv probe did on Python 3.6."""

    def command(self):
        return "echo partial; echo 'ImportError: cannot import name metadata' >&2; exit 3"


@operation()
def act_on_it(marker):
    seen = host.get_fact(Broken)
    yield f"touch {marker}"


if WHEN == "planning":
    host.get_fact(Broken)
    act_on_it(marker=MARKER + ".planned")
else:
    act_on_it(marker=MARKER)
'''


def test_the_checked_pyinfra_is_the_installed_one():
    # on another pyinfra installing the hook raises: this fails, loudly, until it is checked again
    assert pyinfra_version == CHECKED_PYINFRA
    require(fact_failures._original, fact_failures.CHECKED_SOURCE_SHA256, "fact_failures")


@pytest.mark.parametrize("when", ["planning", "running"])
def test_a_failing_fact_ends_the_run_naming_it(tmp_path, when):
    marker = tmp_path / "acted"
    deploy = tmp_path / "probe.py"
    deploy.write_text(f"WHEN = {when!r}\nMARKER = {str(marker)!r}\n" + PROBE)
    pyinfra = Path(sys.executable).parent / "pyinfra"
    done = subprocess.run([str(pyinfra), "-y", "@local", str(deploy)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "reading the fact builtins.Broken failed on @local" in output, output[-3000:]
    assert "the run stops here" in output
    assert "ImportError: cannot import name metadata" in output  # what the host printed
    assert "Traceback" not in output, output[-3000:]
    assert not marker.exists() and not Path(str(marker) + ".planned").exists()
