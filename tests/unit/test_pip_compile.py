"""
pip installs into the venv with ``--no-compile``; the deploy then byte-compiles the venv's
packages on every core (``model.omero_install.COMPILE_PACKAGES``). Run here against a real
virtualenv made from this Python.
"""

from __future__ import annotations

import importlib.util
import subprocess
import venv
from pathlib import Path

from model.omero_install import BUFFER_END, BUFFER_START, COMPILE_PACKAGES, OmeroInstall
from tests.unit.simulate import unguarded


def test_pip_install_then_compile_in_one_command():
    install = OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web")
    guarded = install.pip_install("--upgrade 'omero-web>=5.6.1'")
    # run only in a venv root alone can change (tests/unit/test_venv_guard.py)
    command = unguarded(guarded)
    assert guarded == install.trusted(command)
    # its output held until it ends (tests/unit/test_buffered.py)
    assert command.startswith(BUFFER_START) and command.endswith(BUFFER_END)
    pip, compile_step = command[len(BUFFER_START):-len(BUFFER_END)].split(" && ")
    assert pip == "/opt/omero/web/venv3/bin/python -m pip install --upgrade 'omero-web>=5.6.1' --no-compile"
    assert compile_step.startswith("/opt/omero/web/venv3/bin/python -c 'import compileall")


def test_compiles_every_module_of_the_venv_and_passes_over_broken_ones(tmp_path):
    venv.create(tmp_path / "venv", with_pip=False)
    python = str(tmp_path / "venv" / "bin" / "python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deep = site.joinpath(*(f"level{number}" for number in range(15)))  # deeper than compileall's old default of 10
    deep.mkdir(parents=True)
    modules = [site / "top.py", deep / "deep.py"]
    for module in modules:
        module.write_text("VALUE = 1\n")
    broken = site / "python2_only.py"
    broken.write_text("print 'python 2'\n")

    result = subprocess.run([python, "-c", COMPILE_PACKAGES], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""  # like pip: quiet, a module that does not compile is passed over
    for module in modules:
        assert Path(importlib.util.cache_from_source(str(module))).is_file(), module
    assert not Path(importlib.util.cache_from_source(str(broken))).exists()
