"""
The Ice build's compiler and headers are removed after the build, and only the packages
the build's installation added: the script runs here in a real shell against stand-in
``dpkg-query``/``apt-get``/``rpm``/``dnf`` commands that keep a package list in a file.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from operations.ice import build_with_packages
from tests.unit.simulate import SimulatedHost, simulate

FAKE_TOOLS = {
    # every stand-in works on $PKGDB: one installed package per line
    "dpkg-query": 'while read -r p; do printf "install ok installed %s\\n" "$p"; done < "$PKGDB"\n',
    "rpm": 'cat "$PKGDB"\n',
    "apt-get": (
        'cmd=""; for a in "$@"; do case "$a" in install|purge) cmd=$a;; -*) ;; *)\n'
        '  if [ "$cmd" = install ]; then grep -qx "$a" "$PKGDB" || echo "$a" >> "$PKGDB"; echo "$a" >> "$PKGDB";\n'
        '  elif [ "$cmd" = purge ]; then grep -vx "$a" "$PKGDB" > "$PKGDB.new"; mv "$PKGDB.new" "$PKGDB"; echo "$a" >> "$PKGLOG"; fi;;\n'
        '  esac; done\n'
        # install also pulls in a dependency, as apt does
        '[ "$cmd" = install ] && { grep -qx libdep "$PKGDB" || echo libdep >> "$PKGDB"; }; sort -u "$PKGDB" -o "$PKGDB"\n'
    ),
}
FAKE_TOOLS["dnf"] = FAKE_TOOLS["apt-get"].replace("install|purge", "install|remove").replace('"$cmd" = purge', '"$cmd" = remove')


@pytest.fixture
def host_tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKE_TOOLS.items():
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\n" + body)
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    db, log = tmp_path / "packages", tmp_path / "removed"
    db.write_text("g++\nlibc6\nnginx\n")  # g++ was there before: it stays
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "PKGDB": str(db), "PKGLOG": str(log)}
    return tmp_path, env, db, log


@pytest.mark.parametrize("manager", ["apt", "dnf"])
@pytest.mark.parametrize("build_works", [True, False])
def test_build_packages_added_are_removed_after_the_build(host_tools, manager, build_works):
    work, env, db, log = host_tools
    steps = "echo built > " + str(work / "wheel") + ("" if build_works else " && false")
    script = build_with_packages(manager, ("g++", "make", "python3-dev"), steps, workdir=str(work))
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert (result.returncode == 0) == build_works, result.stderr
    assert (work / "wheel").read_text() == "built\n"
    # what the build installed (make, python3-dev and the dependency) is gone; the rest stays
    assert sorted(db.read_text().split()) == ["g++", "libc6", "nginx"]
    assert sorted(log.read_text().split()) == ["libdep", "make", "python3-dev"]
    assert "removing the packages installed for the Ice build: libdep make python3-dev" in result.stderr
    assert not (work / "packages.before").exists() and not (work / "packages.after").exists()


def test_nothing_removed_when_the_build_needed_nothing(host_tools):
    work, env, db, log = host_tools
    db.write_text("g++\nlibdep\nmake\npython3-dev\n")
    script = build_with_packages("apt", ("g++", "make", "python3-dev"), "true", workdir=str(work))
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and log.read_text() == "" and "removing" not in result.stderr


@pytest.mark.parametrize("distro, remove", [(("debian", "13"), "apt-get purge -y"), (("rocky", "9"), "dnf remove -y"),
                                            (("centos", "7"), "yum remove -y")])
def test_every_build_on_a_distro_removes_what_it_installed(distro, remove, tmp_path):
    sim = simulate(SimulatedHost(*distro), {"omero_web_ice_source": "build", "omero_web_ice_cache_dir": str(tmp_path)})
    build = [c for c in sim.find(r"pip wheel --no-deps") if "patch_zeroc_ice.py" in c]
    assert build and all(f"{remove} $added" in c for c in build)
