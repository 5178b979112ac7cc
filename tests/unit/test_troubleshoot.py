"""
Troubleshooting and maintenance, run the way ``pyinfra INVENTORY operations.X.func`` runs
them (``load_func``) against pyinfra's @fake connector with simulated facts: the collection
changes nothing and writes the scripted outputs per host without secrets; clearsessions and
restart run exactly their commands. The troubleshooting shell commands themselves are also
run locally against a stub ``omero``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyinfra_cli.util import load_func

from model import settings as settings_module
from operations import troubleshoot as ts
from tests.unit.simulate import unguarded
from host.facts import q
from model.omero_install import OmeroInstall
from operations.maintenance import clearsessions, restart
from model.settings import Key, ValidationError, validate
from operations.troubleshoot import CommandReport, troubleshoot
from tests.unit.simulate import SimulatedHost, fake_run

PASSWORD = "hunter2-Pa55"
DJANGO_SECRET = "django-s3cret-key"
SENTRY = "https://k3y@sentry.example.org/1"

# What the host answers to each read (substring matchers of the fake connector).
SCRIPTED = {
    "grep -qw diagnostics": ["OMERO Diagnostics (web)", "Django version: 4.2.20"],
    "bin/omero web status": ["OMERO.web status... [RUNNING] (PID 4242)"],
    # `omero config get` hides *password values itself, not other secrets: those the deploy masks
    "config get --show-password": [f"omero.web.public.password={PASSWORD}"],
    "config get": [
        "omero.web.public.password=********",
        f"omero.web.secret_key={DJANGO_SECRET}",
        f"omero.web.sentry_dsn={SENTRY}",
        "omero.web.wsgi_workers=5",
    ],
    "systemctl status omero-web": ["● omero-web.service - OMERO.web", "   Active: active (running)"],
    "journalctl -u omero-web": ["Started OMERO.web."],
    "/etc/init.d/omero-web status": ["omero-web is running"],
    "nginx -t": ["nginx: configuration file /etc/nginx/nginx.conf test is successful"],
    "OMEROweb.log": ["2024-05-01 INFO [omeroweb] started"],
    "/var/log/nginx/error.log": ["2024/05/01 [error] connect() failed (111: Connection refused)"],
}
COMMON = {
    "omero-web-status": SCRIPTED["bin/omero web status"],
    "omero-web-diagnostics": SCRIPTED["grep -qw diagnostics"],
    "omero-config": [
        "omero.web.public.password=********",
        "omero.web.secret_key=********",
        "omero.web.sentry_dsn=********",
        "omero.web.wsgi_workers=5",
    ],
    "nginx-test": SCRIPTED["nginx -t"],
    "omeroweb-log": SCRIPTED["OMEROweb.log"],
    "nginx-error-log": SCRIPTED["/var/log/nginx/error.log"],
}
SYSTEMD = {
    **COMMON,
    "service-status": SCRIPTED["systemctl status omero-web"],
    "service-journal": SCRIPTED["journalctl -u omero-web"],
}
INITD = {**COMMON, "service-status": SCRIPTED["/etc/init.d/omero-web status"]}
DATA = {"omero_web_secret_config_keys": ["omero.web.sentry_dsn"]}


@dataclass
class Run:
    commands: dict[str, list[str]]  # host name -> every command sent (facts included)
    changed: dict[str, int]  # host name -> operations that changed something

    def find(self, name: str, pattern: str) -> list[str]:
        return [c for c in self.commands[name] if re.search(pattern, c) and not c.startswith("echo '[os-release]'")]


class StubOmero(OmeroInstall):
    """An install whose ``omero`` is the stub script beside its venv (``<venv>/../omero``)."""

    def omero_cmd(self, *args: str, tmpdir: str | None = None) -> str:
        return " ".join(q(a) for a in (str(Path(self.venv).parent / "omero"), *args))

    def trusted(self, command: str, refuse: str | None = None) -> str:
        # (a venv of the user running the tests, in /tmp: root's only on a real host, where
        # tests/unit/test_venv_guard.py checks it)
        return command


def run(func, hosts: dict[str, SimulatedHost], data: dict, cwd: Path) -> Run:
    """Plan and execute ``func`` as ``pyinfra INVENTORY module.func`` does, on fake hosts."""
    with fake_run(hosts, data, lambda state: load_func(state, func), cwd=str(cwd)) as (state, inventory):
        commands, changed = {}, {}
        for name in hosts:
            fake = inventory.get_host(name)
            assert state.get_results_for_host(fake).error_ops == 0
            # (the venv check before each use of the venv's code: tests/unit/test_venv_guard.py)
            commands[name] = [unguarded(c) for c in fake.connector.executed_commands]
            metas = [state.get_op_data_for_host(fake, h).operation_meta for h in state.get_op_order()]
            changed[name] = sum(meta.did_change() for meta in metas)
        return Run(commands, changed)


def read_folder(folder: Path) -> dict[str, list[str]]:
    return {p.stem: p.read_text().splitlines() for p in sorted(folder.iterdir())}


def test_troubleshoot_changes_nothing_and_writes_each_piece_per_host(tmp_path):
    hosts = {
        "@fake/web1.example.org": SimulatedHost("debian", "12", extra_responses=SCRIPTED),
        "@fake/web2": SimulatedHost("rocky", "9", systemd=False, extra_responses=SCRIPTED),
    }
    result = run(troubleshoot, hosts, DATA, tmp_path)

    assert result.changed == {name: 0 for name in hosts}
    (base,) = tmp_path.iterdir()  # one folder for the run, shared by the hosts
    assert re.fullmatch(r"troubleshoot-\d{8}T\d{6}Z", base.name)
    assert sorted(p.name for p in base.iterdir()) == ["fake_web1.example.org", "fake_web2"]
    assert read_folder(base / "fake_web1.example.org") == SYSTEMD
    assert read_folder(base / "fake_web2") == INITD
    assert result.find("@fake/web2", r"^(systemctl|journalctl) ") == []

    for name in hosts:
        assert not result.find(name, r"--show-password")
        # every command sent only reads: the facts of the profile and of the collection
        assert not result.find(name, r"\b(rm|mv|cp|tee|mkdir|chmod|chown|restart|start|stop|reload|clearsessions)\b")
        assert result.find(name, r"runuser -u omero-web -- .*/opt/omero/web/venv3/bin/omero web status")
    for path in base.rglob("*.txt"):
        text = path.read_text()
        assert PASSWORD not in text and DJANGO_SECRET not in text and SENTRY not in text, path


def test_troubleshoot_dir_from_data(tmp_path, monkeypatch):
    # The key is not in model/settings.py KEYS yet: accept it as the lead's addition would.
    key = Key(ts.DIR_KEY, None, lambda v: v, "troubleshooting folder", "troubleshoot")
    monkeypatch.setitem(settings_module.KEYS_BY_NAME, ts.DIR_KEY, key)
    target = tmp_path / "collected"
    host = SimulatedHost("debian", "12", extra_responses=SCRIPTED)
    run(troubleshoot, {"@fake/web": host}, {**DATA, ts.DIR_KEY: str(target)}, tmp_path)
    assert read_folder(target / "fake_web") == SYSTEMD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collected"]


@pytest.mark.parametrize("value", [5, "", ["/tmp/x"], "a\nb"])
def test_troubleshoot_dir_invalid(value):
    with pytest.raises(ValidationError, match=rf"{ts.DIR_KEY} = .*expected a folder path"):
        ts.local_dir(value, "web")


def test_troubleshoot_dir_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationError, match="is not a folder"):
        ts.local_dir(str(tmp_path / "file"), "web")


@pytest.fixture
def local_host(tmp_path, monkeypatch):
    """Settings whose venv python is this one and ``omero`` a stub script, to run the pieces here."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stub = tmp_path / "omero"
    # (validation refuses install folders in /tmp: these are local stand-ins, set after it)
    settings = validate(DATA, "local").replace(venv=str(venv), omerodir=str(tmp_path / "omerodir"))

    def shell(piece: str, stub_script: str) -> list[str]:
        stub.write_text("#!/bin/sh\n" + stub_script)
        stub.chmod(0o755)
        install = StubOmero(settings.venv, settings.omerodir, settings.user)
        command = CommandReport().command(command=ts.pieces(install, "systemd", settings.secret_config_keys)[piece])
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()

    return shell


def test_diagnostics_when_supported_and_when_not(local_host):
    stub = 'case "$1 $2" in "web -h") echo "{%s,help,start,stop,status}" >&2;; "web diagnostics") echo DIAG;; esac\n'
    help_with, help_without = stub % "diagnostics", stub % "clearsessions"
    assert local_host("omero-web-diagnostics", help_with) == ["DIAG", "[exit status 0]"]
    assert local_host("omero-web-diagnostics", help_without) == [ts.UNSUPPORTED, "[exit status 0]"]


def test_config_is_masked_on_the_host(local_host):
    lines = local_host(
        "omero-config",
        f'[ "$1 $2 $3" = "config get " ] || exit 9\n'
        f"printf '%s\\n' omero.web.public.password=******** omero.web.secret_key={DJANGO_SECRET} "
        f"omero.web.sentry_dsn={SENTRY} omero.web.debug=false\n",
    )
    assert lines == [
        "omero.web.public.password=********",
        "omero.web.secret_key=********",
        "omero.web.sentry_dsn=********",
        "omero.web.debug=false",
        "[exit status 0]",
    ]


def test_failing_read_is_recorded_not_fatal(local_host):
    assert local_host("omero-web-status", "echo 'OMERO.web status... [NOT STARTED]' >&2; exit 3\n") == [
        "OMERO.web status... [NOT STARTED]",
        "[exit status 3]",
    ]


def test_clearsessions_runs_the_management_command_as_the_omero_web_user(tmp_path):
    result = run(clearsessions, {"@fake/web": SimulatedHost("debian", "12")}, {}, tmp_path)
    # (with the systemd unit's TMPDIR, where its file sessions are)
    settings = validate({})
    install = OmeroInstall(settings.venv, settings.omerodir, settings.user)
    expected = unguarded(install.omero_cmd("web", "clearsessions", tmpdir="/opt/omero/web/omero-web/var/tmp"))
    assert expected.startswith("runuser -u omero-web -- env TMPDIR=/opt/omero/web/omero-web/var/tmp ")
    assert expected.endswith(
        " OMERODIR=/opt/omero/web/omero-web PATH=/opt/omero/web/venv3/bin:/usr/local/bin:/usr/bin:/bin"
        " /opt/omero/web/venv3/bin/omero web clearsessions"
    )
    assert result.find("@fake/web", r"clearsessions") == [expected]
    assert result.changed == {"@fake/web": 1}


@pytest.mark.parametrize(
    "systemd, command",
    [(True, "systemctl restart omero-web"), (False, "/etc/init.d/omero-web restart")],
    ids=["systemd", "initd"],
)
def test_restart_with_the_service_manager_then_waits_for_login_page(systemd, command, tmp_path):
    result = run(restart, {"@fake/web": SimulatedHost("ubuntu", "22.04", systemd=systemd)}, {}, tmp_path)
    sent = result.commands["@fake/web"]
    assert result.find("@fake/web", r"restart|systemctl|init\.d") == [command]
    probe = [i for i, c in enumerate(sent) if "OMERO.web - Login" in c]
    assert probe and probe[0] > sent.index(command)  # the health check runs after the restart
    assert result.changed == {"@fake/web": 1}
