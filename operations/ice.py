"""
Walkthrough "Install ZeroC IcePy 3.6": three sources, chosen by ``omero_web_ice_source``.

- ``wheel``: ``omero_web_ice_wheel``, a URL or a local ``.whl`` uploaded from the control machine.
- ``auto``: the distro's prebuilt wheel (the walkthrough's URL, or the current prebuilt
  manylinux wheel for the host's Python); when it cannot be fetched, ``build``.
- ``build``: the PyPI sdist, patched for the host's Python (``files/ice/patch_zeroc_ice.py``),
  with the compiler and headers it needs installed for the build and removed after it.

A fleet fetches or builds once per distro release + architecture + Python ABI: the first
host of each ABI planned in this run is its builder; the wheel goes into the control
machine's cache (``omero_web_ice_cache_dir``) and every other host of that ABI, in this
run and later ones, gets it uploaded from there.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import FileDownloadCommand, FileUploadCommand, FunctionCommand, deploy, operation
from pyinfra.facts.files import FindFiles

from .context import Context, current, run_registry
from .facts import PathExists, VenvReport, q
from .host_state import existing, fact_until_change
from .install import OmeroInstall

TAGS = ("ice",)
ICE_VERSION = "3.6.5"
ICE_SDIST = f"zeroc-ice=={ICE_VERSION}"
PATCH_SCRIPT = Path(__file__).resolve().parent.parent / "files" / "ice" / "patch_zeroc_ice.py"
REMOTE_WORKDIR = "/var/cache/omeroweb-deploy/ice"

#: The only wheel names taken from a host (the name is the host's word: never a path).
WHEEL_NAME = re.compile(r"zeroc_ice-3\.6\.5-cp\d{2,3}-(cp\d{2,3}[dmu]*|abi3|none)-[A-Za-z0-9_.]+\.whl")


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


def cached_wheel(cache: str) -> str | None:
    """The wheel in ``cache`` (one ABI's folder) whose content still matches its recorded SHA-256 (else None)."""
    for found in sorted(glob.glob(os.path.join(cache, "zeroc_ice-3.6.5-*.whl"))):
        if WHEEL_NAME.fullmatch(os.path.basename(found)) and recorded_sha256(found) == file_sha256(found):
            return found
        logger.warning(f"Ice wheel cache: ignoring {found}: no SHA-256 recorded for it, or its content changed")
    return None


def keep_in_cache(part: str, final: str) -> None:
    """Record the downloaded wheel's SHA-256 beside it, then give it its final name."""
    with open(final + ".sha256.part", "w") as handle:
        handle.write(file_sha256(part) + "\n")
    os.replace(final + ".sha256.part", final + ".sha256")
    os.replace(part, final)


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


def build_script(ctx: Context) -> str:
    """Shell script that leaves one Ice wheel in the remote wheelhouse: fetched, or built from the sdist."""
    python = q(ctx.install.python)
    work = q(REMOTE_WORKDIR)
    steps = (
        f"rm -rf {work}/src && mkdir -p {work}/src && "
        f"{python} -m pip download --no-deps --no-binary :all: {q(ICE_SDIST)} -d {work}/src && "
        f"tar -xzf {work}/src/zeroc-ice-{ICE_VERSION}.tar.gz -C {work}/src && "
        f"{python} {work}/patch_zeroc_ice.py {work}/src/zeroc-ice-{ICE_VERSION} && "
        # PIP_USE_PEP517: pip 21 (the last for Python 3.6) otherwise needs the wheel package; newer pips ignore it.
        # The linker leaves out the debug information (every setuptools appends LDFLAGS; CFLAGS would replace
        # Python's -O and -DNDEBUG in recent ones): a 3 MB wheel instead of 30 MB, an 8.8 MB IcePy module
        # instead of 86 MB, that every host of the ABI is sent, unpacks and keeps.
        f"LDFLAGS=-Wl,--strip-debug PIP_USE_PEP517=1 {python} -m pip wheel --no-deps "
        f"{work}/src/zeroc-ice-{ICE_VERSION} -w {work}/wheelhouse"
    )
    build = build_with_packages(ctx.profile.package_manager, ctx.profile.ice_build_packages, steps)
    url = wheel_url(ctx)
    if url:
        fetch = f"{python} -m pip download --no-deps --retries 1 --timeout 20 {q(url)} -d {work}/wheelhouse"
        if ctx.settings.ice_source == "wheel":
            build = fetch  # an explicit wheel must not be silently replaced by a build
        else:
            build = f"{{ {fetch} || {{ echo 'prebuilt Ice wheel unavailable: building from the sdist' >&2; {build}; }}; }}"
    return f"set -e; mkdir -p {work}/wheelhouse; rm -f {work}/wheelhouse/zeroc_ice-*.whl; {build}"


def _upload_patcher():
    yield f"umask 077 && mkdir -p {q(REMOTE_WORKDIR)}"
    yield FileUploadCommand(str(PATCH_SCRIPT), f"{REMOTE_WORKDIR}/patch_zeroc_ice.py")


@operation()
def fetch_or_build_wheel(install: OmeroInstall, specs: list[str], script: str, builder: bool, cache: str):
    """
    On the builder host of an ABI, leave an Ice wheel in the remote wheelhouse.

    + install: the OMERO.web install (nothing happens when its venv has Ice)
    + specs: what pip installs in the venv (the key of the shared venv report)
    + script: the fetch-or-build script (``build_script``)
    + builder: whether this host builds for its ABI in this run
    + cache: control-machine cache folder of this ABI (nothing happens when it has the wheel)
    """
    if not builder or cached_wheel(cache) or fact_until_change(VenvReport, install=install, specs=specs)["ice"] == ICE_VERSION:
        return
    yield from _upload_patcher()
    yield script


@operation()
def keep_wheel(local_dir: str):
    """
    Copy the wheel the builder made into the control machine's cache for the rest of the fleet.

    + local_dir: control-machine cache folder of this ABI
    """
    if cached_wheel(local_dir):
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
        # Download beside the cache entry, record its SHA-256, then rename: an interrupted
        # copy is never taken for a wheel, and a cached wheel changed later is not used.
        yield FileDownloadCommand(f"{REMOTE_WORKDIR}/wheelhouse/{name}", final + ".part")
        yield FunctionCommand(keep_in_cache, (final + ".part", final), {})


@operation()
def install_wheel(install: OmeroInstall, specs: list[str], script: str, cache: str, wheel: str | None = None,
                  with_omeroweb: bool = False):
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

    local = wheel or cached_wheel(cache)
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
    yield from _upload_patcher()
    yield script
    yield pip(f"{q(REMOTE_WORKDIR)}/wheelhouse/zeroc_ice-*.whl")


@deploy("ZeroC IcePy 3.6.5")
def ice(ctx: Context | None = None) -> list:
    """IcePy in the venv, fetched or built once per ABI across the fleet. Returns change markers."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings = ctx.settings
    script = build_script(ctx)
    cache, wheel = cache_dir(ctx), local_wheel(settings)
    shared = not wheel  # a wheel fetched or built once is shared with the fleet
    builder = False
    specs = list(ctx.pip_specs)
    installed_ice = fact_until_change(VenvReport, install=ctx.install, specs=specs)["ice"]
    if shared and not cached_wheel(cache) and installed_ice != ICE_VERSION:
        # ABI key -> the host that fetches or builds the wheel for it in this run
        builder = run_registry("ice-builders").setdefault(ctx.profile.abi_key, host.name) == host.name
    if shared:
        fetch_or_build_wheel(
            name="Fetch or build the Ice wheel (one host per distro + Python ABI)",
            install=ctx.install,
            specs=specs,
            script=script,
            builder=builder,
            cache=cache,
        )
        keep_wheel(name="Keep the Ice wheel on the control machine", local_dir=cache)
    installed = install_wheel(name="Install IcePy 3.6.5", install=ctx.install, specs=specs, script=script, cache=cache,
                              wheel=wheel, with_omeroweb=ctx.selected("omeroweb"))
    return [installed]
