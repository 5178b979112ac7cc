"""
Web-tier hardening, without a host: the escaping of values written into omero-web.service,
the unit's sandboxing per systemd release, and the NGINX directives of the hardening and
HTTPS features. tests/integration/test_web_hardening.py proves their effect on Debian 12.
"""

from __future__ import annotations

import os
import re

import pytest
from jinja2 import Environment, StrictUndefined

from model import features
from model.omero_install import OmeroInstall
from model.units import HARDENING, RESTART_SEC, START_LIMIT_INTERVAL, TEMPLATES, hardening_directives, systemd_escape, unit_variables
from model.settings import validate
from tests.unit.simulate import SimulatedHost, simulate

HOSTILE = ["%h", "%%", 'say "hi"', "back\\slash", "two  spaces", "$HOME", "${X}", "tab\\t", "100%", "end\\"]
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


def read_back(raw: str) -> str:
    """How systemd reads a quoted word: specifiers, then unquoting with C escapes."""
    def specifier(match: re.Match) -> str:
        if match.group(1) != "%":
            raise AssertionError(f"unescaped specifier %{match.group(1)} in {raw!r}")
        return "%"

    text = re.sub(r"%(.)", specifier, raw)
    assert text.startswith('"') and text.endswith('"'), raw
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        char = body[i]
        if char == "\\":
            following = body[i + 1]
            assert following in '\\"', f"unexpected escape \\{following} in {raw!r}"
            out.append(following)
            i += 2
            continue
        assert char != '"', f"unescaped quote in {raw!r}"
        out.append(char)
        i += 1
    return "".join(out)


def render_unit(**variables) -> str:
    """The unit as pyinfra's files.template renders it (StrictUndefined, trailing newline kept)."""
    source = (TEMPLATES / "omero-web.service.j2").read_text()
    return Environment(undefined=StrictUndefined, keep_trailing_newline=True).from_string(source).render(**variables)


# systemd_escape

def test_escape_doubles_specifiers_and_quotes():
    assert systemd_escape("%h") == '"%%h"'
    assert systemd_escape("%h", quote=False) == "%%h"
    assert systemd_escape('a"b') == '"a\\"b"'
    assert systemd_escape("a\\b") == '"a\\\\b"'
    assert systemd_escape("a b") == '"a b"'
    assert systemd_escape("/opt/omero/web/venv3") == '"/opt/omero/web/venv3"'
    assert systemd_escape("/opt/omero/web/omero-web/var/django.pid", quote=False) == \
        "/opt/omero/web/omero-web/var/django.pid"


def test_escape_leaves_dollars_alone():
    # neither Environment= nor ExecStart='s executable expands $ (systemd 247, 252, 257:
    # "$$" in the executable is taken literally and the start fails)
    assert systemd_escape("$HOME") == '"$HOME"'


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_values_read_back_unchanged(value):
    assert read_back(systemd_escape(value)) == value


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "line\n", "\x1b[31m"])
def test_line_breaks_and_control_characters_are_refused(value):
    for options in ({}, {"quote": False}):
        with pytest.raises(ValueError):
            systemd_escape(value, **options)


@pytest.mark.parametrize("value", [" lead", "trail ", "end\\", ""])
def test_bare_values_systemd_would_alter_are_refused(value):
    with pytest.raises(ValueError):
        systemd_escape(value, quote=False)


def test_executables_systemd_would_not_run_are_refused():
    assert systemd_escape("/srv/v$HOME %i/bin/omero", executable=True) == '"/srv/v$HOME %%i/bin/omero"'
    for value in ('/srv/"v"/bin/omero', "/srv/v'/bin/omero", "/srv/v\\x/bin/omero"):
        with pytest.raises(ValueError):
            systemd_escape(value, executable=True)
    with pytest.raises(ValueError):
        unit_variables(OmeroInstall('/opt/v"x', "/opt/omero", "omero-web"), 252)


# the unit

WALKTHROUGH_LINES = [
    "Requires=nginx.service",
    "After=network.target nginx.service",
    "User=omero-web",
    "Type=forking",
    "PIDFile=/opt/omero/web/omero-web/var/django.pid",
    'Environment="PATH=/opt/omero/web/venv3/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin"',
    'Environment="OMERODIR=/opt/omero/web/omero-web"',
    'ExecStart="/opt/omero/web/venv3/bin/omero" web start',
    'ExecStop="/opt/omero/web/venv3/bin/omero" web stop',
    "WantedBy=multi-user.target",
]
SANDBOX_252 = [
    "NoNewPrivileges=yes", "PrivateTmp=yes", 'Environment="TMPDIR=/opt/omero/web/omero-web/var/tmp"',
    "PrivateDevices=yes", "ProtectHome=read-only",
    'Environment="OMERO_TMPDIR=/tmp/omero/tmp"', "RuntimeDirectory=omero-web", "RuntimeDirectoryMode=0700",
    'Environment="XDG_RUNTIME_DIR=/run/omero-web"', "ProtectSystem=strict",
    'ReadWritePaths="/opt/omero/web/omero-web/var"', "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes",
    "ProtectProc=invisible", "ProcSubset=pid", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes", "RemoveIPC=yes", "CapabilityBoundingSet=", "AmbientCapabilities=",
    "SystemCallArchitectures=native", "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM", "UMask=0022",
]


def default_unit(version: int | None) -> list[str]:
    return render_unit(**unit_variables(OmeroInstall("/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"), version)) \
        .splitlines()


@pytest.mark.parametrize("version", [252, 257, None])
def test_unit_keeps_the_walkthrough_and_adds_the_sandbox(version):
    lines = default_unit(version)
    for line in WALKTHROUGH_LINES + SANDBOX_252:
        assert lines.count(line) == 1, line
    service = lines[lines.index("[Service]"):lines.index("[Install]")]
    assert [line for line in service if line.startswith("Restart")] == ["Restart=on-failure", "RestartSec=5"]


@pytest.mark.parametrize("version", [219, 228, 229, 247, 252, None])
def test_crashes_restart_within_start_limits_the_release_knows(version):
    """issue 12 (2): Restart=on-failure, not the walkthrough's Restart=no; a crash loop stops."""
    lines = default_unit(version)
    unit = lines[lines.index("[Unit]"):lines.index("[Service]")]
    service = lines[lines.index("[Service]"):lines.index("[Install]")]
    assert "Restart=on-failure" in service and "Restart=no" not in lines
    limits = [line for line in lines if line.startswith("StartLimit")]
    if version is not None and version < 229:  # the [Unit] spelling is unknown there
        assert limits == ["StartLimitInterval=300", "StartLimitBurst=5"] and set(limits) <= set(service)
    else:
        assert limits == ["StartLimitIntervalSec=300", "StartLimitBurst=5"] and set(limits) <= set(unit)
    burst = int(limits[1].split("=")[1])
    # a loop of failing starts (each up to 30 s) reaches the burst inside the interval
    assert burst * (RESTART_SEC + 30) < START_LIMIT_INTERVAL


def test_each_release_gets_only_the_directives_it_knows():
    debian11 = default_unit(247)
    assert "ProtectProc=invisible" in debian11 and "ProcSubset=pid" in debian11
    assert "SystemCallFilter=@system-service" in debian11
    ubuntu2004 = default_unit(245)
    assert "ProtectClock=yes" in ubuntu2004 and "ProtectProc=invisible" not in ubuntu2004
    ubuntu1804 = default_unit(237)
    assert "ProtectSystem=strict" in ubuntu1804 and not [x for x in ubuntu1804 if x.startswith("SystemCall")][1:]
    assert "SystemCallArchitectures=native" in ubuntu1804  # filters only from 239: see HARDENING
    centos7 = default_unit(219)
    assert "ProtectSystem=full" in centos7 and "ProtectSystem=strict" not in centos7
    assert not [x for x in centos7 if x.startswith(("SystemCallFilter", "ReadWritePaths", "ProtectKernel",
                                                       "MemoryDeny", "RestrictNamespaces", "ProtectProc"))]
    assert "NoNewPrivileges=yes" in centos7 and "UMask=0022" in centos7
    for version in (219, 231, 232, 237, 239, 247, 252):
        directives = hardening_directives(version, OmeroInstall("/srv/venv", "/srv/omero", "omero-web"))
        assert len([d for d in directives if d.startswith("ProtectSystem=")]) == 1, version
        assert all(since <= version for since, _, line in HARDENING if line in directives)


def test_hostile_paths_are_escaped_in_every_unit_line():
    omerodir, venv = '/srv/o%h "q" \\b $X', "/srv/v$HOME %i"
    text = render_unit(**unit_variables(OmeroInstall(venv, omerodir, "web%u"), 252))
    lines = text.splitlines()
    assert "User=web%%u" in lines
    assert "PIDFile=/srv/o%%h \"q\" \\b $X/var/django.pid" in lines  # PIDFile= is taken verbatim
    environment = [line.split("=", 1)[1] for line in lines if line.startswith("Environment=")]
    assert [read_back(value) for value in environment][:2] == [
        f"PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin", f"OMERODIR={omerodir}"]
    start = next(line for line in lines if line.startswith("ExecStart="))[len("ExecStart="):]
    path, arguments = start.rsplit(" ", 2)[0], start.rsplit(" ", 2)[1:]
    assert read_back(path) == f"{venv}/bin/omero" and arguments == ["web", "start"]
    writable = next(line for line in lines if line.startswith("ReadWritePaths="))[len("ReadWritePaths="):]
    assert read_back(writable) == f"{omerodir}/var"
    assert f"TMPDIR={omerodir}/var/tmp" in [read_back(value) for value in environment]
    assert not re.search(r"%[^%]", text.replace("%%", "")), "an unescaped specifier"


def test_a_line_break_in_a_value_fails_before_anything_is_written():
    with pytest.raises(ValueError):
        unit_variables(OmeroInstall("/opt/venv", "/opt/omero\nExecStartPre=/bin/sh -c id", "omero-web"), 252)
    with pytest.raises(ValueError):
        unit_variables(OmeroInstall("/opt/venv", "/opt/omero", "omero-web\nUser=root"), 252)


def test_simulated_centos7_gets_no_system_call_filter():
    # the release number is a fact (systemctl --version), not a guess from the distro name
    old = simulate(SimulatedHost("centos", "7", pythons={"/usr/bin/python3": "3.6"},
                                 systemd_version="systemd 219"))
    unit = old.uploads["/etc/systemd/system/omero-web.service"]
    assert "SystemCallFilter" not in unit and "ProtectSystem=full" in unit and "NoNewPrivileges=yes" in unit
    new = simulate(SimulatedHost("debian", "12", systemd_version="systemd 252 (252.33-1~deb12u1)"))
    assert all(line in new.uploads["/etc/systemd/system/omero-web.service"].splitlines() for line in SANDBOX_252)
    # ReadWritePaths= needs the folder at start (226/NAMESPACE otherwise) and TMPDIR an
    # owner-only one: made as the account
    # (folders of one operation are made in one command: "runuser ... sh MODE PATH... && runuser ...")
    made = [f"{mode} {path}" for c in new.find(r"^runuser -u omero-web -- sh -c .*mkdir -p ")
            for mode, paths in re.findall(r"' sh (\d+) (.+?)(?= && runuser |$)", c) for path in paths.split()]
    assert "755 /opt/omero/web/omero-web/var" in made and "700 /opt/omero/web/omero-web/var/tmp" in made, made


# NGINX

def https_settings(**data):
    return validate({"omero_web_https": True, "omero_web_tls_self_signed": True, **data})


def test_headers_sent_once_on_every_response_without_x_frame_options():
    nginx = features.hardening(validate({}), None).nginx
    assert nginx == (
        "proxy_hide_header X-Content-Type-Options;",
        'add_header X-Content-Type-Options "nosniff" always;',
        "proxy_hide_header Referrer-Policy;",
        'add_header Referrer-Policy "same-origin" always;',
        "disable_symlinks if_not_owner;",
    )
    assert not [d for d in nginx if "X-Frame-Options" in d]  # Django sends it: never twice
    assert not [d for d in nginx if d.startswith(("client_max_body_size", "client_body_buffer_size",
                                                  "large_client_header_buffers"))]  # uploads
    assert features.hardening in [feature.contribution for feature in features.FEATURES]


def test_mozilla_intermediate_tls_with_https():
    nginx = features.https(https_settings(), profile_with((3, 0))).nginx
    for directive in ("ssl_protocols TLSv1.2 TLSv1.3;", f"ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};",
                      "ssl_prefer_server_ciphers off;", "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
                      "ssl_session_timeout 1d;",
                      "ssl_session_cache shared:omeroweb_tls:10m;", "ssl_session_tickets off;",
                      "proxy_hide_header Strict-Transport-Security;",
                      'add_header Strict-Transport-Security "max-age=63072000" always;'):
        assert nginx.count(directive) == 1, directive
    assert not [d for d in nginx if re.search(r"TLSv1(\.1)?[ ;]", d)]
    assert features.https(validate({}), profile_with((3, 0))).nginx == ()


# TLS curves: Mozilla's list where NGINX's OpenSSL knows it (a fact, not the distro's name)

def profile_with(openssl_version):
    from model.distro_profile import HostFacts, build_profile
    facts = HostFacts(os_release={"ID": "debian", "VERSION_ID": "12"}, arch="x86_64", pid1="systemd", cpus=2,
                      openssl_version=openssl_version)
    return build_profile(facts, validate({}))


@pytest.mark.parametrize("openssl, curves", [
    ((3, 0), "X25519:prime256v1:secp384r1"),
    ((1, 1), "X25519:prime256v1:secp384r1"),
    (None, "X25519:prime256v1:secp384r1"),  # nothing installed yet: every supported release but EL 7 has 1.1+
    ((1, 0), "prime256v1:secp384r1"),  # OpenSSL 1.0.2 (CentOS 7): nginx -t fails naming X25519
])
def test_mozilla_curves_the_hosts_openssl_knows(openssl, curves):
    nginx = features.https(https_settings(), profile_with(openssl)).nginx
    assert [d for d in nginx if d.startswith("ssl_ecdh_curve")] == [f"ssl_ecdh_curve {curves};"]
    assert not [d for d in nginx if re.search(r"secp521r1|X448", d)]


@pytest.mark.parametrize("lines, release", [
    (["nginx=built with OpenSSL 3.0.15 3 Sep 2024", "libssl=3"], (3, 0)),
    (["nginx=built with OpenSSL 1.0.2k-fips  26 Jan 2017", "libssl=10", "libssl=1.0.2k", "libssl=1.1"], (1, 0)),
    (["nginx=built with OpenSSL 1.1.1  11 Sep 2018 (running with OpenSSL 1.1.1f  31 Mar 2020)"], (1, 1)),
    (["libssl=10", "libssl=1.0.2k"], (1, 0)),  # before NGINX is installed: the libraries present
    (["libssl=1.0.2", "libssl=1.1"], (1, 1)),
    (["libssl=3", "libssl=3"], (3, 0)),
    ([], None),
])
def test_openssl_release_read_from_nginx_then_libssl(lines, release):
    from host.facts import HostInventory
    output = ["[os-release]", "ID=debian", "VERSION_ID=12", "[facts]", "arch=x86_64", "pid1=systemd", "cpus=2", *lines]
    assert HostInventory().process(output).openssl_version == release


def extra_config_commands(sim) -> list[str]:
    """The site generator's commands (its input: the server block's extra configuration)."""
    return [c for c in sim.commands if "omero.web.nginx_server_extra_config=" in c and "site.properties" in c]


def test_simulated_centos7_gets_the_curves_its_openssl_knows():
    host = SimulatedHost("centos", "7", pythons={"/usr/bin/python3": "3.6"}, systemd_version="systemd 219")
    host.extra_responses = {"echo '[os-release]'": [*host.inventory_facts(),
                                                   "nginx=built with OpenSSL 1.0.2k-fips  26 Jan 2017"]}
    old = extra_config_commands(simulate(host, {"omero_web_https": True, "omero_web_tls_self_signed": True}))
    assert old and all("ssl_ecdh_curve prime256v1:secp384r1;" in c and "X25519" not in c for c in old)
    new_host = SimulatedHost("debian", "12")
    new_host.extra_responses = {"echo '[os-release]'": [*new_host.inventory_facts(), "libssl=3"]}
    new = extra_config_commands(simulate(new_host, {"omero_web_https": True, "omero_web_tls_self_signed": True}))
    assert new and all("ssl_ecdh_curve X25519:prime256v1:secp384r1;" in c for c in new)


# Links: NGINX serves no file through a link of the OMERO.web account to another owner's file

def test_symlinks_refused_at_server_level_on_every_deploy():
    for data in ({}, {"omero_web_https": True, "omero_web_tls_self_signed": True}):
        assert features.combined(validate(data), profile_with((3, 0))).nginx.count(features.SYMLINKS) == 1
    generator = extra_config_commands(simulate(SimulatedHost("debian", "12")))
    assert generator and all("disable_symlinks if_not_owner;" in c for c in generator)


# The self-signed certificate: 365 days, made again before it ends; any other certificate left alone

def openssl(*args: str, cwd) -> None:
    import subprocess
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def self_signed(tmp_path, days: int, name: str = "omeroweb") -> tuple[str, str]:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-keyout", f"{name}.key",
            "-out", f"{name}.crt", "-subj", "/CN=localhost", cwd=tmp_path)
    return str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key")


def certificate_state(certificate: str, key: str) -> dict:
    """``TlsCertificate`` read with this machine's openssl, as on a host."""
    import subprocess
    from host.facts import TlsCertificate
    from host.tls import RENEW_BEFORE_SECONDS
    command = TlsCertificate().command(certificate=certificate, key=key, seconds=RENEW_BEFORE_SECONDS)
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    return TlsCertificate().process(out.splitlines())


def test_certificate_facts_and_when_a_self_signed_one_is_made_again(tmp_path):
    from host.tls import certificate_wanted
    current = certificate_state(*self_signed(tmp_path, 365))
    assert current == {"certificate": True, "key": True, "self_signed": True, "lifetime_days": 365.0, "ending": False}
    assert not certificate_wanted(current)
    old = certificate_state(*self_signed(tmp_path, 825, "old"))  # made by earlier releases of this deploy
    assert old["lifetime_days"] == 825.0 and not old["ending"] and certificate_wanted(old)
    ending = certificate_state(*self_signed(tmp_path, 29, "ending"))  # within the last 30 days
    assert ending["ending"] and certificate_wanted(ending)
    assert certificate_wanted(certificate_state(str(tmp_path / "none.crt"), str(tmp_path / "none.key")))
    assert certificate_wanted(certificate_state(str(tmp_path / "omeroweb.crt"), str(tmp_path / "none.key")))


def test_a_certificate_signed_by_a_ca_is_never_replaced(tmp_path):
    from host.tls import certificate_wanted
    ca_certificate, ca_key = self_signed(tmp_path, 3650, "ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "site.key", "-out", "site.csr", "-subj", "/CN=localhost",
            cwd=tmp_path)
    for days, name in ((825, "long"), (10, "ending")):
        openssl("x509", "-req", "-in", "site.csr", "-CA", ca_certificate, "-CAkey", ca_key, "-CAcreateserial",
                "-days", str(days), "-out", f"{name}.crt", cwd=tmp_path)
        state = certificate_state(str(tmp_path / f"{name}.crt"), str(tmp_path / "site.key"))
        assert not state["self_signed"] and not certificate_wanted(state), (name, state)


def test_self_signed_certificate_operation_replaces_an_825_day_pair_once(tmp_path, monkeypatch):
    import subprocess
    from host import tls as https

    class Host:
        @staticmethod
        def get_fact(fact, **kwargs):
            return certificate_state(kwargs["certificate"], kwargs["key"])

    monkeypatch.setattr(https, "host", Host)
    certificate, key = self_signed(tmp_path, 825)

    def run() -> list[str]:
        commands = [str(c) for c in https.self_signed_certificate._inner(certificate, key, "localhost")]
        for command in commands:
            subprocess.run(["sh", "-c", command], check=True, capture_output=True)
        return commands

    assert len(run()) == 1
    state = certificate_state(certificate, key)
    assert state["lifetime_days"] == https.SELF_SIGNED_DAYS <= https.MAX_LIFETIME_DAYS and not state["ending"]
    assert oct(os.stat(key).st_mode & 0o777) == "0o600" and oct(os.stat(certificate).st_mode & 0o777) == "0o644"
    # the new key is the new certificate's, and nothing is left beside them
    modulus = [subprocess.run(["openssl", kind, "-in", path, "-noout", "-modulus"], capture_output=True, text=True,
                              check=True).stdout for kind, path in (("x509", certificate), ("rsa", key))]
    assert modulus[0] == modulus[1]
    text = subprocess.run(["openssl", "x509", "-in", certificate, "-noout", "-text"], capture_output=True, text=True,
                          check=True).stdout
    assert "CA:FALSE" in text and "TLS Web Server Authentication" in text  # a server's, not a CA's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["omeroweb.crt", "omeroweb.key"]
    assert run() == []  # valid and within Mozilla's limit: a re-run changes nothing
