"""
OMERO.server settings for OMERO clients (walkthrough 4.8.7 to 4.8.10). No OMERO.server can
run here, so the section is run as ``pyinfra INVENTORY operations.omero_server...`` runs it
(``load_func``) on pyinfra's @fake connector: hosts in an ``omero_server`` inventory group
answer the section's facts with simulated output (the fact's own hasher is run locally on a
simulated ``omero config get``), and the exact commands and uploads are checked. The group
script (``omero obj map-set`` semantics) is run locally against a stand-in ``omero`` module.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import pytest
from pyinfra.api import Inventory
from pyinfra.api.exceptions import PyinfraError
from pyinfra_cli.util import load_func

from host import facts
from model.omero_install import OmeroInstall
from model.secrecy import SECRET_NAME
from model.web_config import sha256
from tests.unit.walkthrough_steps import CLIENT_CONFIG  # the walkthrough's 4.8.7 to 4.8.10
from operations.omero_server import GROUP_SCRIPT, omero_server_settings, plan_group_changes, plan_server_changes
from tests.unit import simulate
from host.ownership import as_user
from host.uploads import _WRITE, mkdirs_as, remove_as
from tests.unit.simulate import SimulatedHost, fake_run, land_staged_uploads, omero_commands


def written(dest: str, mode: str = "600") -> list[str]:
    """A file the server's user writes from a root-only staged copy (the staging folder comes with
    the run lock), uploaded straight there (connected as root: no temporary file on the way)."""
    return [
        f"PUT STAGED({dest})",
        f"{as_user('omero-server', _WRITE, dest, mode)} < STAGED({dest}); rc=$?; rm -f STAGED({dest}); exit $rc",
    ]

SERVER, WEB = "@fake/omero1", "@fake/web1"
SECTION = "OMERO.server settings for OMERO clients"
ETC = "/opt/omero/server/OMERO.server/etc"
STAGING = f"{ETC}/.omeroweb-deploy"
RECORD = f"{ETC}/omeroweb-deploy-server-managed.json"
GROUPS_RECORD = f"{ETC}/omeroweb-deploy-server-groups.json"
AS_SERVER = (
    'runuser -u omero-server -- env HOME="$(getent passwd omero-server | cut -d: -f6)" '
    "OMERODIR=/opt/omero/server/OMERO.server PATH=/opt/omero/server/venv3/bin:/usr/local/bin:/usr/bin:/bin "
)
OMERO = AS_SERVER + "/opt/omero/server/venv3/bin/omero"
PASSWORD = "Adm1n-s3cret-pw"
DB_PASSWORD = "db-pa55-never-shown"
SCRIPTS = "omero.client.scripts_to_ignore"
DEFAULT_SCRIPTS = (
    "/omero/figure_scripts/Movie_Figure.py,/omero/figure_scripts/Split_View_Figure.py,"
    "/omero/figure_scripts/Thumbnail_Figure.py,/omero/figure_scripts/ROI_Split_Figure.py,"
    "/omero/export_scripts/Make_Movie.py,/omero/import_scripts/Populate_ROI.py"
)
STORED = {  # as `omero config get` shows them once set
    **{k: v for k, v in CLIENT_CONFIG.items() if isinstance(v, str)},
    "omero.client.ui.menu.dropdown.leaders.enabled": "true",
    "omero.client.ui.menu.dropdown.colleagues.enabled": "true",
    "omero.client.ui.menu.dropdown.everyone.enabled": "false",
}
DATA = {
    "omero_web_omero_server_config": CLIENT_CONFIG,
    "omero_web_omero_server_config_append": {SCRIPTS: ["/my_scripts/script.py"]},
}
FIRST_RECORD = {"append": {SCRIPTS: ["/my_scripts/script.py"]}, "set": sorted(CLIENT_CONFIG)}


#: What the simulated host answers the OmeroConfig fact's command by (its reader script names itself).
READER = "config.xml reader"


def config_xml(values: dict) -> str:
    """config.xml as `omero config set` writes it (see tests/unit/data/config-xml)."""
    from xml.sax.saxutils import quoteattr

    props = "".join(f"<property name={quoteattr(k)} value={quoteattr(v)} />" for k, v in values.items())
    version = '<property name="omero.config.version" value="5.1.0" />'
    return (f'<icegrid><properties id="__ACTIVE__"><property name="omero.config.profile" value="default" />{version}'
            f'{props}</properties><properties id="default">{version}{props}</properties></icegrid>')


def server_config_output(config: dict, record, defaults: dict | None = None, tmp=None) -> list[str]:
    """What the OmeroConfig fact prints on a host: its reader run here on such a config.xml, with
    `omero config parse --defaults` simulated on its standard input."""
    import tempfile

    stored = {"omero.db.pass": DB_PASSWORD, "omero.data.dir": "/OMERO", **config}
    lines = [f"{SCRIPTS}={DEFAULT_SCRIPTS}", "omero.client.ui.tree.orphans.name=Orphaned Images"]
    lines += [f"{k}={v}" for k, v in (defaults or {}).items()]
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as xml:
        xml.write(config_xml(stored))
        xml.flush()
        rule = json.dumps({"name": SECRET_NAME, "declared": [], "clear": [SCRIPTS]})
        # standard input as the fact's command makes it: no wanted secret, no host secret, the defaults
        hashed = subprocess.run(
            [sys.executable, "-I", "-c", facts.CONFIG_READER, xml.name, rule],
            input="\n\n" + "\n".join(lines) + "\n", capture_output=True, text=True, check=True,
        ).stdout.splitlines()
    return [*hashed, "---", json.dumps(record)]


def server_host(config: dict | None = None, record=None, groups_record=None, omero_installed=True) -> SimulatedHost:
    responses = {
        READER: server_config_output(config or {}, record) if omero_installed else [],
        # the records are read as the server's user (runuser ... cat), never as root
        re.compile(rf"^runuser -u omero-server -- sh -c 'cat -- .* {re.escape(RECORD)} "):
            [json.dumps(record)] if record else [],
        re.compile(rf"^runuser -u omero-server -- sh -c 'cat -- .* {re.escape(GROUPS_RECORD)} "):
            [json.dumps(groups_record)] if groups_record else [],
    }
    return SimulatedHost("debian", "12", extra_responses=responses)


@dataclass
class Run:
    commands: dict[str, list[str]]  # every command sent, facts included
    uploads: dict[str, dict[str, str]]
    operations: dict[str, list[str]]  # names of the operations planned per host
    changed: dict[str, int]

    def find(self, name: str, pattern: str) -> list[str]:
        return [c for c in self.commands[name] if re.search(pattern, c) and not c.startswith("echo '[os-release]'")]

    def changes(self, name: str) -> list[str]:
        """
        The commands that change the host (uploads included), not the facts; the login user's
        private upload folder shown as /tmp/PRIVATE and each staged upload as STAGED(<dest>).
        """
        reads = ("echo '[os-release]'", "if [ -x ", "cat ", "runuser -u omero-server -- sh -c 'cat -- ",
                 'if [ -n "$TMPDIR" ]')  # pyinfra's temporary folder
        staged = {v: k for k, v in self.staged(name).items()}
        found = []
        for command in self.commands[name]:
            if command.startswith(reads):
                continue
            command = re.sub(r"/tmp/pyinfra-[0-9a-f]+", "/tmp/PRIVATE", command)
            found.append(re.sub(r"/var/lib/omeroweb-deploy/staging/[0-9a-f]+",
                                lambda m: f"STAGED({staged.get(m.group(0), '?')})", command))
        return found

    def staged(self, name: str) -> dict[str, str]:
        """Destination -> root-only staged path of each upload written as an account."""
        return {dest: staged for dest, staged in
                re.findall(r" sh (/\S+) \d+ < (/var/lib/omeroweb-deploy/staging/\S+);", " ".join(self.commands[name]))}


@contextmanager
def inventory_groups(groups: dict[str, list[str]]):
    """fake_run builds an Inventory without groups; give it the inventory's groups."""

    def with_groups(names_data, override_data=None):
        return Inventory(names_data, override_data, **{g: (members, {}) for g, members in groups.items()})

    with mock.patch.object(simulate, "Inventory", with_groups):
        yield


def run(hosts: dict[str, SimulatedHost], data: dict, groups: dict[str, list[str]] | None = None) -> Run:
    groups = {"omero_server": [SERVER]} if groups is None else groups
    with inventory_groups(groups), fake_run(hosts, data, lambda state: load_func(state, omero_server_settings)) as (
        state, inventory,
    ):
        result = Run({}, {}, {}, {})
        for name in hosts:
            fake = inventory.get_host(name)
            assert state.get_results_for_host(fake).error_ops == 0
            result.commands[name] = [simulate.unguarded(simulate.unbuffered(c)) for c in fake.connector.executed_commands]
            result.uploads[name] = land_staged_uploads(result.commands[name], fake.connector.uploads)
            order = [h for h in state.get_op_order() if fake in state.ops and h in state.ops[fake]]
            result.operations[name] = [", ".join(state.get_op_meta(h).names) for h in order]
            result.changed[name] = sum(state.get_op_data_for_host(fake, h).operation_meta.did_change() for h in order)
        return result


def test_server_host_gets_the_walkthrough_settings_and_a_web_host_nothing(caplog):
    caplog.set_level(logging.WARNING)
    result = run({SERVER: server_host(), WEB: SimulatedHost("debian", "12")}, DATA)

    staged = f"{STAGING}/server-config.properties"
    assert result.changes(SERVER) == [
        mkdirs_as("omero-server", "700", STAGING),
        *written(staged),
        f"{OMERO} config load -q {staged} && {remove_as('omero-server', staged)}",
        *written(RECORD),
    ]
    # Booleans as OMERO stores them; the list property comma-separated, from the server's default
    assert result.uploads[SERVER][staged] == (
        "omero.client.scripts_to_ignore=" + DEFAULT_SCRIPTS + ",/my_scripts/script.py\n"
        "omero.client.ui.menu.dropdown.colleagues.enabled=true\n"
        "omero.client.ui.menu.dropdown.colleagues.label=Members\n"
        "omero.client.ui.menu.dropdown.everyone.enabled=false\n"
        "omero.client.ui.menu.dropdown.everyone.label=All Members\n"
        "omero.client.ui.menu.dropdown.leaders.enabled=true\n"
        "omero.client.ui.menu.dropdown.leaders.label=Owners\n"
        "omero.client.ui.tree.orphans.name=Orphaned images\n"
        "omero.policy.binary_access=+read,+write,+image\n"
    )
    assert json.loads(result.uploads[SERVER][RECORD]) == FIRST_RECORD
    assert result.operations[SERVER] == [f"{SECTION} | Apply OMERO.server configuration"]
    # The facts ran as the server user against the server's OMERODIR
    # (its standard input: the wanted secrets, the host's own secret line, then the defaults)
    assert result.find(SERVER, re.escape(f"; echo; {OMERO} config parse --defaults --no-web; }} | ")
                       + r".*" + re.escape(f"{AS_SERVER}/opt/omero/server/venv3/bin/python -I -c "))
    assert result.find(SERVER, re.escape(f"{ETC}/grid/config.xml ") + r"'\{.*clear.: \[")
    # OMERO.server reads its configuration at start: the run says so and restarts nothing
    assert not result.find(SERVER, r"restart|admin (start|stop)")
    assert any("restart it" in r.getMessage() and SERVER in r.getMessage() for r in caplog.records)

    # A host outside the OMERO.server group: not one command or operation of this section
    assert result.operations[WEB] == [] and not result.find(WEB, r"omero|/opt/omero/server")
    assert result.uploads[WEB] == {}


def test_second_run_on_the_applied_state_changes_nothing(caplog):
    caplog.set_level(logging.WARNING)
    applied = {**STORED, SCRIPTS: DEFAULT_SCRIPTS + ",/my_scripts/script.py"}
    result = run({SERVER: server_host(applied, FIRST_RECORD)}, DATA)
    assert result.operations[SERVER] == [f"{SECTION} | Apply OMERO.server configuration"]
    assert result.changes(SERVER) == [] and result.uploads[SERVER] == {}
    assert result.changed[SERVER] == 0
    assert not any("restart" in r.getMessage() for r in caplog.records)


def test_removed_property_is_unset_and_removed_item_taken_out_of_the_list():
    applied = {**STORED, SCRIPTS: DEFAULT_SCRIPTS + ",/my_scripts/script.py,/my_scripts/old.py", "omero.x.by_hand": "1"}
    record = {"append": {SCRIPTS: ["/my_scripts/script.py", "/my_scripts/old.py"]}, "set": sorted(CLIENT_CONFIG)}
    config = {k: v for k, v in CLIENT_CONFIG.items() if k != "omero.client.ui.tree.orphans.name"}
    data = {**DATA, "omero_web_omero_server_config": config}
    result = run({SERVER: server_host(applied, record)}, data)

    staged = f"{STAGING}/server-config.properties"
    assert result.uploads[SERVER][staged] == f"{SCRIPTS}={DEFAULT_SCRIPTS},/my_scripts/script.py\n"
    # the load and the unset in one omero process, as the server's account
    assert [c for c in omero_commands(result.find(SERVER, f"^{re.escape(OMERO)} load <<"))
            if c.startswith("config set")] == ["config set omero.client.ui.tree.orphans.name"]
    assert not result.find(SERVER, "by_hand")  # set by hand, never managed: left alone
    assert json.loads(result.uploads[SERVER][RECORD])["set"] == sorted(config)


def test_server_with_nothing_to_do_gets_no_operation_at_all():
    assert run({SERVER: server_host()}, {}).operations[SERVER] == []


def test_emptied_data_still_removes_what_an_earlier_run_set():
    applied = {**STORED, SCRIPTS: DEFAULT_SCRIPTS + ",/my_scripts/script.py"}
    result = run({SERVER: server_host(applied, FIRST_RECORD)}, {})
    unset = sorted(f"config set {k}" for k in CLIENT_CONFIG)
    assert sorted(c for c in omero_commands(result.find(SERVER, f"^{re.escape(OMERO)} load <<"))
                  if c.startswith("config set")) == unset
    # the item this deploy added goes; the server's defaults stay
    assert result.uploads[SERVER][f"{STAGING}/server-config.properties"] == f"{SCRIPTS}={DEFAULT_SCRIPTS}\n"
    assert json.loads(result.uploads[SERVER][RECORD]) == {"append": {}, "set": []}


def test_missing_omero_server_fails_with_a_clear_message(caplog):
    message = (
        "OMERO.server not found: /opt/omero/server/venv3/bin/omero does not exist on this host of the "
        "OMERO.server group (this deploy configures OMERO.server, it does not install it)"
    )
    host = server_host(omero_installed=False)
    # the fake connector fails exactly this command, printing what the shell would
    host.extra_responses = {re.compile(f"^echo {re.escape(repr(message))} >&2; exit 1$"): {
        "success": False, "stderr": message}, **host.extra_responses}
    with pytest.raises(PyinfraError, match="No hosts remaining"):
        run({SERVER: host}, DATA)
    assert message in caplog.text
    assert "restart it" not in caplog.text  # nothing was changed


def test_corrupted_server_record_fails_naming_it_before_any_change(caplog):
    host = server_host()
    host.extra_responses[READER] = [*server_config_output({}, None)[:-1], '{"set": ["omero.clie']
    # the fake connector fails exactly the failure command this deploy must send
    failure = re.compile(rf"^printf '%s\\n' '.*{re.escape(RECORD)} is corrupted \(not JSON.*OMERO\.server\S{{1,6}}s "
                         r"configuration was not changed.* >&2; exit 1$")
    host.extra_responses = {failure: {"success": False, "stderr": "CORRUPTED-RECORD-FAILURE"}, **host.extra_responses}
    with pytest.raises(PyinfraError, match="No hosts remaining"):
        run({SERVER: host}, DATA)
    assert "CORRUPTED-RECORD-FAILURE" in caplog.text
    assert "restart it" not in caplog.text  # nothing was changed


def test_server_venv_another_account_can_change_is_never_run_as_root(caplog):
    from model.omero_install import untrusted_failure

    planted = "/opt/omero/server/venv3/lib/python3.11/site-packages/x.pth"
    failure = untrusted_failure("/opt/omero/server/venv3", planted)
    message = failure.split("'")[1]
    assert planted in message and "refusing to run code from /opt/omero/server/venv3" in message
    host = server_host()
    host.extra_responses = {
        READER: [f"{facts.UNTRUSTED} {planted}"],  # the fact's own check, on the host, said so
        re.compile(f"^{re.escape(failure)}$"): {"success": False, "stderr": message},
        **{k: v for k, v in host.extra_responses.items() if k != READER},
    }
    with pytest.raises(PyinfraError, match="No hosts remaining"):
        run({SERVER: host}, DATA)
    assert message in caplog.text
    assert facts.OmeroConfig().process([f"{facts.UNTRUSTED} {planted}"]) == {"untrusted": planted}
    # the check comes before anything runs the venv's python
    probe = facts.OmeroConfig().command(OmeroInstall("/v", "/d", "omero-server"), "/d/r.json")
    assert probe.index(facts.UNTRUSTED) < probe.index("/v/bin/python")


def test_fact_reports_only_hashes_of_values_it_does_not_merge():
    lines = server_config_output({"omero.client.ui.tree.orphans.name": "X"}, None)
    fact = facts.OmeroConfig().process(lines)
    assert DB_PASSWORD not in "\n".join(lines) and sha256(DB_PASSWORD) not in "\n".join(lines)
    # a secret: neither its value nor a digest of it leaves the host (none wanted here: not the same)
    assert fact["config"]["omero.db.pass"] == {"same": False}
    assert fact["config"]["omero.client.ui.tree.orphans.name"]["value"] is None
    assert fact["defaults"] == {SCRIPTS: DEFAULT_SCRIPTS}
    assert fact["managed"] is None


@pytest.mark.parametrize("data, message", [
    ({"omero_web_omero_server_config": {SCRIPTS: "/a.py"}, "omero_web_omero_server_config_append": {SCRIPTS: ["/b.py"]}},
     "both name omero.client.scripts_to_ignore"),
    ({"omero_web_omero_server_config_append": {SCRIPTS: ["/a.py,/b.py"]}}, "without commas"),
    ({"omero_web_omero_server_config_append": {SCRIPTS: [{"index": 0}]}}, "without commas"),
], ids=["set-and-append", "comma", "not-a-string"])
def test_conflicting_or_malformed_list_data_fails_before_any_change(data, message):
    # validation (settings.py) or, at the latest, the section's own check while planning
    with pytest.raises((PyinfraError, ValueError), match=message):
        run({SERVER: server_host()}, data)


# Per-group settings (omero obj map-set ExperimenterGroup:<id> config)

GROUP_DATA = {
    "omero_web_omero_server_group_config": {15: {"omero.policy.binary_access": "-read,+write,+image"}},
    "omero_web_omero_server_admin_password": PASSWORD,
}


def test_group_settings_run_the_script_once_without_showing_the_password(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    result = run({SERVER: server_host()}, GROUP_DATA)

    script, request, secret = (f"{STAGING}/omero_group_config.py", f"{STAGING}/group-config.json",
                               f"{STAGING}/omero-admin.password")
    assert result.changes(SERVER) == [
        "true",  # (the venv checked before the password is staged: test_venv_guard.py)
        mkdirs_as("omero-server", "700", STAGING),
        *written(script),
        *written(request),
        *written(secret),
        f"{AS_SERVER}/opt/omero/server/venv3/bin/python {script} {request} {secret}; "
        f"rc=$?; {remove_as('omero-server', secret, request)}; exit $rc",
        *written(GROUPS_RECORD),
    ]
    uploads = result.uploads[SERVER]
    assert uploads[script] == GROUP_SCRIPT
    assert json.loads(uploads[request]) == {
        "host": "localhost", "port": 4064, "user": "root",
        "groups": {"15": {"omero.policy.binary_access": "-read,+write,+image"}},
    }
    assert uploads[secret] == PASSWORD + "\n"
    wanted = {"omero.policy.binary_access": "-read,+write,+image"}
    assert json.loads(uploads[GROUPS_RECORD]) == {
        "15": {"names": ["omero.policy.binary_access"], "sha256": sha256(json.dumps(wanted, sort_keys=True))}
    }
    assert result.operations[SERVER] == [f"{SECTION} | Apply OMERO.server per-group settings"]

    # The password: only in the 0600 file, never in a command, an operation name or the output
    # (and its root-only staged copy, removed in the same command that writes the file)
    assert sorted(path for path, body in uploads.items() if PASSWORD in body) == sorted(
        [secret, result.staged(SERVER)[secret]])
    assert not [c for c in result.commands[SERVER] if PASSWORD in c]
    assert not [name for name in result.operations[SERVER] if PASSWORD in name]
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err + caplog.text


def test_group_settings_already_recorded_run_nothing():
    wanted = {"omero.policy.binary_access": "-read,+write,+image"}
    record = {"15": {"names": ["omero.policy.binary_access"], "sha256": sha256(json.dumps(wanted, sort_keys=True))}}
    result = run({SERVER: server_host(groups_record=record)}, GROUP_DATA)
    assert result.operations[SERVER] == [f"{SECTION} | Apply OMERO.server per-group settings"]
    assert result.changes(SERVER) == [] and result.uploads[SERVER] == {}


def test_group_moved_in_the_data_is_removed_from_the_old_group():
    old = {"omero.policy.binary_access": "-read"}
    record = {"15": {"names": ["omero.policy.binary_access"], "sha256": sha256(json.dumps(old, sort_keys=True))}}
    data = {**GROUP_DATA, "omero_web_omero_server_group_config": {16: {"omero.policy.binary_access": "-read"}}}
    result = run({SERVER: server_host(groups_record=record)}, data)
    assert json.loads(result.uploads[SERVER][f"{STAGING}/group-config.json"])["groups"] == {
        "15": {"omero.policy.binary_access": None},
        "16": {"omero.policy.binary_access": "-read"},
    }
    assert list(json.loads(result.uploads[SERVER][GROUPS_RECORD])) == ["16"]


def test_removing_recorded_group_settings_without_a_password_fails_before_any_change():
    record = {"15": {"names": ["omero.policy.binary_access"], "sha256": "x"}}
    with pytest.raises(PyinfraError, match="omero_web_omero_server_admin_password"):
        run({SERVER: server_host(groups_record=record)}, {})


def test_group_config_must_name_the_admin_password():
    # the lead's validation: before any host is contacted
    from model.settings import ValidationError, validate

    with pytest.raises(ValidationError, match="needs omero_web_omero_server_admin_password"):
        validate({"omero_web_omero_server_group_config": {15: {"omero.policy.binary_access": "-read"}}})


# Pure planning

def cfg(**values):
    return {k.replace("__", "."): {"sha256": sha256(v), "value": v} for k, v in values.items()}


def test_list_item_already_in_the_default_leaves_the_property_unset():
    changes = plan_server_changes({}, {SCRIPTS: DEFAULT_SCRIPTS}, None, {}, {SCRIPTS: ["/omero/export_scripts/Make_Movie.py"]})
    assert changes["set"] == {} and changes["unset"] == []
    assert changes["record"] == {"set": [], "append": {SCRIPTS: ["/omero/export_scripts/Make_Movie.py"]}}


def test_list_items_added_to_the_current_value_once():
    current = {SCRIPTS: {"sha256": sha256("/a.py, /b.py"), "value": "/a.py, /b.py"}}
    changes = plan_server_changes(current, {SCRIPTS: DEFAULT_SCRIPTS}, None, {}, {SCRIPTS: ["/b.py", "/c.py"]})
    assert changes["set"] == {SCRIPTS: "/a.py,/b.py,/c.py"}
    again = plan_server_changes(cfg(**{SCRIPTS: "/a.py,/b.py,/c.py"}), {}, changes["record"], {}, {SCRIPTS: ["/b.py", "/c.py"]})
    assert not (again["set"] or again["unset"] or again["record_changed"])


def test_group_plan():
    desired = {"15": {"omero.policy.binary_access": "-read", "omero.x": None}}
    first = plan_group_changes(desired, None)
    assert first["apply"] == desired and first["changed"]
    assert first["record"]["15"]["names"] == ["omero.policy.binary_access"]
    assert plan_group_changes(desired, first["record"]) == {"apply": {}, "record": first["record"], "changed": False}
    assert plan_group_changes({}, first["record"])["apply"] == {"15": {"omero.policy.binary_access": None}}


# The group script, run here against a stand-in for the server venv's omero-py

FAKE_OMERO = r'''
import json, os
STATE = os.environ["FAKE_OMERO_STATE"]

class ServerError(Exception):
    pass

class _Group:
    def __init__(self, gid, config):
        self.gid, self._config = gid, config
    def getConfig(self):
        return self._config
    def setConfig(self, config):
        self._config = config

class _Query:
    def __init__(self, groups):
        self.groups = groups
    def get(self, kind, gid, ctx):
        assert kind == "ExperimenterGroup" and ctx == {"omero.group": "-1"}
        if str(gid) not in self.groups:
            raise ServerError("no such group")
        from omero.model import NamedValue
        return _Group(gid, [NamedValue(n, v) for n, v in self.groups[str(gid)]])

class _Update:
    def __init__(self, state):
        self.state = state
    def saveAndReturnObject(self, group):
        self.state["groups"][str(group.gid)] = [[nv.name, nv.value] for nv in group.getConfig()]
        self.state["saved"].append(group.gid)
        return group

class _Session:
    def __init__(self, state):
        self.state = state
    def getQueryService(self):
        return _Query(self.state["groups"])
    def getUpdateService(self):
        return _Update(self.state)

class client:
    def __init__(self, host=None, port=None):
        self.state = json.load(open(STATE))
        self.state["connected"] = [host, port]
    def createSession(self, user, password):
        if [user, password] != self.state["login"]:
            raise ServerError("bad login")
        return _Session(self.state)
    def closeSession(self):
        self.state["closed"] = True
        json.dump(self.state, open(STATE, "w"))
'''
FAKE_MODEL = '''
class NamedValue:
    def __init__(self, name, value):
        self.name, self.value = name, value
'''


def test_group_script_applies_map_set_semantics_and_deletes_the_password(tmp_path):
    package = tmp_path / "lib" / "omero"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_OMERO)
    (package / "model" / "__init__.py").write_text(FAKE_MODEL)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({
        "login": ["root", PASSWORD], "saved": [],
        "groups": {"15": [["omero.policy.binary_access", "+read"], ["other", "kept"]], "16": [["x", "1"]], "17": []},
    }))
    script, request, secret = tmp_path / "script.py", tmp_path / "request.json", tmp_path / "pw"
    script.write_text(GROUP_SCRIPT)
    secret.write_text(PASSWORD + "\n")
    request.write_text(json.dumps({"host": "localhost", "port": 4064, "user": "root", "groups": {
        "15": {"omero.policy.binary_access": "-read,+write,+image"},
        "16": {"x": None},
        "17": {"omero.policy.binary_access": "-read"},
    }}))
    env = {"PYTHONPATH": str(tmp_path / "lib"), "FAKE_OMERO_STATE": str(state), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(script), str(request), str(secret)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not secret.exists()
    after = json.loads(state.read_text())
    assert after["connected"] == ["localhost", 4064] and after["closed"]
    assert after["groups"] == {
        "15": [["omero.policy.binary_access", "-read,+write,+image"], ["other", "kept"]],
        "16": [],
        "17": [["omero.policy.binary_access", "-read"]],
    }
    assert PASSWORD not in done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "ExperimenterGroup:15 config: set omero.policy.binary_access",
        "ExperimenterGroup:16 config: removed x",
        "ExperimenterGroup:17 config: set omero.policy.binary_access",
    ]

    # Run again: already as wanted, nothing saved; an unknown group fails clearly
    secret.write_text(PASSWORD + "\n")
    request.write_text(json.dumps({"host": "localhost", "port": 4064, "user": "root", "groups": {
        "15": {"omero.policy.binary_access": "-read,+write,+image"}, "99": {"x": "1"},
    }}))
    state.write_text(json.dumps({**after, "saved": []}))
    again = subprocess.run([sys.executable, str(script), str(request), str(secret)], env=env,
                           capture_output=True, text=True)
    assert again.returncode == 1 and "No OMERO group with id 99" in again.stderr
    assert "already as wanted" in again.stdout and json.loads(state.read_text())["saved"] == []
    assert not secret.exists()

    # A wrong password fails and still leaves no password file behind
    secret.write_text("wrong\n")
    wrong = subprocess.run([sys.executable, str(script), str(request), str(secret)], env=env,
                           capture_output=True, text=True)
    assert wrong.returncode != 0 and "bad login" in wrong.stderr and not secret.exists()


@pytest.mark.parametrize("arguments, private", [
    ({"_sudo": False, "_su_user": None, "_doas": False, "_dzdo": False}, False),
    ({"_sudo": True, "_su_user": None, "_doas": False, "_dzdo": False}, True),
    ({"_sudo": False, "_su_user": "root", "_doas": False, "_dzdo": False}, True),
    (None, True),  # not known: the careful way
])
def test_uploads_use_a_private_folder_exactly_when_pyinfra_copies_through_a_temporary_file(monkeypatch, arguments,
                                                                                            private):
    """Connected as root pyinfra writes the destination itself (SFTP); under sudo/su/doas/dzdo it
    uploads to a temporary file as the SSH user first: that file must be in a 0700 folder."""
    from pyinfra.api import FileUploadCommand

    from host import uploads

    class Host:
        current_op_global_arguments = arguments

        @staticmethod
        def get_temp_filename():
            return "/tmp/PRIVATE"

    monkeypatch.setattr(uploads, "host", Host)
    commands = list(uploads.private_upload("secret", "/var/lib/omeroweb-deploy/staging/x"))
    upload = [c for c in commands if isinstance(c, FileUploadCommand)]
    assert len(upload) == 1 and upload[0].dest == "/var/lib/omeroweb-deploy/staging/x"
    if private:
        assert [str(c) for c in commands if c is not upload[0]] == ["umask 077 && mkdir -m 700 /tmp/PRIVATE",
                                                                   "rm -rf /tmp/PRIVATE"]
        assert upload[0].remote_temp_filename == "/tmp/PRIVATE/x"
    else:
        assert commands == upload and upload[0].remote_temp_filename is None
