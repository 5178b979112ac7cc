"""The distro profile is a pure function of facts: simulated facts for every supported distro."""

import pytest

from model.distro_profile import HostFacts, UnsupportedHost, build_profile
from model.settings import validate

DEFAULTS = validate({})


def facts(distro, version, *, pid1="systemd", arch="x86_64", selinux=None, pythons=None, pretty=None):
    return HostFacts(
        os_release={"ID": distro, "VERSION_ID": version, "PRETTY_NAME": pretty or f"{distro} {version}"},
        arch=arch,
        pid1=pid1,
        cpus=4,
        selinux=selinux,
        python_versions=pythons or {},
    )


@pytest.mark.parametrize(
    "distro, version, manager, python, tag, family",
    [
        ("centos", "7", "yum", "/usr/bin/python3", "cp36", "rhel"),
        ("centos", "8", "dnf", "/usr/bin/python3", "cp36", "rhel"),
        ("rocky", "8.9", "dnf", "/usr/bin/python3.11", "cp311", "rhel"),
        ("rocky", "9.3", "dnf", "/usr/bin/python3.11", "cp311", "rhel"),
        ("almalinux", "9.4", "dnf", "/usr/bin/python3.11", "cp311", "rhel"),
        ("ubuntu", "18.04", "apt", "/usr/bin/python3", "cp36", "debian"),
        ("ubuntu", "20.04", "apt", "/usr/bin/python3", "cp38", "debian"),
        ("ubuntu", "22.04", "apt", "/usr/bin/python3", "cp310", "debian"),
        ("ubuntu", "24.04", "apt", "/usr/bin/python3", "cp312", "debian"),
        ("debian", "9", "apt", "/usr/bin/python3", "cp35", "debian"),
        ("debian", "10", "apt", "/usr/bin/python3", "cp37", "debian"),
        ("debian", "11", "apt", "/usr/bin/python3", "cp39", "debian"),
        ("debian", "12", "apt", "/usr/bin/python3", "cp311", "debian"),
        ("debian", "13", "apt", "/usr/bin/python3", "cp313", "debian"),
    ],
)
def test_release_table(distro, version, manager, python, tag, family):
    profile = build_profile(facts(distro, version), DEFAULTS)
    assert profile.package_manager == manager
    assert profile.python == python
    assert profile.python_tag == tag
    assert profile.family == family
    assert "nginx" in profile.packages and "unzip" in profile.packages
    assert profile.nginx_site == "/etc/nginx/conf.d/omeroweb.conf"


def test_walkthrough_wheel_urls_for_walkthrough_distros():
    assert build_profile(facts("centos", "7"), DEFAULTS).ice_default_wheel.endswith("cp36-cp36m-linux_x86_64.whl")
    assert "zeroc-ice-ubuntu2004" in build_profile(facts("ubuntu", "20.04"), DEFAULTS).ice_default_wheel
    assert "zeroc-ice-py-debian9" in build_profile(facts("debian", "9"), DEFAULTS).ice_default_wheel
    assert "zeroc-ice-debian10" in build_profile(facts("debian", "10"), DEFAULTS).ice_default_wheel


def test_newer_distros_get_manylinux_wheel_or_build():
    assert build_profile(facts("debian", "12"), DEFAULTS).ice_default_wheel.endswith(
        "cp311-cp311-manylinux_2_28_x86_64.whl"
    )
    assert "aarch64" in build_profile(facts("ubuntu", "24.04", arch="aarch64"), DEFAULTS).ice_default_wheel
    # No prebuilt wheel for Python 3.13: built from the sdist.
    assert build_profile(facts("debian", "13"), DEFAULTS).ice_default_wheel is None


def test_default_site_removal_per_family():
    assert build_profile(facts("debian", "12"), DEFAULTS).nginx_disable_paths == (
        ("/etc/nginx/sites-enabled/default", "remove"),
    )
    assert ("/etc/nginx/sites-available/default", "rename") in build_profile(
        facts("debian", "9"), DEFAULTS
    ).nginx_disable_paths
    assert build_profile(facts("rocky", "9"), DEFAULTS).nginx_disable_paths == (
        ("/etc/nginx/conf.d/default.conf", "rename"),
    )


def test_service_manager_follows_pid1_not_systemctl():
    assert build_profile(facts("debian", "12", pid1="systemd"), DEFAULTS).service_manager == "systemd"
    assert build_profile(facts("debian", "12", pid1="sleep"), DEFAULTS).service_manager == "initd"
    forced = validate({"omero_web_service_manager": "initd"})
    assert build_profile(facts("debian", "12"), forced).service_manager == "initd"
    with pytest.raises(UnsupportedHost, match="PID 1 is 'bash'"):
        build_profile(facts("debian", "12", pid1="bash"), validate({"omero_web_service_manager": "systemd"}))


def test_selinux_state_from_getenforce():
    assert build_profile(facts("rocky", "9", selinux="Enforcing"), DEFAULTS).selinux_enforcing
    assert build_profile(facts("rocky", "9", selinux="Permissive"), DEFAULTS).selinux_enforcing
    assert not build_profile(facts("rocky", "9", selinux="Disabled"), DEFAULTS).selinux_enforcing
    assert build_profile(facts("centos", "7"), DEFAULTS).selinux_packages == ("policycoreutils-python",)


def test_python_from_facts_wins_over_table():
    profile = build_profile(facts("debian", "12", pythons={"/usr/bin/python3": (3, 11)}), DEFAULTS)
    assert profile.abi_key == "debian-12-x86_64-cp311"
    custom = validate({"omero_web_python": "/opt/py312/bin/python3"})
    profile = build_profile(facts("debian", "12", pythons={"/opt/py312/bin/python3": (3, 12)}), custom)
    assert profile.python_tag == "cp312"
    with pytest.raises(UnsupportedHost, match="omero_web_python"):
        build_profile(facts("debian", "12"), custom)


@pytest.mark.parametrize(
    "distro, version, arch, fragment",
    [
        ("debian", "8", "x86_64", "unsupported distribution: found 'debian 8'"),
        ("arch", "", "x86_64", "unsupported distribution"),
        ("ubuntu", "23.10", "x86_64", "supported: debian 9"),
        ("debian", "12", "ppc64le", "unsupported architecture 'ppc64le'"),
    ],
)
def test_unsupported_hosts_fail_with_what_was_found(distro, version, arch, fragment):
    with pytest.raises(UnsupportedHost) as err:
        build_profile(facts(distro, version, arch=arch), DEFAULTS)
    assert fragment in str(err.value)
