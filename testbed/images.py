"""Minimal Debian and Ubuntu *server* images for test targets, built with debootstrap and
``docker import``.

The images can boot systemd and accept SSH (root, key only) but contain nothing the deploy
installs itself (no python3, nginx, curl, sudo or tzdata). An image's tag carries a hash of its
recipe, so an existing tag is reused and a changed recipe builds a new image.

Ubuntu suites come from Ubuntu's own archive, checked with Ubuntu's archive keyring. That keyring
is taken from Debian's ``ubuntu-keyring`` package (in Debian 13's archive): the package list is
checked against Debian's signed release file (``gpgv`` with this machine's Debian archive
keyring) and the package against the list's SHA-256, before anything of it is used.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors

from .cache import cache_dir, file_lock
from .engine import Log, apt_install, docker_client

RECIPE_VERSION = 1  # bump when _post_steps or the build steps change
DEBIAN_RELEASES = ("bullseye", "bookworm", "trixie")
UBUNTU_RELEASES = ("bionic", "focal", "jammy", "noble")
RELEASES = DEBIAN_RELEASES + UBUNTU_RELEASES
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
UBUNTU_SECURITY_MIRROR = "http://security.ubuntu.com/ubuntu"
UBUNTU_COMPONENTS = "main restricted universe multiverse"  # a fresh Ubuntu server's sources
#: debootstrap's script per Ubuntu suite where bookworm's debootstrap has none of that name.
UBUNTU_SCRIPTS = {"noble": "gutsy"}
#: Where the Ubuntu archive keyring comes from: Debian 13's ``ubuntu-keyring`` package.
KEYRING_SUITE = "trixie"
KEYRING_PACKAGE = "ubuntu-keyring"
KEYRING_FILE = "usr/share/keyrings/ubuntu-archive-keyring.gpg"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
IMAGE_REPOSITORY = "omeroweb-deploy/debian"
UBUNTU_IMAGE_REPOSITORY = "omeroweb-deploy/ubuntu"
IMAGE_LABEL = "omeroweb-deploy.image"
RELEASE_LABEL = "omeroweb-deploy.release"

# Enough for systemd to reach multi-user in Docker and for sshd to run; nothing the deploy adds.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "ca-certificates",
    "iproute2",
    "procps",
)
# Files that apt, debootstrap or the build host leave behind and a fresh image must not carry.
REMOVED_PATHS = (
    "etc/resolv.conf",  # the build host's; Docker mounts its own
    "var/lib/dbus/machine-id",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*_*",  # debootstrap's lists: `apt-get update` first, as on fresh images
)


def is_ubuntu(release: str) -> bool:
    return release in UBUNTU_RELEASES


#: Per archive: mirror, security mirror, components, keyring, deb822 sources file, and the
#: releases whose installer writes deb822 sources (since Debian 13 and Ubuntu 24.04).
_ARCHIVES = {
    "debian": (MIRROR, SECURITY_MIRROR, "main", "debian-archive-keyring.gpg", "debian.sources", ("trixie",)),
    "ubuntu": (UBUNTU_MIRROR, UBUNTU_SECURITY_MIRROR, UBUNTU_COMPONENTS, "ubuntu-archive-keyring.gpg",
               "ubuntu.sources", ("noble",)),
}


def _archive(release: str) -> tuple:
    return _ARCHIVES["ubuntu" if is_ubuntu(release) else "debian"]


def _mirror(release: str) -> str:
    return _archive(release)[0]


def _apt_sources(release: str) -> tuple[str, str]:
    """Return (path in rootfs, content) of the APT sources of a fresh install of ``release``."""
    mirror, security, components, keyring, sources_file, deb822 = _archive(release)
    if release in deb822:
        stanza = ("Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: " + components
                  + f"\nSigned-By: /usr/share/keyrings/{keyring}\n")
        content = (stanza.format(uri=mirror, suites=f"{release} {release}-updates") + "\n"
                   + stanza.format(uri=security, suites=f"{release}-security"))
        return f"etc/apt/sources.list.d/{sources_file}", content
    return "etc/apt/sources.list", (
        f"deb {mirror} {release} {components}\n"
        f"deb {mirror} {release}-updates {components}\n"
        f"deb {security} {release}-security {components}\n"
    )


def _image_changes(release: str) -> list[str]:
    return [
        "ENV container=docker",  # systemd's container detection (bullseye's 247 says kvm otherwise)
        'CMD ["/sbin/init"]',
        f"LABEL {IMAGE_LABEL}=1 {RELEASE_LABEL}={release}",
    ]


def recipe(release: str) -> dict[str, object]:
    """Everything that determines an image's content; its hash is part of the tag."""
    if release not in RELEASES:
        raise ValueError(f"Unknown release {release!r}; expected one of {', '.join(RELEASES)}")
    return {
        "version": RECIPE_VERSION,
        "release": release,
        "mirror": _mirror(release),
        "packages": PACKAGES,
        "sources": _apt_sources(release),
        "removed": REMOVED_PATHS,
        "changes": _image_changes(release),
    }


def image_tag(release: str) -> str:
    """Return ``omeroweb-deploy/<debian|ubuntu>:<release>-<recipe hash>``."""
    digest = hashlib.sha256(json.dumps(recipe(release), sort_keys=True).encode()).hexdigest()
    repository = UBUNTU_IMAGE_REPOSITORY if is_ubuntu(release) else IMAGE_REPOSITORY
    return f"{repository}:{release}-{digest[:12]}"


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _ensure_host_tools(log: Log) -> None:
    # zstd: Ubuntu's packages since 21.10 are zstd-compressed; gpgv checks the keyring's origin
    tools = ("debootstrap", "tar", "zstd", "gpgv", "dpkg-deb")
    if any(shutil.which(tool) is None for tool in tools) or not Path(DEBIAN_KEYRING).exists():
        apt_install(["debootstrap", "debian-archive-keyring", "tar", "zstd", "gpgv"], log)


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def _checked(data: bytes, sha256: str, what: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise RuntimeError(f"{what}: SHA-256 {actual}, the signed list says {sha256}")
    return data


def _verified_release_file(suite: str, work: Path) -> str:
    """Debian's ``InRelease`` of ``suite``, its signature checked with the Debian keyring."""
    signed = work / "InRelease"
    signed.write_bytes(_download(f"{MIRROR}/dists/{suite}/InRelease"))
    plain = work / "Release"
    result = subprocess.run(["gpgv", "--keyring", DEBIAN_KEYRING, "--output", str(plain), str(signed)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"Debian's {suite} InRelease failed its signature check:\n{result.stderr}")
    return plain.read_text()


def _sha256_entry(release_text: str, name: str) -> str:
    in_sha256 = False
    for line in release_text.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
        elif in_sha256 and line.split()[-1] == name:
            return line.split()[0]
    raise RuntimeError(f"{name} is not in the signed release file's SHA256 list")


def _package_stanza(packages_text: str, package: str) -> dict[str, str]:
    for stanza in packages_text.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, flags=re.M))
        if fields.get("Package") == package:
            return fields
    raise RuntimeError(f"{package} is not in the signed package list")


def ubuntu_keyring(log: Log = print) -> Path:
    """Return the path of Ubuntu's archive keyring, fetched and checked once (then cached)."""
    keyring = cache_dir() / "keyrings" / Path(KEYRING_FILE).name
    with file_lock("ubuntu-keyring"):
        if keyring.exists():
            return keyring
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            release_text = _verified_release_file(KEYRING_SUITE, work)
            # the machine's own architecture's list, as apt reads it (it names arch-all packages too)
            arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                  text=True, check=True).stdout.strip()
            index = f"main/binary-{arch}/Packages.xz"
            packages = _checked(_download(f"{MIRROR}/dists/{KEYRING_SUITE}/{index}"),
                                _sha256_entry(release_text, index), index)
            stanza = _package_stanza(lzma.decompress(packages).decode(), KEYRING_PACKAGE)
            deb = work / "keyring.deb"
            deb.write_bytes(_checked(_download(f"{MIRROR}/{stanza['Filename']}"), stanza["SHA256"],
                                     stanza["Filename"]))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
            keyring.parent.mkdir(exist_ok=True)
            shutil.copyfile(work / "root" / KEYRING_FILE, keyring.with_suffix(".tmp"))
            keyring.with_suffix(".tmp").rename(keyring)
        log(f"keyring: {keyring} from Debian {KEYRING_SUITE}'s {KEYRING_PACKAGE} {stanza['Version']}")
    return keyring


def _remove_tree(path: Path) -> None:
    """Delete a build tree, first unmounting anything a crashed debootstrap left mounted in it."""
    if not path.exists():
        return
    root = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(root + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(path)


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _debootstrap(release: str, rootfs: Path, log_path: Path) -> None:
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    if is_ubuntu(release):
        command.append(f"--keyring={ubuntu_keyring()}")
    command += [release, str(rootfs), _mirror(release)]
    if release in UBUNTU_SCRIPTS:
        command.append(f"/usr/share/debootstrap/scripts/{UBUNTU_SCRIPTS[release]}")
    with open(log_path, "w") as log_file:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        inner_log = rootfs / "debootstrap" / "debootstrap.log"
        raise RuntimeError(
            f"debootstrap {release} failed (exit {result.returncode}); see {log_path}:\n"
            f"{_tail(log_path)}\n--- {inner_log}:\n{_tail(inner_log)}"
        )


def _post_steps(release: str, rootfs: Path) -> None:
    """Turn the debootstrapped tree into a fresh server: apt sources, machine-id, no caches."""
    for pattern in REMOVED_PATHS:
        for path in rootfs.glob(pattern):
            path.unlink()
    sources_path, sources = _apt_sources(release)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / sources_path).write_text(sources)
    (rootfs / "etc/hostname").write_text("localhost\n")
    # Empty machine-id: systemd generates one per container at boot.
    (rootfs / "etc/machine-id").write_text("")


def _import(client: docker.DockerClient, rootfs: Path, release: str, tag: str) -> None:
    repository, version = tag.rsplit(":", 1)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                           stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        client.api.import_image_from_data(tar.stdout, repository=repository, tag=version,
                                          changes=_image_changes(release))
    finally:
        tar.stdout.close()
        tar.wait()
    if tar.returncode != 0 or not _image_exists(client, tag):
        raise RuntimeError(f"Importing {rootfs} as {tag} failed (tar exit {tar.returncode})")


def ensure_image(release: str, log: Log = print) -> str:
    """Return the tag of the image for ``release``, building it first if the engine lacks it."""
    tag = image_tag(release)
    client = docker_client(log)
    if _image_exists(client, tag):
        return tag
    _ensure_host_tools(log)
    with file_lock(f"image-{release}"):
        if _image_exists(client, tag):  # another process built it while we waited
            return tag
        build_dir = cache_dir() / "build"
        build_dir.mkdir(exist_ok=True)
        rootfs = build_dir / tag.rsplit(":", 1)[1]
        log_path = build_dir / f"{release}.log"
        for leftover in build_dir.glob(f"{release}-*"):  # from crashed builds
            _remove_tree(leftover)
        log(f"image {tag}: debootstrap {release} (log: {log_path})")
        started = time.monotonic()
        try:
            _debootstrap(release, rootfs, log_path)
            _post_steps(release, rootfs)
            _import(client, rootfs, release, tag)
        finally:
            _remove_tree(rootfs)
        log(f"image {tag}: built in {time.monotonic() - started:.0f}s")
    return tag


def ensure_images(releases: Iterable[str] = RELEASES, log: Log = print) -> dict[str, str]:
    """Ensure several images, building missing ones in parallel; return ``{release: tag}``."""
    wanted = list(dict.fromkeys(releases))
    client = docker_client(log)  # start the engine and install host tools before the threads
    missing = [release for release in wanted if not _image_exists(client, image_tag(release))]
    if missing:
        _ensure_host_tools(log)
    if any(is_ubuntu(release) for release in missing):
        ubuntu_keyring(log)  # once, before the builds that all need it
    with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
        tags = pool.map(lambda release: ensure_image(release, log), wanted)
        return dict(zip(wanted, tags))
