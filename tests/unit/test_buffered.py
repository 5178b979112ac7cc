"""
Long, chatty commands (apt-get, dnf, yum, pip) run with their output held on the host until
they end (``install.buffered``, issue 15): checked with a real ``sh``, the state folder a
temporary one.
"""

from __future__ import annotations

import subprocess

import pytest

from model.omero_install import STATE_DIR, buffered
from tests.unit.simulate import SimulatedHost, simulate, unbuffered


def run(command: str, state_dir) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", buffered(command).replace(STATE_DIR, str(state_dir))],
                          capture_output=True)


def test_same_output_and_status_shown_at_the_end(tmp_path):
    result = run("echo one; echo warning >&2; printf 'two\\rthree\\n'; exit 3", tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (3, b"one\ntwo\rthree\n", b"warning\n")
    assert list(tmp_path.iterdir()) == []  # the private folder is removed


def test_the_command_runs_whole_in_a_subshell(tmp_path):
    # a compound command, set -e and a here-document stay the command's own
    result = run("set -e; cat <<'END'\nline\nEND\nfalse\necho never", tmp_path)
    assert (result.returncode, result.stdout) == (1, b"line\n")
    assert run("true && echo ok || echo no", tmp_path).stdout == b"ok\n"
    assert list(tmp_path.iterdir()) == []


def test_a_part_of_a_larger_command(tmp_path):
    # the upgrade rolls back when pip fails: what follows still runs, with the status
    def larger(command, then):
        full = f"{buffered(command)} {then}; echo after".replace(STATE_DIR, str(tmp_path))
        return subprocess.run(["sh", "-c", full], capture_output=True)

    assert larger("echo pip; exit 1", "|| echo rollback").stdout == b"pip\nrollback\nafter\n"
    assert larger("echo pip", "&& echo next").stdout == b"pip\nnext\nafter\n"
    assert list(tmp_path.iterdir()) == []


def test_held_in_a_private_folder(tmp_path):
    result = run('stat -c %a "$o"; echo secret-ish >&2', tmp_path)
    assert result.stdout == b"700\n"  # mktemp -d: only root (the command's user) reads what is held


def test_no_folder_no_run(tmp_path):
    result = run("echo ran", tmp_path / "missing")
    assert result.returncode != 0 and b"ran" not in result.stdout


@pytest.mark.parametrize("distro", [("debian", "12"), ("rocky", "9")], ids=["apt", "dnf"])
def test_package_manager_and_pip_commands_are_held(distro, tmp_path):
    sim = simulate(SimulatedHost(*distro), {"omero_web_ice_cache_dir": str(tmp_path)})
    held = [unbuffered(c) for c in sim.buffered]
    manager = "apt-get" if distro[0] == "debian" else "dnf"
    assert any(f"{manager} " in c and " install " in c for c in held), sim.buffered
    assert any("/opt/omero/web/venv3/bin/python -m pip install " in c for c in held)
    if manager == "apt-get":
        assert "apt-get update" in held
    # short commands are not held
    assert not [c for c in held if c.startswith(("systemctl ", "useradd ", "runuser "))]
