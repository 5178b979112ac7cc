"""
The Ice build from the sdist, and a wheel refused for its SHA-256, on one Debian 12 systemd
target reached over SSH (real ``pyinfra`` runs):

- a deploy with ``omero_web_ice_source = build`` and a control-machine cache of its own (so no
  cached wheel is used) builds IcePy from the pinned sdist while a sampler in the target
  records the uid of every compiler process: compilers were seen, none ran as root; the
  throwaway build account and its folder are gone after, the built wheel is installed (Ice
  imports), the control machine keeps it with the SHA-256 the target recorded; a re-run
  changes nothing;
- with Ice removed from the venv, a local wheel whose bytes were changed, given with the
  genuine wheel's ``omero_web_ice_wheel_sha256``: the run fails naming the wheel and both
  hashes, and installs nothing; the genuine wheel with its hash installs; a re-run changes
  nothing.

One build (several minutes on two cores); the second scenario reuses its wheel.
"""

from __future__ import annotations

import hashlib
import shlex

import pytest

from testbed.pyinfra_run import Deployer, run_pyinfra, sh, systemd_target, target_data, write_inventory

pytestmark = pytest.mark.integration

VENV_PYTHON = "/opt/omero/web/venv3/bin/python"
SAMPLES = "/root/compiler-uids.log"
# Every 0.2 s: the uid and name of each compiler process (gcc's driver, cc1/cc1plus, the linker's
# collect2/ld), one line each; started detached so that it outlives `docker exec`.
SAMPLER = (
    "while :; do ps -eo uid=,comm= | awk '$2 ~ /^(cc1|cc1plus|gcc|g\\+\\+|x86_64-linux-gnu-g\\+\\+-[0-9]+|collect2|ld)$/' "
    f">> {SAMPLES}; sleep 0.2; done"
)


class PrivateCacheDeployer(Deployer):
    """A ``Deployer`` whose control-machine Ice cache is its own (empty at first), not the test
    suite's: the build must happen, not be served from a wheel built earlier."""

    def __init__(self, target, workdir, group: str, cache, **defaults):
        super().__init__(target, workdir, group, **defaults)
        self.cache = cache

    def __call__(self, *args: str, **data):
        number = len(self.runs) + 1
        name, host_data = target_data(self.target, **{**self.defaults, **data})
        host_data["omero_web_ice_cache_dir"] = str(self.cache)
        inventory = write_inventory(self.workdir / f"inventory{number}.py", {self.group: [(name, host_data)]})
        run = run_pyinfra(inventory, "deploy.py", *args, log=self.workdir / f"run{number}.log")
        self.runs.append(run)
        return run


@pytest.fixture(scope="module")
def target(docker_engine):
    with systemd_target("bookworm", "icebuild") as target:
        yield target


@pytest.fixture(scope="module")
def built(target, tmp_path_factory):
    """The deploy that builds Ice (sampled), and what the sampler saw."""
    work = tmp_path_factory.mktemp("ice-build")
    deploy = PrivateCacheDeployer(target, work, "debian12", work / "wheels", omero_web_ice_source="build")
    sh(target, f"rm -f {SAMPLES}; setsid sh -c {shlex.quote(SAMPLER)} > /dev/null 2>&1 < /dev/null & echo $! > /root/sampler.pid")
    first = deploy()
    sh(target, "kill $(cat /root/sampler.pid) || true")
    assert first.returncode == 0, first.tail()
    samples = [line.split() for line in sh(target, f"cat {SAMPLES} 2>/dev/null || true").splitlines() if line.strip()]
    return deploy, first, samples, work / "wheels"


def test_the_build_compiles_as_an_unprivileged_account_never_root(target, built):
    deploy, first, samples, _ = built
    assert "Fetch or build the Ice wheel" in first.output
    compilers = {name for _, name in samples}
    uids = {int(uid) for uid, _ in samples}
    assert "cc1plus" in compilers, samples[:20]  # the sampler saw the C++ compiler at work
    assert 0 not in uids, sorted({(uid, name) for uid, name in samples if uid == "0"})
    # the account the build ran as is gone, with its folder; its uid is nobody's now
    assert target.exec("getent passwd omeroweb-ice-build")[0] != 0
    assert target.exec("getent group omeroweb-ice-build")[0] != 0
    assert target.exec("test -e /var/cache/omeroweb-deploy-ice-build")[0] != 0
    for uid in uids:
        assert target.exec(f"getent passwd {uid}")[0] != 0, uid
    # the compiler installed for the build is gone again
    assert target.exec("dpkg -s g++ 2>/dev/null | grep -q 'Status: install ok installed'")[0] != 0


def test_the_built_wheel_is_installed_and_kept_with_its_recorded_hash(target, built):
    deploy, _, _, cache = built
    assert sh(target, f"{VENV_PYTHON} -c 'import Ice; print(Ice.stringVersion())'") == "3.6.5"
    (wheel,) = cache.glob("debian-12-x86_64-cp311/zeroc_ice-3.6.5-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert (wheel.parent / (wheel.name + ".sha256")).read_text() == digest + "\n"
    # the hash root recorded on the target when it took the wheel out of the build account's folder
    recorded = sh(target, f"cat /var/cache/omeroweb-deploy/ice/wheelhouse/{wheel.name}.sha256")
    assert recorded == f"{digest}  {wheel.name}"
    deploy.assert_rerun_changes_nothing()


def test_a_tampered_wheel_is_refused_naming_it(target, built, tmp_path):
    deploy, _, _, cache = built
    (genuine,) = cache.glob("debian-12-x86_64-cp311/zeroc_ice-3.6.5-*.whl")
    digest = hashlib.sha256(genuine.read_bytes()).hexdigest()
    tampered = tmp_path / "tampered" / genuine.name
    tampered.parent.mkdir()
    tampered.write_bytes(genuine.read_bytes() + b"\0")
    sh(target, f"{VENV_PYTHON} -m pip uninstall -y -q zeroc-ice")
    uploads = "sha256sum /var/cache/omeroweb-deploy/ice/upload/* 2>/dev/null || true"  # the build run's upload
    uploaded_before = sh(target, uploads)
    ice_only = {"omero_web_tags": "ice", "omero_web_ice_source": "wheel"}

    refused = deploy(**ice_only, omero_web_ice_wheel=str(tampered), omero_web_ice_wheel_sha256=digest)
    assert refused.returncode != 0
    tampered_digest = hashlib.sha256(tampered.read_bytes()).hexdigest()
    assert (f"refusing the Ice wheel {tampered}: its SHA-256 is {tampered_digest}, "
            f"omero_web_ice_wheel_sha256 is {digest}") in refused.output, refused.tail()
    assert target.exec(f"{VENV_PYTHON} -c 'import Ice'")[0] != 0  # nothing installed
    assert sh(target, uploads) == uploaded_before and tampered_digest not in uploaded_before  # nor sent

    given = dict(ice_only, omero_web_ice_wheel=str(genuine), omero_web_ice_wheel_sha256=digest)
    installed = deploy(**given)
    assert installed.returncode == 0, installed.tail()
    assert sh(target, f"{VENV_PYTHON} -c 'import Ice; print(Ice.stringVersion())'") == "3.6.5"
    deploy.assert_rerun_changes_nothing(**given)
