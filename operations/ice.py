"""
Walkthrough "Install ZeroC IcePy 3.6": three sources, chosen by ``omero_web_ice_source``.

- ``wheel``: ``omero_web_ice_wheel``, a URL or a local ``.whl`` uploaded from the control machine.
- ``auto``: the distro's prebuilt wheel (the walkthrough's URL, or the current prebuilt
  manylinux wheel for the host's Python); when it cannot be fetched, ``build``.
- ``build``: the PyPI sdist, patched for the host's Python (``files/ice/patch_zeroc_ice.py``),
  with the compiler and headers it needs installed for the build and removed after it.
  Everything the build fetches is pinned by SHA-256 (pip's hash-checking mode): the sdist and
  the pip, setuptools and wheel it is built with (``BUILD_PINS``). The build runs as a
  throwaway account (``BUILD_ACCOUNT``) in a folder of its own, never as root; root takes the
  wheel out through that account and records its SHA-256, which every later use checks.

A fleet fetches or builds once per distro release + architecture + Python ABI: the first
host of each ABI planned in this run is its builder; the wheel goes into the control
machine's cache (``omero_web_ice_cache_dir``) and every other host of that ABI, in this
run and later ones, gets it uploaded from there.

One module, though long: the fetch-or-build script, its pins and its three operations belong together.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from io import StringIO
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import FileDownloadCommand, FileUploadCommand, FunctionCommand, deploy, operation
from pyinfra.facts.files import FindFiles

from model.omero_install import OmeroInstall
from host.context import Context, current, run_registry
from host.facts import PathExists, VenvReport, q
from host.ownership import as_user
from host.snapshot import existing, fact_until_change
from host.uploads import private_upload

TAGS = ("ice",)
ICE_VERSION = "3.6.5"
PATCH_SCRIPT = Path(__file__).resolve().parent.parent / "files" / "ice" / "patch_zeroc_ice.py"
REMOTE_WORKDIR = "/var/cache/omeroweb-deploy/ice"

#: The only wheel names taken from a host or a build (never a path). An ERE: the shell checks it too.
WHEEL_NAME_ERE = r"zeroc_ice-3\.6\.5-cp[0-9]{2,3}-(cp[0-9]{2,3}[dmu]*|abi3|none)-[A-Za-z0-9_.]+\.whl"
WHEEL_NAME = re.compile(WHEEL_NAME_ERE)

#: zeroc-ice 3.6.5 exists on PyPI only as this sdist (SHA-256 as PyPI lists it).
SDIST_SHA256 = "4235ffeb605bcd4e22e716577f7d61e4aa1bc82f65276bb542701a81b7933356"
SDIST_REQUIREMENTS = f"zeroc-ice=={ICE_VERSION} --hash=sha256:{SDIST_SHA256}\n"

#: What the sdist is built with, by the oldest Python of each row: (name, version, SHA-256 of its
#: wheel on PyPI), installed in hash-checking mode into a build venv of the host's Python. Each is a
#: release that supports every Python of its row (pip 21.3.1 and setuptools 59.6.0 are the last for
#: 3.6, pip 20.3.4 and setuptools 50.3.2 for 3.5, pip 24.0 and setuptools 68.0.0 for 3.7, pip 25.0.1
#: and setuptools 75.3.4 for 3.8); ``wheel`` only where setuptools is older than 70.1, which has
#: ``bdist_wheel`` built in. setuptools 80.9.0 builds the patched sdist on Python 3.9 to 3.13 (it
#: brings its own distutils, gone from the standard library in 3.12).
BUILD_PINS: tuple[tuple[tuple[int, int], tuple[tuple[str, str, str], ...]], ...] = (
    ((3, 9), (("pip", "25.3", "9655943313a94722b7774661c21049070f6bbb0a1516bf02f7c8d5d9201514cd"),
              ("setuptools", "80.9.0", "062d34222ad13e0cc312a4c02d73f059e86a4acbfbdea8f8f76b28c99f306922"))),
    ((3, 8), (("pip", "25.0.1", "c46efd13b6aa8279f33f2864459c8ce587ea6a1a59ee20de055868d8f7688f7f"),
              ("setuptools", "75.3.4", "2dd50a7f42dddfa1d02a36f275dbe716f38ed250224f609d35fb60a09593d93e"))),
    ((3, 7), (("pip", "24.0", "ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc"),
              ("setuptools", "68.0.0", "11e52c67415a381d10d6b462ced9cfb97066179f0e871399e006c4ab101fc85f"),
              ("wheel", "0.42.0", "177f9c9b0d45c47873b619f5b650346d632cdc35fb5e4d25058e09c9e581433d"))),
    ((3, 6), (("pip", "21.3.1", "deaf32dcd9ab821e359cd8330786bcd077604b5c5730c0b096eda46f95c24a2d"),
              ("setuptools", "59.6.0", "4ce92f1e1f8f01233ee9952c04f6b81d1e02939d6e1b488428154974a4d0783e"),
              ("wheel", "0.37.1", "4bdcd7d840138086126cd09254dc6195fb4fc6f01c050a1d7236f2630db1d22a"))),
    ((3, 5), (("pip", "20.3.4", "217ae5161a0e08c0fb873858806e3478c9775caffce5168b50ec885e358c199d"),
              ("setuptools", "50.3.2", "2c242a0856fbad7efbe560df4a7add9324f340cf48df43651e9604924466794a"),
              ("wheel", "0.37.1", "4bdcd7d840138086126cd09254dc6195fb4fc6f01c050a1d7236f2630db1d22a"))),
)

#: The throwaway account the build runs as: made for one build, removed after it (and only an
#: account with this comment is ever removed). Its folder, root's and 0700 until given to it,
#: sits outside root's own (0700) work folder, which it cannot enter.
BUILD_ACCOUNT = "omeroweb-ice-build"
BUILD_ACCOUNT_COMMENT = "omeroweb-deploy Ice build (temporary)"
BUILD_DIR = "/var/cache/omeroweb-deploy-ice-build"
#: Files the build reads (uploaded to REMOTE_WORKDIR) and the root-only file holding the wheel URL,
#: which may carry credentials: never on a command line.
BUILD_INPUTS = ("patch_zeroc_ice.py", "build-requirements.txt", "sdist-requirements.txt")
WHEEL_URL_FILE = "wheel-url.txt"


def cache_dir(ctx: Context) -> str:
    return os.path.join(os.path.expanduser(ctx.settings.ice_cache_dir), ctx.profile.abi_key)


#: (path, inode, size, mtime) -> sha256: a 30 MB wheel is hashed once per run, not per host and step.
_SHA256_SEEN: dict[tuple, str] = {}


def file_sha256(path: str) -> str:
    info = os.stat(path)
    key = (os.path.abspath(path), info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _SHA256_SEEN:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _SHA256_SEEN[key] = digest.hexdigest()
    return _SHA256_SEEN[key]


def recorded_sha256(wheel: str) -> str | None:
    """The SHA-256 recorded beside a cached wheel when it was fetched (``<wheel>.sha256``)."""
    try:
        with open(wheel + ".sha256") as handle:
            value = handle.read().strip()
    except OSError:
        return None
    return value if re.fullmatch(r"[0-9a-f]{64}", value) else None


def cached_wheel(cache: str, sha256: str | None = None) -> str | None:
    """
    The wheel in ``cache`` (one ABI's folder) whose content still matches its recorded SHA-256,
    and is ``sha256`` when that is given (the data's ``omero_web_ice_wheel_sha256``); else None.
    """
    for found in sorted(glob.glob(os.path.join(cache, "zeroc_ice-3.6.5-*.whl"))):
        recorded = recorded_sha256(found) if WHEEL_NAME.fullmatch(os.path.basename(found)) else None
        if recorded and recorded == file_sha256(found):
            if sha256 is None or recorded == sha256:
                return found
            continue
        logger.warning(f"Ice wheel cache: ignoring {found}: no SHA-256 recorded for it, or its content changed")
    return None


def keep_in_cache(state, host, part: str, final: str, record: str) -> bool:
    """
    Take the wheel downloaded from the builder (``part``) into the cache as ``final`` only when
    it has the SHA-256 the builder recorded (``record``, ``sha256sum`` output) when it was built
    or fetched; record it beside the wheel, then give the wheel its final name.
    """
    try:
        with open(record) as handle:
            line = handle.read().strip()
    finally:
        if os.path.exists(record):
            os.remove(record)
    recorded = re.fullmatch(r"([0-9a-f]{64})  (\S+)", line)
    got = file_sha256(part)
    if not recorded or recorded.group(2) != os.path.basename(final) or recorded.group(1) != got:
        os.remove(part)
        host.log_styled(f"omeroweb-deploy: refusing the Ice wheel {os.path.basename(final)} from the building host: "
                        f"its SHA-256 is {got}, the host recorded {line[:64]!r} when it made it", fg="red",
                        log_func=logger.error)
        return False
    with open(final + ".sha256.part", "w") as handle:
        handle.write(got + "\n")
    os.replace(final + ".sha256.part", final + ".sha256")
    os.replace(part, final)
    return True


def local_wheel(settings) -> str | None:
    """The control machine's wheel file named by ``omero_web_ice_wheel``, if that is what is configured."""
    if settings.ice_source == "wheel" and "://" not in settings.ice_wheel:
        return settings.ice_wheel
    return None


def wheel_url(ctx: Context) -> str | None:
    """The wheel URL used before any build: the configured one, or the distro default in auto mode."""
    settings = ctx.settings
    if settings.ice_source == "wheel":
        return settings.ice_wheel if "://" in settings.ice_wheel else None
    if settings.ice_source == "auto":
        return ctx.profile.ice_default_wheel
    return None


def build_requirements(python_version: tuple[int, int]) -> str:
    """The hashed requirements file of the build venv for this Python (``BUILD_PINS``)."""
    for oldest, pins in BUILD_PINS:
        if tuple(python_version) >= oldest:
            return "".join(f"{name}=={version} --hash=sha256:{sha256}\n" for name, version, sha256 in pins)
    raise ValueError(f"no pinned Ice build requirements for Python {python_version}")


def build_inputs(python_version: tuple[int, int]) -> dict[str, str]:
    """The text files of ``BUILD_INPUTS`` (the patcher is uploaded from its file)."""
    return {"build-requirements.txt": build_requirements(python_version), "sdist-requirements.txt": SDIST_REQUIREMENTS}


#: Per package manager: install without extras, list what is installed (sorted), remove.
PACKAGE_COMMANDS = {
    "apt": ("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends",
            "dpkg-query -W -f='${Status} ${binary:Package}\\n' | awk '$3 == \"installed\" { print $4 }' | sort",
            "DEBIAN_FRONTEND=noninteractive apt-get purge -y"),
    "dnf": ("dnf install -y", "rpm -qa --qf '%{NAME}.%{ARCH}\\n' | sort", "dnf remove -y"),
    "yum": ("yum install -y", "rpm -qa --qf '%{NAME}.%{ARCH}\\n' | sort", "yum remove -y"),
}


def build_with_packages(package_manager: str, packages: tuple[str, ...], steps: str, workdir: str = REMOTE_WORKDIR) -> str:
    """
    ``steps`` with the compiler and headers they need installed, then every package that
    the installation added (and only those: the list of installed packages before and after)
    removed again, whether the build worked or not: a production host keeps no compiler it
    did not have. Fails when the build failed.
    """
    install, installed, remove = PACKAGE_COMMANDS[package_manager]
    before, after = q(f"{workdir}/packages.before"), q(f"{workdir}/packages.after")
    message = "omeroweb-deploy: removing the packages installed for the Ice build:"
    return (
        f"{{ {installed} > {before}; status=0; {{ {install} {' '.join(q(p) for p in packages)} && {steps}; }} "
        f"|| status=$?; {installed} > {after}; added=$(comm -13 {before} {after} | tr '\\n' ' '); "
        f'if [ -n "$added" ]; then echo "{message} $added" >&2; {remove} $added; fi; '
        f"rm -f {before} {after}; [ $status -eq 0 ]; }}"
    )


# Shell functions of the fetch-or-build script (root's), defined once at its start; their
# variables are named ice_* (sh has no locals: the package clean-up's $status is the script's).
# ice_uid_runs UID: whether a process of UID runs (a zombie, already dead, does not count).
# ice_build_account_gone: no build account left (a leftover of an interrupted build: its processes
#   killed first, since userdel does not always refuse an account with processes, then the
#   account), refusing one this deploy did not make.
# ice_keep_wheel DIR [SHA256]: the one wheel in DIR (root's) checked against SHA256 when given,
#   its SHA-256 recorded beside it (``sha256sum`` format) for every later use to check.
_FUNCTIONS = r"""ice_uid_runs() {
  for ice_proc in /proc/[0-9]*/status; do
    awk -v uid="$1" '/^State:/ { zombie = ($2 == "Z") } /^Uid:/ { exit !($2 == uid && !zombie) }' "$ice_proc" 2>/dev/null \
      && return 0
  done
  return 1
}
ice_build_account_gone() {
  ice_entry=$(getent passwd @ACCOUNT@) || return 0
  if [ "$(printf '%s\n' "$ice_entry" | cut -d: -f5)" != @COMMENT@ ]; then
    echo "omeroweb-deploy: refusing to use the account @ACCOUNT@ for the Ice build: it exists and omeroweb-deploy did not make it (its comment is not '@COMMENT_TEXT@'): remove or rename it, then run again" >&2
    return 1
  fi
  ice_uid=$(printf '%s\n' "$ice_entry" | cut -d: -f3); ice_n=0
  while runuser -u @ACCOUNT@ -- sh -c 'kill -9 -1' 2>/dev/null; ice_uid_runs "$ice_uid"; do
    ice_n=$((ice_n + 1)); [ $ice_n -le 20 ] || { echo "omeroweb-deploy: processes of @ACCOUNT@ (uid $ice_uid) outlive SIGKILL" >&2; return 1; }
    sleep 0.5
  done
  userdel @ACCOUNT@ && if getent group @ACCOUNT@ >/dev/null; then groupdel @ACCOUNT@; fi
}
ice_keep_wheel() {
  set -- "$1"/*.whl "$2"
  if [ $# -ne 2 ] || [ ! -f "$1" ] || [ -L "$1" ]; then
    echo "omeroweb-deploy: expected one Ice wheel, found: $*" >&2; return 1
  fi
  ice_got=$(sha256sum < "$1" | cut -d' ' -f1)
  if [ -n "$2" ] && [ "$ice_got" != "$2" ]; then
    echo "omeroweb-deploy: refusing the Ice wheel ${1##*/}: its SHA-256 is $ice_got, omero_web_ice_wheel_sha256 is $2" >&2
    rm -f "$1"; return 1
  fi
  echo "$ice_got  ${1##*/}" > "$1.sha256"
}
"""

# Run as BUILD_ACCOUNT (argv: its folder, the host's Python): a venv of pinned build tools, the
# pinned sdist, patched, built into a wheel. Every pip step in hash-checking mode, nothing
# fetched unpinned: no build isolation (which would fetch the newest setuptools). PIP_USE_PEP517:
# pip 20 and 21 (the last for Python 3.5 and 3.6) otherwise build the legacy way; newer pips
# ignore it. The linker leaves out the debug information (every setuptools appends LDFLAGS;
# CFLAGS would replace Python's -O and -DNDEBUG in recent ones): a 3 MB wheel instead of 30 MB,
# an 8.8 MB IcePy module instead of 86 MB, that every host of the ABI is sent, unpacks and keeps.
_BUILD_AS_ACCOUNT = r"""cd "$1" || exit 1
export HOME="$1" TMPDIR="$1/tmp" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_USE_PEP517=1
[ ! -f pip.conf ] || export PIP_CONFIG_FILE="$1/pip.conf"
set -e
mkdir tmp src wheelhouse
"$2" -m venv env
env/bin/python -m pip install --require-hashes --no-deps --only-binary :all: -r build-requirements.txt
env/bin/python -m pip download --require-hashes --no-deps --no-binary :all: --no-build-isolation \
  -r sdist-requirements.txt -d src
tar -xzf src/zeroc-ice-@VERSION@.tar.gz -C src
env/bin/python patch_zeroc_ice.py src/zeroc-ice-@VERSION@
LDFLAGS=-Wl,--strip-debug env/bin/python -m pip wheel --no-deps --no-build-isolation src/zeroc-ice-@VERSION@ \
  -w wheelhouse
"""

# Run as BUILD_ACCOUNT (argv: its wheelhouse, a file name): the built wheel's bytes, read as the
# account, so that root never opens a path the account chose (a link to a file of root's).
_CAT_WHEEL = 'cd "$1" && [ -f "$2" ] && [ ! -L "$2" ] && cat -- "$2"'


def _functions() -> str:
    return (_FUNCTIONS.replace("@ACCOUNT@", q(BUILD_ACCOUNT)).replace("@COMMENT@", q(BUILD_ACCOUNT_COMMENT))
            .replace("@COMMENT_TEXT@", BUILD_ACCOUNT_COMMENT))


def build_steps(python: str, pip_conf: str) -> str:
    """
    Root's part of the build (run with the compiler installed): a throwaway account and its
    0700 folder holding the build's inputs (and the venv's pip.conf, for a private index: that
    account only runs pinned code); the build run as that account; its wheel taken out (a
    single file of a zeroc_ice 3.6.5 wheel name, read as the account) into root's wheelhouse and
    its SHA-256 recorded; the account and its folder removed whether the build worked or not.

    + python: the host's interpreter the build venv is made from (the OMERO.web venv's)
    + pip_conf: the OMERO.web venv's pip.conf (root's), copied for the build when it exists
    """
    account, folder, work = q(BUILD_ACCOUNT), q(BUILD_DIR), q(REMOTE_WORKDIR)
    inputs = " ".join(f"{work}/{name}" for name in BUILD_INPUTS)
    build = as_user(BUILD_ACCOUNT, _BUILD_AS_ACCOUNT.replace("@VERSION@", ICE_VERSION), BUILD_DIR, python)
    listing = as_user(BUILD_ACCOUNT, 'cd "$1" && ls -A', f"{BUILD_DIR}/wheelhouse")
    take = (
        f'name=$({listing}) && {{ [ "$(printf "%s\\n" "$name" | grep -cEx {q(WHEEL_NAME_ERE)})" = 1 ] '
        f'&& [ "$(printf "%s\\n" "$name" | grep -c "")" = 1 ] || '
        f'{{ echo "omeroweb-deploy: the Ice build left no single zeroc_ice {ICE_VERSION} wheel" >&2; false; }}; }} && '
        f'{as_user(BUILD_ACCOUNT, _CAT_WHEEL, f"{BUILD_DIR}/wheelhouse")} "$name" > {work}/wheelhouse/"$name" && '
        f"ice_keep_wheel {work}/wheelhouse"
    )
    return (
        f"ice_build_account_gone && rm -rf {folder} && mkdir -m 700 {folder} && cp {inputs} {folder}/ && "
        f"{{ [ ! -f {q(pip_conf)} ] || cp {q(pip_conf)} {folder}/pip.conf; }} && "
        f"useradd --system --user-group --no-create-home --home-dir {folder} --shell /usr/sbin/nologin "
        f"--comment {q(BUILD_ACCOUNT_COMMENT)} {account} && chown -R {account}: {folder} && "
        f"{{ {build} && {take}; built=$?; ice_build_account_gone && rm -rf {folder} && [ $built -eq 0 ]; }}"
    )


def build_script(ctx: Context) -> str:
    """Shell script that leaves one Ice wheel and its SHA-256 in the remote wheelhouse: fetched, or built from the sdist."""
    work = q(REMOTE_WORKDIR)
    build = build_with_packages(ctx.profile.package_manager, ctx.profile.ice_build_packages,
                                build_steps(ctx.profile.python, ctx.install.pip_conf))
    url = wheel_url(ctx)
    if url:
        # the URL (credentials and all) only in a root-only file, removed once read
        expected = q(ctx.settings.ice_wheel_sha256 or "")
        url_file = f"{work}/{WHEEL_URL_FILE}"
        # (the venv's pip, as root: only while the venv is root's alone, ``install.trusted``)
        download = ctx.install.root_python("-m", "pip", "download", "--no-deps", "--retries", "1", "--timeout", "20",
                                           "-r", f"{REMOTE_WORKDIR}/{WHEEL_URL_FILE}", "-d", f"{REMOTE_WORKDIR}/wheelhouse")
        fetch = f"{{ {download}; fetched=$?; rm -f {url_file}; [ $fetched -eq 0 ]; }}"
        if ctx.settings.ice_source == "wheel":
            build = f"{fetch} && ice_keep_wheel {work}/wheelhouse {expected}"  # never silently replaced by a build
        else:
            # a prebuilt wheel that does not match the data's SHA-256 fails; only one that cannot be fetched is built
            build = (f"if {fetch}; then ice_keep_wheel {work}/wheelhouse {expected}; else "
                     f"echo 'prebuilt Ice wheel unavailable: building from the sdist' >&2; {build}; fi")
    return f"set -e; {_functions()}rm -rf {work}/wheelhouse; mkdir -p {work}/wheelhouse; {build}"


def _upload_inputs(inputs: dict[str, str], url: str | None):
    yield f"umask 077 && mkdir -p {q(REMOTE_WORKDIR)}"
    yield FileUploadCommand(str(PATCH_SCRIPT), f"{REMOTE_WORKDIR}/patch_zeroc_ice.py")
    for name, content in sorted(inputs.items()):
        yield FileUploadCommand(StringIO(content), f"{REMOTE_WORKDIR}/{name}")
    if url:
        yield from private_upload(url + "\n", f"{REMOTE_WORKDIR}/{WHEEL_URL_FILE}")


@operation()
def fetch_or_build_wheel(install: OmeroInstall, specs: list[str], script: str, inputs: dict[str, str],
                         url: str | None, builder: bool, cache: str, cache_sha256: str | None = None):
    """
    On the builder host of an ABI, leave an Ice wheel and its recorded SHA-256 in the remote wheelhouse.

    + install: the OMERO.web install (nothing happens when its venv has Ice)
    + specs: what pip installs in the venv (the key of the shared venv report)
    + script: the fetch-or-build script (``build_script``)
    + inputs: the build's text files (``build_inputs``)
    + url: the wheel URL fetched first, if any (uploaded to a root-only file, never on a command line)
    + builder: whether this host builds for its ABI in this run
    + cache: control-machine cache folder of this ABI (nothing happens when it has the wheel)
    + cache_sha256: a cached wheel is used only with this SHA-256 (``omero_web_ice_wheel_sha256``)

    **Examples:**

    .. code:: python

        fetch_or_build_wheel(
            name="Fetch or build the Ice wheel (one host per distro + Python ABI)",
            install=OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"),
            specs=["omero-web>=5.6.1", "whitenoise"],
            script=build_script(ctx),
            inputs=build_inputs((3, 11)),
            url=None,
            builder=True,
            cache="/home/deploy/.cache/omeroweb-deploy/wheels/debian-12-x86_64-cp311",
        )
    """
    if not builder or cached_wheel(cache, cache_sha256) \
            or fact_until_change(VenvReport, install=install, specs=specs)["ice"] == ICE_VERSION:
        return
    yield from _upload_inputs(inputs, url)
    yield script


@operation()
def keep_wheel(local_dir: str, cache_sha256: str | None = None):
    """
    Copy the wheel the builder made into the control machine's cache for the rest of the fleet,
    only with the SHA-256 the builder recorded when it made or fetched it.

    + local_dir: control-machine cache folder of this ABI
    + cache_sha256: nothing happens when the cache holds a wheel of this SHA-256 (else of any)

    **Examples:**

    .. code:: python

        keep_wheel(
            name="Keep the Ice wheel on the control machine",
            local_dir="/home/deploy/.cache/omeroweb-deploy/wheels/debian-12-x86_64-cp311",
        )
    """
    if cached_wheel(local_dir, cache_sha256):
        return
    found = host.get_fact(FindFiles, path=f"{REMOTE_WORKDIR}/wheelhouse", maxdepth=1, fname="zeroc_ice-3.6.5-*.whl")
    name = os.path.basename(sorted(found)[0]) if found else None
    if name and not WHEEL_NAME.fullmatch(name):
        # the name comes from the host: never let it choose a path on the control machine
        yield f"echo {q(f'Ice wheel name refused (not a zeroc_ice 3.6.5 wheel name): {name!r}')} >&2; exit 1"
        return
    if name:
        os.makedirs(local_dir, mode=0o700, exist_ok=True)
        final = os.path.join(local_dir, name)
        # Download beside the cache entry, check and record its SHA-256, then rename: an interrupted
        # or altered copy is never taken for a wheel, and a cached wheel changed later is not used.
        yield FileDownloadCommand(f"{REMOTE_WORKDIR}/wheelhouse/{name}", final + ".part")
        yield FileDownloadCommand(f"{REMOTE_WORKDIR}/wheelhouse/{name}.sha256", final + ".sha256.host")
        yield FunctionCommand(keep_in_cache, (final + ".part", final, final + ".sha256.host"), {})


def refused_wheel(wheel: str, sha256: str | None) -> str | None:
    """Why the control machine's wheel ``wheel`` is refused: its SHA-256 is not the data's ``sha256``."""
    got = file_sha256(wheel)
    if sha256 and got != sha256:
        return f"omeroweb-deploy: refusing the Ice wheel {wheel}: its SHA-256 is {got}, omero_web_ice_wheel_sha256 is {sha256}"
    return None


@operation()
def install_wheel(install: OmeroInstall, specs: list[str], script: str, cache: str, wheel: str | None = None,
                  with_omeroweb: bool = False, inputs: dict[str, str] | None = None, url: str | None = None,
                  sha256: str | None = None):
    """
    Install IcePy 3.6.5 into the venv unless it is importable already: from a local wheel
    or the control machine's cache (uploaded), else fetched or built on this host.

    + install: the OMERO.web install (its venv)
    + specs: what pip installs in the venv (the key of the shared venv report)
    + script: the fetch-or-build script used when no wheel is at hand
    + cache: control-machine cache folder of this ABI
    + wheel: a wheel file on the control machine, used first
    + with_omeroweb: on a fresh install (none of ``specs`` installed, no ``bin/omero``, no
      previous venv: nothing to upgrade or roll back), install ``specs`` in the same pip run;
      the OMERO.web section then finds them satisfied
    + inputs: the build's text files (``build_inputs``), for ``script``
    + url: the wheel URL ``script`` fetches first, if any
    + sha256: the SHA-256 the wheel must have (``omero_web_ice_wheel_sha256``): ``wheel`` and a
      cached wheel are used only with it

    **Examples:**

    .. code:: python

        install_wheel(
            name="Install IcePy 3.6.5",
            install=OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"),
            specs=["omero-web>=5.6.1", "whitenoise"],
            script=build_script(ctx),
            cache="/home/deploy/.cache/omeroweb-deploy/wheels/debian-12-x86_64-cp311",
            with_omeroweb=True,
            inputs=build_inputs((3, 11)),
        )
    """
    report = fact_until_change(VenvReport, install=install, specs=specs)
    if report["ice"] == ICE_VERSION:
        return
    # a fresh install: one pip resolve and one byte-compile instead of two (about a second)
    together = (with_omeroweb and report["unsatisfied"] and not report["pins"]
                and not existing(PathExists, [install.omero, install.previous_venv]))
    requirements = " ".join(q(a) for a in report["unsatisfied"])

    def pip(wheel_path: str) -> str:
        """``wheel_path``: quoted for the shell (or a glob)."""
        if together:
            return install.pip_install(f"--upgrade {requirements} {wheel_path}")
        return install.pip_install(f"--no-deps --force-reinstall {wheel_path}")

    refused = wheel and refused_wheel(wheel, sha256)
    if refused:
        yield f"echo {q(refused)} >&2; exit 1"
        return
    local = wheel or cached_wheel(cache, sha256)
    if local:
        remote = f"{REMOTE_WORKDIR}/upload/{os.path.basename(local)}"
        yield f"umask 077 && mkdir -p {q(REMOTE_WORKDIR)}/upload"
        yield FileUploadCommand(local, remote)
        # installed as root: only the exact bytes the control machine holds
        check = f"{file_sha256(local)}  {remote}"
        yield (f"echo {q(check)} | sha256sum -c --quiet - || "
               f"{{ echo {q('Ice wheel upload corrupted: ' + remote)} >&2; rm -f {q(remote)}; exit 1; }}")
        yield pip(q(remote))
        return
    yield from _upload_inputs(inputs or {}, url)
    yield script
    # installed as root: only the bytes whose SHA-256 root recorded when it built or fetched them
    wheelhouse = q(f"{REMOTE_WORKDIR}/wheelhouse")
    yield (f"( cd {wheelhouse} && sha256sum -c --quiet zeroc_ice-*.whl.sha256 ) || "
           f"{{ echo {q('omeroweb-deploy: refusing to install the Ice wheel in ' + REMOTE_WORKDIR + '/wheelhouse: it is not what was recorded when it was made')} >&2; exit 1; }}")
    yield pip(f"{wheelhouse}/zeroc_ice-*.whl")


@deploy("ZeroC IcePy 3.6.5")
def ice(ctx: Context | None = None) -> list:
    """IcePy in the venv, fetched or built once per ABI across the fleet. Returns change markers."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings = ctx.settings
    script, inputs, url = build_script(ctx), build_inputs(ctx.profile.python_version), wheel_url(ctx)
    cache, wheel = cache_dir(ctx), local_wheel(settings)
    # with omero_web_ice_source = wheel the wheel must be the data's; in auto mode the hash is the
    # prebuilt wheel's, checked when fetched (a wheel built when it cannot be fetched has another)
    cache_sha256 = settings.ice_wheel_sha256 if settings.ice_source == "wheel" else None
    shared = not wheel  # a wheel fetched or built once is shared with the fleet
    builder = False
    specs = list(ctx.pip_specs)
    installed_ice = fact_until_change(VenvReport, install=ctx.install, specs=specs)["ice"]
    if shared and not cached_wheel(cache, cache_sha256) and installed_ice != ICE_VERSION:
        # ABI key -> the host that fetches or builds the wheel for it in this run
        builder = run_registry("ice-builders").setdefault(ctx.profile.abi_key, host.name) == host.name
    if shared:
        fetch_or_build_wheel(
            name="Fetch or build the Ice wheel (one host per distro + Python ABI)",
            install=ctx.install,
            specs=specs,
            script=script,
            inputs=inputs,
            url=url,
            builder=builder,
            cache=cache,
            cache_sha256=cache_sha256,
        )
        keep_wheel(name="Keep the Ice wheel on the control machine", local_dir=cache, cache_sha256=cache_sha256)
    installed = install_wheel(name="Install IcePy 3.6.5", install=ctx.install, specs=specs, script=script, cache=cache,
                              wheel=wheel, with_omeroweb=ctx.selected("omeroweb"), inputs=inputs, url=url,
                              sha256=cache_sha256)
    return [installed]
