"""
``OmeroInstall.omero_commands``: several ``omero`` commands in one ``omero load`` process.

The here-document is run by a real ``sh``, in front of a stand-in for ``omero load`` that
reads its standard input as omero-py's ``LoadControl`` does (each line ``shlex``-split, the
first failing command ends the run with its status): every argument must arrive exactly as
given, however it is quoted, and nothing after a failure may run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from model.omero_install import OMERO_COMMANDS_END, OmeroInstall

INSTALL = OmeroInstall(venv="/opt/omero/web/venv3", omerodir="/opt/omero/web/omero-web", user="omero-web")

#: omero-py's LoadControl._load_filehandle with invoke(line, strict=True): shlex.split per line.
LOAD = """
import json, shlex, sys
log = open(sys.argv[1], "a")
for line in sys.stdin:
    args = shlex.split(line)
    if not args:
        continue
    log.write(json.dumps(args) + "\\n"); log.flush()
    if args[0] == "fail":
        sys.exit(3)
"""

TRICKY = [
    ["config", "load", "-q", "/opt/omero/web/omero-web/etc/.omeroweb-deploy/config.properties"],
    ["config", "set", "omero.web.ui.top_links"],
    ["config", "append", "--set", "omero.web.middleware",
     json.dumps({"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"})],
    ["config", "append", "--set", "omero.web.ui.top_links",
     json.dumps(["It's $HOME `id` \\n", {"viewname": "x", "query_string": {"a": "b c"}}])],
    ["config", "remove", "omero.web.apps", json.dumps("omero_figure")],
]


def run_session(tmp_path, commands, then=None):
    """Run the command with the stand-in in place of ``runuser ... omero load``; (status, argv seen)."""
    command = INSTALL.omero_commands(commands, then=then)
    prefix = INSTALL.omero_cmd("load")
    assert command.startswith(prefix + f" <<'{OMERO_COMMANDS_END}'")
    log = tmp_path / "seen.jsonl"
    stand_in = f"{shlex.quote(sys.executable)} -c {shlex.quote(LOAD)} {shlex.quote(str(log))}"
    done = subprocess.run(["sh", "-c", stand_in + command[len(prefix):]], capture_output=True, text=True)
    seen = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, seen


def test_every_argument_arrives_as_given_in_order(tmp_path):
    done, seen = run_session(tmp_path, TRICKY, then=f"echo then > {tmp_path}/then")
    assert done.returncode == 0, done.stderr
    assert seen == TRICKY
    assert (tmp_path / "then").read_text() == "then\n"


def test_the_first_failure_stops_the_rest_and_then(tmp_path):
    commands = [TRICKY[0], ["fail", "here"], TRICKY[2]]
    done, seen = run_session(tmp_path, commands, then=f"echo then > {tmp_path}/then")
    assert done.returncode == 3
    assert seen == commands[:2]
    assert not (tmp_path / "then").exists()


def test_one_command_is_omero_itself():
    assert INSTALL.omero_commands([["config", "set", "a.b", "1"]]) == INSTALL.omero_cmd("config", "set", "a.b", "1")
    assert INSTALL.omero_commands([["web", "stop"]], then="true") == INSTALL.omero_cmd("web", "stop") + " && true"


@pytest.mark.parametrize("commands", [
    [],
    [["config", "set", "a", "x\ny"], ["config", "set", "b"]],
    [["config", "set", "a", "x\ry"], ["config", "set", "b"]],
    [[OMERO_COMMANDS_END], ["config", "set", "b"]],
])
def test_what_cannot_be_one_line_each_is_refused(commands):
    with pytest.raises(ValueError):
        INSTALL.omero_commands(commands)
