"""
The Ice build's inputs are pinned and it runs unprivileged; a wheel is used only with the
SHA-256 it must have; the wheel URL never reaches a command line.

- The pins: every Python the profiles support gets pip, setuptools (and wheel where setuptools
  lacks ``bdist_wheel``) pinned by version and SHA-256; the sdist's pin is the real sdist's hash.
- Real pip, offline: a tampered sdist or build requirement is refused in hash-checking mode,
  naming it (the same requirement files and options the build uses).
- Real ``sh``: the script's functions refuse a wheel with the wrong SHA-256 naming it and both
  hashes, record the right one, refuse anything but one wheel; the builder's install refuses
  a wheel whose bytes changed since they were recorded.
- Simulated deploys: what compiles runs only as the throwaway account; the URL (credentials
  and all) is in no command, only in a root-only upload; a local or cached wheel with the
  wrong SHA-256 is never installed; the control machine keeps a builder's wheel only with the
  hash the builder recorded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest

from operations import ice
from host.context import Context
from model.distro_profile import APT_RELEASES, RPM_RELEASES
from model.web_config import secret_values
from model.settings import ValidationError, validate
from tests.unit.simulate import SimulatedHost, simulate

WORK = ice.REMOTE_WORKDIR
WHEEL = "zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
SUPPORTED_PYTHONS = sorted({r.python_version for r in (*APT_RELEASES.values(), *RPM_RELEASES.values())})
PIN = re.compile(r"(?P<name>[a-z]+)==(?P<version>[0-9.]+) --hash=sha256:(?P<sha256>[0-9a-f]{64})")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def data(tmp_path):
    return {"omero_web_ice_cache_dir": str(tmp_path / "wheels")}


# --- the pins ------------------------------------------------------------------------------------

@pytest.mark.parametrize("python", SUPPORTED_PYTHONS, ids=lambda v: "%d.%d" % v)
def test_every_supported_python_gets_hashed_build_tools(python):
    lines = ice.build_requirements(python).splitlines()
    pins = {m["name"]: m["version"] for m in map(PIN.fullmatch, lines) if m}
    assert len(pins) == len(lines), lines  # every line pinned by version and hash
    assert {"pip", "setuptools"} <= set(pins)
    # setuptools before 70.1 builds wheels only with the wheel package
    setuptools = tuple(int(part) for part in pins["setuptools"].split(".")[:2])
    assert ("wheel" in pins) == (setuptools < (70, 1)), pins


def test_newer_pythons_take_the_newest_row_and_older_are_refused():
    assert ice.build_requirements((3, 14)) == ice.build_requirements((3, 9))
    with pytest.raises(ValueError, match="3, 4"):
        ice.build_requirements((3, 4))


def test_the_sdist_pin_is_the_real_sdists_hash():
    from tests.unit.test_ice_patch import real_sdist  # PyPI's file (fetched once into the cache)

    with open(real_sdist(), "rb") as handle:
        assert sha(handle.read()) == ice.SDIST_SHA256
    assert ice.SDIST_REQUIREMENTS == f"zeroc-ice==3.6.5 --hash=sha256:{ice.SDIST_SHA256}\n"


# --- real pip, offline: a tampered input is refused, named -------------------------------------------

def pip(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PIP_FIND_LINKS", None)
    return subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_tampered_sdist_is_refused_naming_it(tmp_path):
    links = tmp_path / "index"
    links.mkdir()
    (links / "zeroc-ice-3.6.5.tar.gz").write_bytes(b"not the zeroc-ice sdist")
    (tmp_path / "sdist-requirements.txt").write_text(ice.SDIST_REQUIREMENTS)
    # the options of the build's download step
    result = pip("download", "--require-hashes", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                 "--find-links", str(links), "-r", "sdist-requirements.txt", "-d", "src", cwd=tmp_path)
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr and "zeroc-ice" in result.stderr, result.stderr
    assert ice.SDIST_SHA256 in result.stderr and sha(b"not the zeroc-ice sdist") in result.stderr
    assert not (tmp_path / "src").exists() or not any((tmp_path / "src").iterdir())


@pytest.mark.parametrize("line", ice.build_requirements(sys.version_info[:2]).splitlines(),
                         ids=lambda line: line.split("==")[0])
def test_a_tampered_build_requirement_is_refused_naming_it(tmp_path, line):
    """Each line of this Python's build requirements, alone (pip stops at the first mismatch)."""
    pin = PIN.fullmatch(line)
    links = tmp_path / "index"
    links.mkdir()
    (links / f"{pin['name']}-{pin['version']}-py3-none-any.whl").write_bytes(b"tampered")
    (tmp_path / "build-requirements.txt").write_text(line + "\n")
    # the options of the build's install step (into a folder here, not this venv)
    result = pip("install", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--target", "env",
                 "--find-links", str(links), "-r", "build-requirements.txt", cwd=tmp_path)
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr, result.stderr
    assert re.search(rf"^\s*{pin['name']}=={re.escape(pin['version'])} from ", result.stderr, re.M), result.stderr
    assert pin["sha256"] in result.stderr and sha(b"tampered") in result.stderr
    assert not (tmp_path / "env").exists()


# --- real sh: the script's wheel checks -----------------------------------------------------------

def keep_wheel(folder, expected: str = "") -> subprocess.CompletedProcess:
    script = f"{ice._functions()}ice_keep_wheel {shlex.quote(str(folder))} {shlex.quote(expected)}"
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True)


def test_a_fetched_wheel_with_the_wrong_hash_is_refused_naming_it(tmp_path):
    (tmp_path / WHEEL).write_bytes(b"tampered wheel")
    wanted = sha(b"the real wheel")
    result = keep_wheel(tmp_path, wanted)
    assert result.returncode != 0
    assert (f"refusing the Ice wheel {WHEEL}: its SHA-256 is {sha(b'tampered wheel')}, "
            f"omero_web_ice_wheel_sha256 is {wanted}") in result.stderr
    assert not any(tmp_path.iterdir())  # removed: nothing left for a later step to install


@pytest.mark.parametrize("expected", ["", "given"])
def test_the_right_wheel_gets_its_hash_recorded(tmp_path, expected):
    (tmp_path / WHEEL).write_bytes(b"the real wheel")
    result = keep_wheel(tmp_path, sha(b"the real wheel") if expected else "")
    assert result.returncode == 0, result.stderr
    recorded = (tmp_path / (WHEEL + ".sha256")).read_text()
    assert recorded == f"{sha(b'the real wheel')}  {WHEEL}\n"
    # the format sha256sum checks, as the builder's install does
    assert subprocess.run(["sha256sum", "-c", "--quiet", WHEEL + ".sha256"], cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("files", [(), (WHEEL, "zeroc_ice-3.6.5-cp311-abi3-linux_x86_64.whl")], ids=["none", "two"])
def test_anything_but_one_wheel_is_refused(tmp_path, files):
    for name in files:
        (tmp_path / name).write_bytes(b"x")
    result = keep_wheel(tmp_path)
    assert result.returncode != 0 and "expected one Ice wheel" in result.stderr
    assert not list(tmp_path.glob("*.sha256"))


def test_the_builders_install_refuses_a_wheel_changed_since_it_was_recorded(tmp_path, data):
    sim = simulate(SimulatedHost("debian", "12"), {**data, "omero_web_ice_source": "build"})
    check = sim.find(r"sha256sum -c --quiet zeroc_ice-\*\.whl\.sha256")
    install = sim.find(r"pip install --no-deps --force-reinstall /var/cache/omeroweb-deploy/ice/wheelhouse/")
    assert check and install and sim.commands.index(check[0]) < sim.commands.index(install[0])
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / WHEEL).write_bytes(b"built")
    assert keep_wheel(wheelhouse).returncode == 0
    command = check[0].replace(f"{WORK}/wheelhouse", str(wheelhouse))
    assert subprocess.run(["sh", "-c", command], capture_output=True).returncode == 0
    (wheelhouse / WHEEL).write_bytes(b"changed after the build")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert result.returncode != 0 and "refusing to install the Ice wheel" in result.stderr
    assert f"{WHEEL}: FAILED" in result.stdout + result.stderr


# --- simulated deploys: the script's shape ------------------------------------------------------

def account_parts(script: str) -> tuple[list[str], str]:
    """The shell scripts run as the build account, and the script without them (root's part)."""
    quoted = r"runuser -u omeroweb-ice-build -- sh -c ('(?:[^']|'\"'\"')*')"
    parts = [shlex.split(m.group(1))[0] for m in re.finditer(quoted, script)]
    return parts, re.sub(quoted, "<as the build account>", script)


@pytest.mark.parametrize("distro", [("debian", "12"), ("debian", "13"), ("rocky", "9"), ("centos", "7"),
                                    ("ubuntu", "18.04")], ids="-".join)
def test_nothing_that_compiles_or_runs_the_sdist_runs_as_root(distro, data):
    sim = simulate(SimulatedHost(*distro), {**data, "omero_web_ice_source": "build"})
    (script,) = set(sim.find(r"ice_build_account_gone\(\) \{"))
    parts, root_part = account_parts(script)
    build = [p for p in parts if "pip wheel" in p]
    assert len(build) == 1
    for step in ("-m venv env", "pip install --require-hashes --no-deps --only-binary :all: -r build-requirements.txt",
                 "pip download --require-hashes --no-deps --no-binary :all: --no-build-isolation",
                 "patch_zeroc_ice.py src/zeroc-ice-3.6.5", "pip wheel --no-deps --no-build-isolation",
                 "tar -xzf src/zeroc-ice-3.6.5.tar.gz"):
        assert step in build[0], step
        assert step not in root_part, step
    assert not re.search(r"pip (wheel|download --require-hashes)|patch_zeroc_ice\.py src|setup\.py", root_part)
    # the compiler is root's business only as packages: installed before, removed after
    assert "apt-get install" in root_part or "install -y" in root_part
    # the account: made for the build with a comment of its own, its folder root-made 0700, removed after
    assert ("useradd --system --user-group --no-create-home --home-dir /var/cache/omeroweb-deploy-ice-build "
            "--shell /usr/sbin/nologin --comment 'omeroweb-deploy Ice build (temporary)' omeroweb-ice-build") in root_part
    made = root_part.index("mkdir -m 700 /var/cache/omeroweb-deploy-ice-build")
    assert made < root_part.index("useradd") < root_part.index("chown -R omeroweb-ice-build: ")
    assert root_part.count("ice_build_account_gone && rm -rf /var/cache/omeroweb-deploy-ice-build") == 2
    # the wheel leaves the account's folder read by the account, its name checked, its hash recorded by root
    assert "cat -- \"$2\"" in " ".join(parts) and "grep -cEx" in root_part
    assert f"> {WORK}/wheelhouse/\"$name\" && ice_keep_wheel {WORK}/wheelhouse" in root_part


def test_the_build_inputs_are_uploaded_pinned(data):
    sim = simulate(SimulatedHost("debian", "12"), {**data, "omero_web_ice_source": "build"})
    assert sim.uploads[f"{WORK}/sdist-requirements.txt"] == ice.SDIST_REQUIREMENTS
    assert sim.uploads[f"{WORK}/build-requirements.txt"] == ice.build_requirements((3, 11))
    assert f"PUT {WORK}/patch_zeroc_ice.py" in sim.commands
    assert f"{WORK}/wheel-url.txt" not in sim.uploads  # no URL with ice_source = build


URL = "https://builder:S3cr3t-pw@wheels.example.org/ice/" + WHEEL


@pytest.mark.parametrize("sudo", [False, True], ids=["root", "sudo"])
def test_the_wheel_url_is_in_no_command_only_in_a_root_only_file(data, sudo):
    sim = simulate(SimulatedHost("debian", "12"), {**data, "omero_web_ice_source": "wheel", "omero_web_ice_wheel": URL,
                                                   **({"_sudo": True} if sudo else {})})
    assert not [c for c in sim.commands if "S3cr3t" in c or "wheels.example.org" in c]
    assert sim.uploads[f"{WORK}/wheel-url.txt"] == URL + "\n"
    (fetch,) = set(sim.find(r"pip download --no-deps --retries 1 --timeout 20 -r "))
    assert f"-r {WORK}/wheel-url.txt -d {WORK}/wheelhouse; fetched=$?; rm -f {WORK}/wheel-url.txt" in fetch
    assert "pip wheel" not in fetch  # an explicit wheel is never replaced by a build
    if sudo:  # uploaded through a folder only the SSH user can enter (uploads.private_upload)
        made = sim.find(r"^umask 077 && mkdir -m 700 ")
        assert made and made[0].split()[-1] in " ".join(sim.commands[sim.commands.index(made[0]) + 1:])


def test_the_wheel_urls_password_is_a_known_secret(tmp_path):
    profile = SimpleNamespace(cpus=2, service_manager="systemd", redis_package="redis-server", cron_package="cron")
    ctx = Context(validate({"omero_web_ice_source": "wheel", "omero_web_ice_wheel": URL}), profile)
    assert "S3cr3t-pw" in list(secret_values(ctx))


def test_validation_never_prints_the_wheel_url():
    with pytest.raises(ValidationError) as refused:
        validate({"omero_web_ice_wheel": URL})  # without ice_source = wheel
    assert "S3cr3t" not in str(refused.value) and "omero_web_ice_wheel is only used with" in str(refused.value)


# --- omero_web_ice_wheel_sha256 ---------------------------------------------------------------------

def test_the_sha256_key_is_checked_and_normalised(tmp_path):
    wheel = tmp_path / WHEEL
    wheel.write_bytes(b"w")
    given = {"omero_web_ice_source": "wheel", "omero_web_ice_wheel": str(wheel)}
    assert validate({**given, "omero_web_ice_wheel_sha256": "AB" * 32}).ice_wheel_sha256 == "ab" * 32
    for bad in ("ab" * 31, "zz" * 32, "ab" * 32 + "\n", 42):
        with pytest.raises(ValidationError, match="omero_web_ice_wheel_sha256 = .*expected a SHA-256"):
            validate({**given, "omero_web_ice_wheel_sha256": bad})
    with pytest.raises(ValidationError, match="omero_web_ice_source = 'build' uses none"):
        validate({"omero_web_ice_source": "build", "omero_web_ice_wheel_sha256": "ab" * 32})
    assert validate({"omero_web_ice_wheel_sha256": "ab" * 32}).ice_source == "auto"  # the prebuilt wheel's


def test_a_local_wheel_with_the_wrong_hash_is_refused_naming_it(tmp_path, data):
    wheel = tmp_path / WHEEL
    wheel.write_bytes(b"tampered wheel")
    wanted = sha(b"the real wheel")
    given = {**data, "omero_web_ice_source": "wheel", "omero_web_ice_wheel": str(wheel)}
    sim = simulate(SimulatedHost("debian", "12"), {**given, "omero_web_ice_wheel_sha256": wanted})
    refusal = sim.find(r"refusing the Ice wheel")
    assert refusal and f"refusing the Ice wheel {wheel}: its SHA-256 is {sha(b'tampered wheel')}, " \
                       f"omero_web_ice_wheel_sha256 is {wanted}" in refusal[0]
    assert not [c for c in sim.commands if WHEEL in c and c != refusal[0]]  # neither uploaded nor installed
    # the right hash: uploaded, checked on the host, installed
    sim = simulate(SimulatedHost("debian", "12"), {**given, "omero_web_ice_wheel_sha256": sha(b"tampered wheel")})
    assert not sim.find(r"refusing the Ice wheel") and f"PUT {WORK}/upload/{WHEEL}" in sim.commands
    assert sim.find(rf"pip install --no-deps --force-reinstall {WORK}/upload/{WHEEL}")


def test_a_cached_wheel_is_used_only_with_the_datas_hash(tmp_path, data):
    abi_dir = tmp_path / "wheels" / "debian-12-x86_64-cp311"
    abi_dir.mkdir(parents=True)
    (abi_dir / WHEEL).write_bytes(b"built here once")
    (abi_dir / (WHEEL + ".sha256")).write_text(sha(b"built here once") + "\n")
    given = {**data, "omero_web_ice_source": "wheel", "omero_web_ice_wheel": URL}
    uploaded = f"PUT {WORK}/upload/{WHEEL}"
    assert uploaded in simulate(SimulatedHost("debian", "12"), given).commands  # no hash given: the cache serves
    sim = simulate(SimulatedHost("debian", "12"), {**given, "omero_web_ice_wheel_sha256": sha(b"the real wheel")})
    assert uploaded not in sim.commands
    (fetch,) = set(sim.find(r"-r /var/cache/omeroweb-deploy/ice/wheel-url\.txt"))
    assert f"ice_keep_wheel {WORK}/wheelhouse {sha(b'the real wheel')}" in fetch
    sim = simulate(SimulatedHost("debian", "12"), {**given, "omero_web_ice_wheel_sha256": sha(b"built here once")})
    assert uploaded in sim.commands and not sim.find(r"wheel-url\.txt")


def test_auto_mode_checks_the_prebuilt_wheel_and_builds_only_when_it_cannot_be_fetched(data):
    wanted = "ab" * 32
    sim = simulate(SimulatedHost("rocky", "9"), {**data, "omero_web_ice_wheel_sha256": wanted})
    (script,) = set(sim.find(r"ice_build_account_gone\(\) \{"))
    assert re.search(rf"if \{{ .* -r {WORK}/wheel-url\.txt .*\}}; then ice_keep_wheel {WORK}/wheelhouse {wanted}; "
                     r"else echo 'prebuilt Ice wheel unavailable: building from the sdist' >&2; ", script)
    assert "manylinux" in sim.uploads[f"{WORK}/wheel-url.txt"]


# --- the control machine keeps a builder's wheel only with the builder's hash ------------------------

class Host:
    def __init__(self):
        self.logged = []

    def log_styled(self, message, **_):
        self.logged.append(message)


@pytest.mark.parametrize("record", ["right", "wrong", "other-name", "garbage"])
def test_a_wheel_from_the_builder_is_kept_only_with_the_hash_it_recorded(tmp_path, record):
    part, final, host_record = tmp_path / (WHEEL + ".part"), tmp_path / WHEEL, tmp_path / (WHEEL + ".sha256.host")
    part.write_bytes(b"built")
    digest = {"right": sha(b"built"), "wrong": sha(b"other"), "other-name": sha(b"built"), "garbage": "x"}[record]
    name = "zeroc_ice-3.6.5-cp311-abi3-linux_x86_64.whl" if record == "other-name" else WHEEL
    host_record.write_text(f"{digest}  {name}\n")
    host = Host()
    kept = ice.keep_in_cache(None, host, str(part), str(final), str(host_record))
    assert not part.exists() and not host_record.exists()
    if record == "right":
        assert kept and final.read_bytes() == b"built" and ice.cached_wheel(str(tmp_path)) == str(final)
    else:
        assert kept is False and not final.exists() and ice.cached_wheel(str(tmp_path)) is None
        assert f"refusing the Ice wheel {WHEEL} from the building host: its SHA-256 is {sha(b'built')}" in host.logged[0]



# --- real sh, stand-in account tools: the throwaway account's removal ----------------------------

def account_tools(tmp_path, comment: str):
    """Stand-ins for getent, runuser, userdel and groupdel that log their calls; getent knows the
    build account (uid 4000000, no process has it) with ``comment``, and no group of it."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    entry = f"omeroweb-ice-build:x:4000000:4000000:{comment}:/var/cache/omeroweb-deploy-ice-build:/usr/sbin/nologin"
    tools = {
        "getent": f'echo "getent $*" >> {log}; [ "$1" = passwd ] && echo {shlex.quote(entry)}',
        "runuser": f'echo "runuser $*" >> {log}',
        "userdel": f'echo "userdel $*" >> {log}',
        "groupdel": f'echo "groupdel $*" >> {log}',
    }
    for name, body in tools.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}, log


def test_the_build_account_is_removed_after_its_processes_are_killed(tmp_path):
    env, log = account_tools(tmp_path, ice.BUILD_ACCOUNT_COMMENT)
    result = subprocess.run(["sh", "-c", ice._functions() + "ice_build_account_gone"], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    kill = "runuser -u omeroweb-ice-build -- sh -c kill -9 -1"
    assert calls == ["getent passwd omeroweb-ice-build", kill, "userdel omeroweb-ice-build",
                     "getent group omeroweb-ice-build"]


def test_an_account_of_that_name_the_deploy_did_not_make_is_refused_not_removed(tmp_path):
    env, log = account_tools(tmp_path, "Ice Builder (a colleague's)")
    result = subprocess.run(["sh", "-c", ice._functions() + "ice_build_account_gone"], env=env, capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert "refusing to use the account omeroweb-ice-build for the Ice build: it exists and omeroweb-deploy did not " \
           "make it" in result.stderr
    assert log.read_text().splitlines() == ["getent passwd omeroweb-ice-build"]  # nothing killed or removed


def test_a_running_process_of_a_uid_is_seen():
    def runs(uid) -> bool:
        return subprocess.run(["sh", "-c", ice._functions() + f"ice_uid_runs {uid}"]).returncode == 0

    assert runs(os.getuid())  # this very test
    assert not runs(4000000)


def test_the_functions_leave_the_scripts_variables_alone(tmp_path):
    """sh has no local variables: the functions' own must not be the script's (the package clean-up
    around the build keeps the build's exit status in $status)."""
    env, _ = account_tools(tmp_path, ice.BUILD_ACCOUNT_COMMENT)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / WHEEL).write_bytes(b"w")
    names = "status added name built fetched entry uid n got proc"
    script = (f"{ice._functions()}for v in {names}; do eval \"$v=kept\"; done; "
              f"ice_uid_runs 4000000; ice_build_account_gone && ice_keep_wheel {shlex.quote(str(tmp_path / 'wheels'))} && "
              f"for v in {names}; do eval \"echo $v=\\$$v\"; done")
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{v}=kept" for v in names.split()]
