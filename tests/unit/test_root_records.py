"""
What root decides from, and what root keeps out of others' reach, on simulated hosts:

- the record of the deployed apps (what root uninstalls) is root's, in the root-only state
  folder, one per venv; the copy earlier releases kept in OMERODIR (which the OMERO.web
  account writes) is never read, only removed when root's is first made; an upgrade keeps
  and restores root's copy as root;
- OMERO.web's file sessions (named after their keys) live in OMERODIR/var/tmp on init.d
  hosts too, never in the shared /tmp: the init.d script (run here with a real bash and a
  stand-in ``su``), the daily cron job and ``clearsessions`` set its TMPDIR;
- a pip index URL with credentials travels only in the root-only pip.conf: never in a command
  or an operation's name;
- a JSON null inside a list or mapping bound for a property is refused before connecting,
  naming the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
import subprocess

import pytest

from host import snapshot as host_state
from operations.apps import record_content
from model.omero_install import STATE_DIR, OmeroInstall
from model.settings import ValidationError, validate
from model.units import TEMPLATES, initd_variables
from tests.unit.simulate import SimulatedHost, simulate

VENV, OMERODIR, USER = "/opt/omero/web/venv3", "/opt/omero/web/omero-web", "omero-web"
INSTALL = OmeroInstall(VENV, OMERODIR, USER)
RECORD = INSTALL.apps_record
LEGACY = f"{OMERODIR}/etc/omeroweb-deploy-apps.json"
FIGURE = {"spec": "omero-figure", "app": "omero_figure"}
# the host-state reading (root-owned paths, one command) and the read of root's record
STATE_READING = re.compile(r"^sh -c '.*for p in \"\$@\"; do\nif \[ -L", re.S)
RECORD_READ = re.compile(r"#record.* " + re.escape(RECORD))


@pytest.fixture(autouse=True)
def known_digest_key(monkeypatch):
    """The host-state reading's digests are keyed per run (when they are): a known key here, so
    that a simulated reading can show a file as it is."""
    if hasattr(host_state, "run_key"):
        monkeypatch.setattr(host_state, "run_key", lambda: "test-key")


def digest(content: str) -> str:
    keyed = getattr(host_state, "keyed_sha256", None)
    return keyed(content) if keyed else hashlib.sha256(content.encode()).hexdigest()


def root_record_line(content: str, mode: str = "600", owner: str = "root") -> str:
    """The host-state reading's line for root's record holding ``content``."""
    return f"F|regular file|{owner}|{owner}|{mode}|{digest(content)}|{RECORD}"


def host_with(record: str | None, legacy: str | None = None, **more) -> SimulatedHost:
    """A Debian 12 host whose root record holds ``record`` (None: none) and whose OMERODIR holds
    ``legacy`` as the old record (answered to whoever reads it)."""
    responses = {}
    if record is not None:
        responses[STATE_READING] = [root_record_line(record)]
        responses[RECORD_READ] = ["#record", *record.splitlines()]
    if legacy is not None:
        responses[re.compile(re.escape(LEGACY))] = ["#record", *legacy.splitlines()]
    return SimulatedHost("debian", "12", extra_responses=responses, **more)


def recorded(apps: list[dict]) -> str:
    return record_content(VENV, [{"app": a["app"], "distribution": a["spec"]} for a in apps])


# --- the apps record ------------------------------------------------------------------------


def test_apps_record_is_roots_in_the_state_folder_one_per_venv():
    assert os.path.dirname(RECORD) == STATE_DIR and not RECORD.startswith(OMERODIR)
    assert RECORD == f"{STATE_DIR}/apps-{hashlib.sha256(VENV.encode()).hexdigest()[:16]}.json"
    assert OmeroInstall("/srv/venv", OMERODIR, USER).apps_record != RECORD  # per venv
    assert OmeroInstall(VENV, "/srv/omero-web", USER).apps_record == RECORD  # the apps live in the venv
    assert INSTALL.legacy_apps_record == LEGACY
    assert all(path.startswith(OMERODIR + "/") for path in INSTALL.rollback_files)  # the account's to copy
    assert RECORD not in INSTALL.rollback_files and os.path.dirname(INSTALL.apps_rollback) == STATE_DIR


def test_hostile_record_in_omerodir_is_never_read_and_uninstalls_nothing():
    """A host an earlier release deployed (its record in OMERODIR), whose OMERO.web account wrote
    there names root would uninstall (OMERO.web's own dependencies, pip): nothing is read from it,
    nothing uninstalled; root's record is made from the data, the old one removed as the account."""
    hostile = json.dumps([{"app": "x", "distribution": name}
                          for name in ("pillow", "omero-figure", "omero-web", "pip", "setuptools", "django-redis")])
    sim = simulate(host_with(None, legacy=hostile), {"omero_web_apps": [FIGURE]})
    assert not sim.find(r"pip uninstall")
    assert not sim.find(r"#record.*" + re.escape(LEGACY))  # never read, by anyone
    assert sim.find(r"^runuser -u omero-web -- sh -c .*rm -f.* sh " + re.escape(LEGACY) + "$")
    made = sim.find(r"mv -fTZ \S+ " + re.escape(RECORD) + " ")
    assert len(made) == 1 and made[0].startswith("chown root:root /var/lib/omeroweb-deploy/staging/")
    assert "chmod 600 " in made[0]
    assert json.loads(sim.uploads[RECORD]) == {"venv": VENV, "apps": [{"app": "omero_figure",
                                                                         "distribution": "omero-figure"}]}
    # written by root through its own staging, never as the account
    assert not sim.find(r"^runuser .* " + re.escape(RECORD))


def test_removed_app_is_uninstalled_from_roots_record_once():
    sim = simulate(host_with(recorded([FIGURE])), {})
    assert [c.split("pip uninstall --yes ", 1)[1] for c in sim.find(r"pip uninstall")] == ["omero-figure"]
    assert json.loads(sim.uploads[RECORD]) == {"venv": VENV, "apps": []}
    assert not sim.find(r"rm -f.* " + re.escape(LEGACY))  # root's record existed: no migration
    # the record as the data has it: not even read
    again = simulate(host_with(recorded([])), {})
    assert not again.find(r"pip uninstall|#record") and RECORD not in again.uploads


def test_kept_app_leaves_the_record_unread():
    sim = simulate(host_with(recorded([FIGURE])), {"omero_web_apps": [FIGURE]})
    assert not sim.find(r"pip uninstall|#record|" + re.escape(LEGACY)) and RECORD not in sim.uploads


def test_a_record_root_wrote_is_still_checked_name_by_name():
    """Defence in depth: even root's record never uninstalls OMERO.web, its requirements or pip."""
    forged = json.dumps({"venv": VENV, "apps": [{"app": "x", "distribution": name} for name in
                         ("omero-figure", "omero-web", "OMERO_WEB", "whitenoise", "zeroc-ice", "pip", "-r /etc/x",
                          "django-redis")] + ["not a mapping", {"distribution": 7}]})
    sim = simulate(host_with(forged), {"omero_web_redis": True})  # django-redis: a feature's requirement
    assert [c.split("pip uninstall --yes ", 1)[1] for c in sim.find(r"pip uninstall")] == ["omero-figure"]


@pytest.mark.parametrize("content", ['{"venv": "/opt/omero/web/venv3", "apps": [{"app"', "", "[]", "not json"])
def test_corrupted_root_record_fails_naming_it_and_uninstalls_nothing(content):
    sim = simulate(host_with(content), {})
    failure = sim.find(r"is corrupted")
    assert len(failure) == 1 and RECORD in failure[0] and f"rm {RECORD}" in failure[0]
    assert "no app was uninstalled" in failure[0]
    assert not sim.find(r"pip uninstall")
    # (the failure ends the host's run: the record is rewritten only by a later operation)
    written = sim.find(r"mv -fTZ \S+ " + re.escape(RECORD) + " ")
    assert not written or sim.commands.index(failure[0]) < sim.commands.index(written[0])


def test_upgrade_keeps_and_restores_roots_record_as_root():
    from host.upgrade import drop_copies, restore, snapshot
    taken, put_back, dropped = snapshot(INSTALL), restore(INSTALL), drop_copies(INSTALL)
    account, root = taken.split(" && sh -c ")
    assert account.startswith("runuser -u omero-web -- ") and RECORD not in account
    assert root.endswith(f" sh {INSTALL.apps_rollback} {RECORD}") and "runuser" not in root
    assert put_back.split(" && sh -c ")[1].endswith(f" sh {INSTALL.apps_rollback} {RECORD}")
    assert f"rm -rf {INSTALL.apps_rollback} {INSTALL.previous_venv}" in dropped


def _sh(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True)


def test_roots_snapshot_and_restore_with_a_real_shell(tmp_path):
    """The scripts root runs on its record: a copy only when none exists, put back as it was,
    and a record absent at the snapshot removed by the restore."""
    from host.upgrade import _RESTORE, _SNAPSHOT
    record, kept = tmp_path / "apps-x.json", tmp_path / "apps-x.rollback"
    record.write_text("before\n")
    assert _sh(_SNAPSHOT, str(kept), str(record)).returncode == 0
    record.write_text("after\n")
    assert _sh(_SNAPSHOT, str(kept), str(record)).returncode == 0  # the existing copy is the good one
    assert _sh(_RESTORE, str(kept), str(record)).returncode == 0
    assert record.read_text() == "before\n" and not kept.exists()
    record.unlink()
    assert _sh(_SNAPSHOT, str(kept), str(record)).returncode == 0
    record.write_text("made during the upgrade\n")
    assert _sh(_RESTORE, str(kept), str(record)).returncode == 0
    assert not record.exists() and not kept.exists()


def test_migration_to_a_new_omerodir_does_not_carry_the_apps_record():
    data = {"omero_web_omerodir": "/srv/web/omero-web", "omero_web_migrate_from_omerodir": OMERODIR}
    sim = simulate(SimulatedHost("debian", "12", existing_paths=(f"{OMERODIR}/etc/grid/config.xml",)), data)
    assert sim.find(r"omeroweb-deploy-managed.json /srv/web/omero-web/etc/omeroweb-deploy-managed.json$")
    assert not sim.find(r"cp -- .*omeroweb-deploy-apps.json")


# --- OMERO.web's sessions on init.d hosts ----------------------------------------------------


def _render_initd(install: OmeroInstall) -> str:
    import jinja2
    template = jinja2.Template((TEMPLATES / "omero-web.init.j2").read_text(), keep_trailing_newline=True)
    return template.render(**initd_variables(install))


@pytest.mark.parametrize("odd", ["plain", "with space", "it's $(id) `x`"])
def test_initd_script_starts_omero_web_with_its_private_tmpdir(tmp_path, odd):
    """The script run by a real bash, ``su`` standing in (it runs the command it is given with
    bash, as ``su -c`` does): ``omero web start`` sees TMPDIR=OMERODIR/var/tmp, made 0700."""
    base = tmp_path / odd
    venv, omerodir = base / "venv", base / "omero-web"
    (venv / "bin").mkdir(parents=True)
    (omerodir / "var").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("")
    seen = tmp_path / "seen"
    omero = venv / "bin" / "omero"
    omero.write_text(f'#!/bin/sh\nprintf "%s\\n" "TMPDIR=$TMPDIR" "OMERODIR=$OMERODIR" "$*" > {shlex.quote(str(seen))}\n')
    omero.chmod(0o755)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "su").write_text('#!/bin/bash\n# su - USER -s /bin/bash -c COMMAND\nexec env -i PATH="$PATH" /bin/bash -c "$6"\n')
    (fake / "su").chmod(0o755)
    script = tmp_path / "omero-web"
    script.write_text(_render_initd(OmeroInstall(str(venv), str(omerodir), "omero-web")))
    done = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True,
                          env={"PATH": f"{fake}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    tmpdir = omerodir / "var" / "tmp"
    assert seen.read_text().splitlines() == [f"TMPDIR={tmpdir}", f"OMERODIR={omerodir}", "web start"]
    assert stat.S_IMODE(tmpdir.stat().st_mode) == 0o700


def test_initd_hosts_make_the_owner_only_tmpdir_and_clear_sessions_there():
    sim = simulate(SimulatedHost("debian", "12", systemd=False), {})
    made = sim.find(r"^runuser -u omero-web -- sh -c .*mkdir -p.* sh 700 .*/opt/omero/web/omero-web/var/tmp")
    assert made
    script = sim.uploads["/etc/init.d/omero-web"]
    assert "WEB_TMPDIR=/opt/omero/web/omero-web/var/tmp" in script
    cron = sim.uploads["/etc/cron.d/omero-web-clearsessions"]
    assert " OMERODIR=/opt/omero/web/omero-web TMPDIR=/opt/omero/web/omero-web/var/tmp PATH=" in cron


# --- a pip index URL with credentials --------------------------------------------------------


def test_pip_index_credentials_only_in_the_private_pip_conf():
    password = "s3cretIdx-" + "q" * 8
    data = {"omero_web_pip_index_url": f"https://alice:{password}@pypi.example.org/simple",
            "omero_web_pip_extra_index_urls": [f"https://bob:{password}x@mirror.example.org/simple"],
            "_sudo": True}
    sim = simulate(SimulatedHost("debian", "12"), data)
    conf = f"{VENV}/pip.conf"
    assert f"alice:{password}@" in sim.uploads[conf] and f"bob:{password}x@" in sim.uploads[conf]
    assert not [c for c in sim.commands if password in c]
    assert not [name for name in sim.operations if password in name]
    # the only uploads holding it: the staged copy and pip.conf itself, moved by root into place 0600
    holding = {path for path, content in sim.uploads.items() if password in str(content)} - {conf}
    assert holding and all(path.startswith(f"{STATE_DIR}/staging/") for path in holding)
    placed = sim.find(r"mv -fTZ \S+ " + re.escape(conf) + " ")
    assert placed and "chown root:root " in placed[0] and "chmod 600 " in placed[0]


def test_pip_index_password_is_masked_in_the_bundle():
    from model.secrecy import mask_text
    line = "Looking in indexes: https://pypi.org/simple, https://bob:s3cretIdx@127.0.0.1:9/simple"
    assert "s3cretIdx" not in mask_text(line)
    assert "s3cretIdx" not in mask_text("extra-index-url = https://bob:s3cretIdx@h/simple", ["s3cretIdx"])


# --- JSON nulls inside property values -------------------------------------------------------

NULL = "expected no JSON null (None) inside a list or mapping"


@pytest.mark.parametrize("data, names", [
    ({"omero_web_config_append": {"omero.web.apps": [None]}}, "omero_web_config_append = {'omero.web.apps': [None]}: "
                                                             "omero.web.apps: "),
    ({"omero_web_config": {"omero.web.ui.top_links": [["Help", None]]}}, "omero.web.ui.top_links: "),
    ({"omero_web_config": {"omero.web.login_redirect": {"redirect": None}}}, "omero.web.login_redirect: "),
    ({"omero_web_apps": [{**FIGURE, "config": {"omero.web.figure.x": [1, None]}}]}, "app #1 config: omero.web.figure.x: "),
    ({"omero_web_apps": [{**FIGURE, "top_links": [["Figure", None]]}]}, "app #1 top_links: item #1: "),
    ({"omero_web_open_with": [["Viewer", "url", {"label": None}]]}, "omero_web_open_with = "),
    ({"omero_web_login_redirect": {"redirect": [None]}}, "omero_web_login_redirect = "),
    ({"omero_web_omero_server_config": {"omero.client.ui.x": {"a": None}}}, "omero.client.ui.x: "),
    ({"omero_web_omero_server_config_append": {"omero.policy.x": [None]}}, "omero.policy.x: "),
    ({"omero_web_omero_server_group_config": {3: {"omero.client.x": [None]}}}, "group 3: omero.client.x: "),
])
def test_json_null_inside_a_value_is_refused_naming_the_key(data, names):
    with pytest.raises(ValidationError) as err:
        validate(data, host="web1")
    message = str(err.value)
    assert names in message and NULL in message, message


def test_a_whole_property_set_to_none_still_means_unset():
    settings = validate({"omero_web_config": {"omero.web.debug": None}})
    assert settings.config["omero.web.debug"] is None


def test_no_record_yet_reports_nothing_and_anything_but_a_file_is_refused():
    assert not simulate(SimulatedHost("debian", "12"), {}).find(r"is corrupted|pip uninstall")
    link = f"F|symbolic link|||000|-|{RECORD}"
    host = SimulatedHost("debian", "12", extra_responses={STATE_READING: [link], RECORD_READ: ["#not-a-file"]})
    sim = simulate(host, {})
    refusal = sim.find(r"omeroweb-deploy: refusing to use " + re.escape(RECORD) + ": it is a symbolic link")
    assert len(refusal) == 1 and not sim.find(r"pip uninstall")
