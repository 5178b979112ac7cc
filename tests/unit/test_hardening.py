"""
Web-tier hardening, without a host: the escaping of values written into omero-web.service,
the unit's sandboxing per systemd release, and the NGINX directives of the hardening and
HTTPS features. tests/integration/test_web_hardening.py proves their effect on Debian 12.
"""

from __future__ import annotations

import re

import pytest
from jinja2 import Environment, StrictUndefined

from operations import features
from operations.install import OmeroInstall
from operations.units import HARDENING, RESTART_SEC, START_LIMIT_INTERVAL, TEMPLATES, hardening_directives, systemd_escape, unit_variables
from operations.settings import validate
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
    )
    assert not [d for d in nginx if "X-Frame-Options" in d]  # Django sends it: never twice
    assert not [d for d in nginx if d.startswith(("client_max_body_size", "client_body_buffer_size",
                                                  "large_client_header_buffers"))]  # uploads
    assert features.hardening in [feature.contribution for feature in features.FEATURES]


def test_mozilla_intermediate_tls_with_https():
    nginx = features.https(https_settings(), None).nginx
    for directive in ("ssl_protocols TLSv1.2 TLSv1.3;", f"ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};",
                      "ssl_prefer_server_ciphers off;", "ssl_session_timeout 1d;",
                      "ssl_session_cache shared:omeroweb_tls:10m;", "ssl_session_tickets off;",
                      "proxy_hide_header Strict-Transport-Security;",
                      'add_header Strict-Transport-Security "max-age=63072000" always;'):
        assert nginx.count(directive) == 1, directive
    assert not [d for d in nginx if re.search(r"TLSv1(\.1)?[ ;]", d)]
    assert features.https(validate({}), None).nginx == ()
