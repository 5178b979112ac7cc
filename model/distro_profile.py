"""
The distro profile: everything that differs between the distros the walkthroughs cover,
computed once per host from facts (never from inventory group names) and used by every
section. What differs is data, not branches: a ``Family`` value per distro family (``DEBIAN``,
``RHEL``), a ``Release`` row per release (``APT_RELEASES``, ``RPM_RELEASES``) that overrides its
family where it must. ``build_profile`` is pure: tests feed it simulated facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from model.settings import Settings

GLENCOE_X86_64 = (
    "https://github.com/glencoesoftware/zeroc-ice-py-linux-x86_64/releases/download/20240202/"
    "zeroc_ice-3.6.5-{tag}-{tag}-manylinux_2_28_x86_64.whl"
)
GLENCOE_AARCH64 = (
    "https://github.com/glencoesoftware/zeroc-ice-py-linux-aarch64/releases/download/20240620/"
    "zeroc_ice-3.6.5-{tag}-{tag}-manylinux_2_28_aarch64.whl"
)
#: Python versions with a Glencoe manylinux_2_28 wheel (glibc >= 2.28 on every distro using it).
GLENCOE_TAGS = ("cp38", "cp39", "cp310", "cp311", "cp312")

#: The wheels the walkthroughs name, per distro release (x86_64 only).
WALKTHROUGH_WHEELS = {
    ("centos", "7"): "https://github.com/ome/zeroc-ice-py-centos7/releases/download/0.2.1/"
    "zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl",
    ("centos", "8"): "https://github.com/ome/zeroc-ice-centos8/releases/download/0.0.1/"
    "zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl",
    ("ubuntu", "18.04"): "https://github.com/ome/zeroc-ice-ubuntu1804/releases/download/0.2.0/"
    "zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl",
    ("ubuntu", "20.04"): "https://github.com/ome/zeroc-ice-ubuntu2004/releases/download/0.2.0/"
    "zeroc_ice-3.6.5-cp38-cp38-linux_x86_64.whl",
    ("debian", "9"): "https://github.com/ome/zeroc-ice-py-debian9/releases/download/0.2.0/"
    "zeroc_ice-3.6.5-cp35-cp35m-linux_x86_64.whl",
    ("debian", "10"): "https://github.com/ome/zeroc-ice-debian10/releases/download/0.1.0/"
    "zeroc_ice-3.6.5-cp37-cp37m-linux_x86_64.whl",
}


@dataclass(frozen=True)
class Family:
    """What every release of a distro family has in common, as data (one value per family)."""

    name: str  # "debian" | "rhel"
    package_manager: str  # "apt" | "dnf" (a release may say otherwise)
    packages_before_python: tuple[str, ...]  # what OMERO.web needs besides Python, in the order installed
    packages_after_python: tuple[str, ...]
    build_packages: tuple[str, ...]  # compiler and headers for the Ice build, besides the Python headers
    nginx_disable_paths: tuple[tuple[str, str], ...]  # the default site, (path, "remove" | "rename")
    nginx_user: str
    initd_tool: str  # registers init.d scripts for boot
    ca_dir: str
    ca_update: str
    ca_bundle: str
    selinux_packages: tuple[str, ...]
    redis_package: str
    redis_conf: str
    cron_package: str
    cron_service: str


DEBIAN = Family(
    name="debian", package_manager="apt", packages_before_python=("unzip",),
    packages_after_python=("nginx",),
    build_packages=("g++", "make", "libssl-dev", "libbz2-dev"),
    nginx_disable_paths=(("/etc/nginx/sites-enabled/default", "remove"),), nginx_user="www-data",
    initd_tool="update-rc.d", ca_dir="/usr/local/share/ca-certificates", ca_update="update-ca-certificates",
    ca_bundle="/etc/ssl/certs/ca-certificates.crt", selinux_packages=(), redis_package="redis-server",
    redis_conf="/etc/redis/redis.conf", cron_package="cron", cron_service="cron",
)
RHEL = Family(
    name="rhel", package_manager="dnf", packages_before_python=("unzip",),
    packages_after_python=("nginx",),
    build_packages=("gcc-c++", "make", "openssl-devel", "bzip2-devel"),
    nginx_disable_paths=(("/etc/nginx/conf.d/default.conf", "rename"),), nginx_user="nginx",
    initd_tool="chkconfig", ca_dir="/etc/pki/ca-trust/source/anchors", ca_update="update-ca-trust extract",
    ca_bundle="/etc/pki/tls/certs/ca-bundle.crt", selinux_packages=("policycoreutils-python-utils",),
    redis_package="redis",  # EPEL on 7, AppStream on 8 and 9
    # Redis 6 moved it into a folder of its own (AppStream 9; 8's redis:5 module and EPEL 7 keep /etc)
    redis_conf="/etc/redis/redis.conf", cron_package="cronie", cron_service="crond",
)


@dataclass(frozen=True)
class Release:
    """What one distro release needs; the tables below are the only place such facts live. A
    field left None takes its family's value."""

    python: str  # interpreter that creates the venv
    python_version: tuple[int, int]
    python_packages: tuple[str, ...]  # interpreter + venv support
    python_dev_package: str
    remove_sites_available_default: bool = False  # the Debian 9 walkthrough
    epel: bool = False
    package_manager: Optional[str] = None
    selinux_packages: Optional[tuple[str, ...]] = None
    redis_conf: Optional[str] = None


APT_RELEASES: dict[tuple[str, str], Release] = {
    ("debian", "9"): Release("/usr/bin/python3", (3, 5), ("python3", "python3-venv"), "python3-dev", True),
    # Debian 10's walkthrough only removes sites-enabled/default (Debian 9's also renames sites-available's)
    ("debian", "10"): Release("/usr/bin/python3", (3, 7), ("python3", "python3-venv"), "python3-dev"),
    ("debian", "11"): Release("/usr/bin/python3", (3, 9), ("python3", "python3-venv"), "python3-dev"),
    ("debian", "12"): Release("/usr/bin/python3", (3, 11), ("python3", "python3-venv"), "python3-dev"),
    ("debian", "13"): Release("/usr/bin/python3", (3, 13), ("python3", "python3-venv"), "python3-dev"),
    ("ubuntu", "18.04"): Release("/usr/bin/python3", (3, 6), ("python3", "python3-venv"), "python3-dev"),
    ("ubuntu", "20.04"): Release("/usr/bin/python3", (3, 8), ("python3", "python3-venv"), "python3-dev"),
    ("ubuntu", "22.04"): Release("/usr/bin/python3", (3, 10), ("python3", "python3-venv"), "python3-dev"),
    ("ubuntu", "24.04"): Release("/usr/bin/python3", (3, 12), ("python3", "python3-venv"), "python3-dev"),
}
_REDIS_IN_ETC = "/etc/redis.conf"
_EL8_PY311 = Release("/usr/bin/python3.11", (3, 11), ("python3.11",), "python3.11-devel", epel=True,
                     redis_conf=_REDIS_IN_ETC)
_EL9_PY311 = Release("/usr/bin/python3.11", (3, 11), ("python3.11",), "python3.11-devel", epel=True)
RPM_RELEASES: dict[tuple[str, str], Release] = {
    ("centos", "7"): Release("/usr/bin/python3", (3, 6), ("python3",), "python3-devel", epel=True,
                             package_manager="yum", selinux_packages=("policycoreutils-python",),
                             redis_conf=_REDIS_IN_ETC),
    ("centos", "8"): Release("/usr/bin/python3", (3, 6), ("python3",), "python3-devel", epel=True,
                             redis_conf=_REDIS_IN_ETC),
    # The default python3 of EL 8 (3.6) and EL 9 (3.9) is older than current OMERO.web supports.
    ("rocky", "8"): _EL8_PY311,
    ("rocky", "9"): _EL9_PY311,
    ("almalinux", "8"): _EL8_PY311,
    ("almalinux", "9"): _EL9_PY311,
    ("rhel", "8"): _EL8_PY311,
    ("rhel", "9"): _EL9_PY311,
}
SUPPORTED_ARCHS = ("x86_64", "aarch64")


class UnsupportedHost(RuntimeError):
    """The host is not one this project supports; raised before any change."""


@dataclass(frozen=True)
class HostFacts:
    """The raw facts a profile is built from (see ``facts.HostInventory``)."""

    os_release: Mapping[str, str]
    arch: str
    pid1: str
    cpus: int
    binaries: frozenset[str] = frozenset()
    selinux: Optional[str] = None  # getenforce output, None when absent
    python_versions: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    systemd_version: Optional[int] = None  # ``systemctl --version``'s release number, None without it
    openssl_version: Optional[tuple[int, int]] = None  # NGINX's OpenSSL (else the newest libssl), None unknown


@dataclass(frozen=True)
class DistroProfile:
    distro: str  # os-release ID
    version: str  # major version (or YY.MM on Ubuntu)
    family: str  # "debian" | "rhel"
    arch: str
    cpus: int
    package_manager: str  # "apt" | "dnf" | "yum"
    packages: tuple[str, ...]
    python: str
    python_version: tuple[int, int]
    ice_build_packages: tuple[str, ...]
    ice_default_wheel: Optional[str]
    service_manager: str  # "systemd" | "initd"
    initd_tool: str  # registers init.d scripts for boot: "update-rc.d" | "chkconfig"
    nginx_site: str
    nginx_disable_paths: tuple[tuple[str, str], ...]  # (path, action) action: "remove" | "rename"
    nginx_user: str
    ca_dir: str
    ca_update: str
    ca_bundle: str
    selinux_enforcing: bool
    selinux_packages: tuple[str, ...]
    redis_package: str  # the distro's Redis server
    redis_service: str
    redis_conf: str  # the Redis server's own configuration file (it includes the deploy's)
    redis_user: str  # the account (and group) the Redis server runs as
    cron_package: str
    cron_service: str
    systemd_version: Optional[int] = None  # the host's systemd release (unit sandboxing), None without it
    openssl_version: Optional[tuple[int, int]] = None  # the OpenSSL NGINX uses (TLS curves), None unknown

    @property
    def label(self) -> str:
        return f"{self.distro}-{self.version}"

    @property
    def python_tag(self) -> str:
        return "cp%d%d" % self.python_version

    @property
    def abi_key(self) -> str:
        """What an Ice wheel built here is valid for: distro release, architecture and Python ABI."""
        return f"{self.label}-{self.arch}-{self.python_tag}"


def _release_key(os_release: Mapping[str, str]) -> tuple[str, str]:
    distro = os_release.get("ID", "").strip().lower()
    version = os_release.get("VERSION_ID", "").strip()
    if distro != "ubuntu":
        version = version.split(".")[0]
    return distro, version


def supported_releases() -> list[str]:
    return [f"{d} {v}" for d, v in [*APT_RELEASES, *RPM_RELEASES]]


def build_profile(facts: HostFacts, settings: Settings) -> DistroProfile:
    """The profile of one host, or UnsupportedHost naming what was found and what is supported."""
    key = _release_key(facts.os_release)
    found = facts.os_release.get("PRETTY_NAME") or " ".join(key) or "no /etc/os-release"
    if key in APT_RELEASES:
        release, family = APT_RELEASES[key], DEBIAN
    elif key in RPM_RELEASES:
        release, family = RPM_RELEASES[key], RHEL
    else:
        raise UnsupportedHost(
            f"unsupported distribution: found {found!r}; supported: {', '.join(supported_releases())}"
        )
    if facts.arch not in SUPPORTED_ARCHS:
        raise UnsupportedHost(
            f"unsupported architecture {facts.arch!r} on {found}; supported: {', '.join(SUPPORTED_ARCHS)}"
        )

    python = settings.python or release.python
    python_version = facts.python_versions.get(python)
    if python_version is None:
        if settings.python:
            raise UnsupportedHost(
                f"omero_web_python = {settings.python!r} does not exist on the host or is not a Python 3 "
                "interpreter: install it first or remove the key to use the distro's"
            )
        python_version = release.python_version

    service_manager = _service_manager(facts, settings)
    distro, version = key
    disable = family.nginx_disable_paths
    if release.remove_sites_available_default:
        disable += (("/etc/nginx/sites-available/default", "rename"),)
    packages = (*(("epel-release",) if release.epel else ()), *family.packages_before_python,
                *release.python_packages, *family.packages_after_python)
    build_packages = (*family.build_packages[:2], release.python_dev_package, *family.build_packages[2:])

    return DistroProfile(
        distro=distro,
        version=version,
        family=family.name,
        arch=facts.arch,
        cpus=max(1, facts.cpus),
        package_manager=release.package_manager or family.package_manager,
        # tzdata: Django (TIME_ZONE, Europe/London by default) needs the zone database, which
        # minimal images (Ubuntu's among them) leave out; OMERO.web answers 500 without it
        packages=("ca-certificates", "tzdata", *packages),
        python=python,
        python_version=python_version,
        ice_build_packages=build_packages,
        ice_default_wheel=_default_wheel(key, facts.arch, "cp%d%d" % python_version),
        service_manager=service_manager,
        initd_tool=family.initd_tool,
        nginx_site="/etc/nginx/conf.d/omeroweb.conf",
        nginx_disable_paths=disable,
        nginx_user=family.nginx_user,
        ca_dir=family.ca_dir,
        ca_update=family.ca_update,
        ca_bundle=family.ca_bundle,
        selinux_enforcing=facts.selinux not in (None, "", "Disabled"),
        selinux_packages=family.selinux_packages if release.selinux_packages is None else release.selinux_packages,
        redis_package=family.redis_package,
        redis_service=family.redis_package,
        redis_conf=release.redis_conf or family.redis_conf,
        redis_user="redis",
        cron_package=family.cron_package,
        cron_service=family.cron_service,
        systemd_version=facts.systemd_version,
        openssl_version=facts.openssl_version,
    )


def _service_manager(facts: HostFacts, settings: Settings) -> str:
    systemd_runs = facts.pid1 == "systemd"
    if settings.service_manager == "systemd" and not systemd_runs:
        raise UnsupportedHost(
            f"omero_web_service_manager = 'systemd' but PID 1 is {facts.pid1!r}, not systemd: "
            "use 'auto' or 'initd'"
        )
    if settings.service_manager == "initd" or not systemd_runs:
        return "initd"
    return "systemd"


def _default_wheel(key: tuple[str, str], arch: str, tag: str) -> Optional[str]:
    if key in WALKTHROUGH_WHEELS and arch == "x86_64" and f"-{tag}-" in WALKTHROUGH_WHEELS[key]:
        return WALKTHROUGH_WHEELS[key]
    if tag in GLENCOE_TAGS and key not in (("centos", "7"), ("ubuntu", "18.04"), ("debian", "9")):
        # manylinux_2_28 needs glibc >= 2.28: every release here but the three above.
        return (GLENCOE_X86_64 if arch == "x86_64" else GLENCOE_AARCH64).format(tag=tag)
    return None
