"""
The NGINX site's generator runs only when something it reads changed (issue 15): the
``NginxSite`` fact and the site operations' commands, run here in a real shell against a
stand-in venv (the generator's code, templates and dist-info folders where OMERO.web's are)
and a site file. The generator is a shell command that counts its runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from operations import nginx
from host.facts import NginxSite, site_inputs
from model.omero_install import OmeroInstall

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the venv must be root's, as on a host")


class Host:
    """A stand-in venv, site file and record in ``tmp``; ``generate`` prints SITE and counts its runs."""

    def __init__(self, tmp: Path, site_text: str = "server { proxy_pass http://127.0.0.1:4080; }\n"):
        self.tmp = tmp
        venv = tmp / "venv"
        packages = venv / "lib" / "python3.11" / "site-packages"
        for path, text in {
            "bin/omero": "#!/bin/sh\n",
            "lib/python3.11/site-packages/omero/plugins/web.py": "# generator\n",
            "lib/python3.11/site-packages/omeroweb/settings.py": "# settings\n",
            "lib/python3.11/site-packages/omeroweb/templates/nginx.conf.template": "server {}\n",
        }.items():
            (venv / path).parent.mkdir(parents=True, exist_ok=True)
            (venv / path).write_text(text)
        (venv / "bin" / "omero").chmod(0o755)
        (packages / "omero_web-5.33.2.dist-info").mkdir()
        self.packages = packages
        self.install = OmeroInstall(str(venv), str(tmp / "omerodir"), "omero-web")
        self.site = str(tmp / "omeroweb.conf")
        self.record = nginx.site_record(self.site)
        assert self.record.startswith(nginx.STATE_DIR + "/")
        self.record = str(tmp / Path(self.record).name)  # the same name, in this test's folder
        (tmp / "site.txt").write_text(site_text)
        self.generate = f"{{ echo run >> {tmp}/runs; cat {tmp}/site.txt; }}"

    @property
    def runs(self) -> int:
        path = self.tmp / "runs"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def fact(self, generate: str | None = None) -> dict:
        command = NginxSite().command(self.install, self.site, generate or self.generate, self.record)
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
        return NginxSite().process(out.splitlines())

    def operations(self, monkeypatch, generate: str | None = None) -> list[str]:
        """The commands of the site operation, then of the record operation when the first has none
        (the two share one reading of the fact, as ``fact_until_change`` does while no command runs)."""
        generate = generate or self.generate
        reading = []
        monkeypatch.setattr(nginx, "site_record", lambda site: self.record)
        monkeypatch.setattr(nginx, "fact_until_change",
                            lambda cls, **kwargs: reading[0] if reading else reading.append(self.fact(kwargs["generate"]))
                            or reading[0])
        commands = list(nginx.omeroweb_site._inner(self.install, self.site, generate, test="true"))
        if not commands:
            commands = list(nginx.record_site_inputs._inner(self.install, self.site, generate))
        return [str(c) for c in commands]

    def run(self, commands: list[str]) -> None:
        for command in commands:
            subprocess.run(["sh", "-c", command], check=True)


def sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_generated_once_on_a_fresh_host_then_never_while_nothing_changes(trusted_tmp, monkeypatch):
    host = Host(trusted_tmp)
    # no site yet: the fact does not run the generator (the operation must install it anyway)
    assert host.fact() == {"installed": None, "inputs": host.fact()["inputs"], "generated": None, "recorded": False}
    assert host.fact()["inputs"] and host.runs == 0
    host.run(host.operations(monkeypatch))
    assert host.runs == 1  # generated once, by the operation
    assert Path(host.site).read_text() == (trusted_tmp / "site.txt").read_text()
    recorded = Path(host.record).read_text().splitlines()[0].split()
    assert recorded == [host.fact()["inputs"], sha(Path(host.site).read_text())]
    assert oct(Path(host.record).stat().st_mode & 0o777) == "0o600"
    # converged: the fact says so from the record, the generator does not run, nothing to do
    fact = host.fact()
    assert fact["recorded"] and fact["generated"] == fact["installed"] == sha(Path(host.site).read_text())
    assert host.operations(monkeypatch) == [] and host.runs == 1


@pytest.mark.parametrize("change", ["site edited by hand", "template", "generator code", "OMERO.web version",
                                    "data (the generate command)", "record removed"])
def test_any_input_changed_runs_the_generator_again(trusted_tmp, monkeypatch, change):
    host = Host(trusted_tmp)
    host.run(host.operations(monkeypatch))
    generate = host.generate
    if change == "site edited by hand":
        Path(host.site).write_text("server { listen 81; }\n")
    elif change == "template":
        (host.packages / "omeroweb/templates/nginx.conf.template").write_text("server { listen 1; }\n")
    elif change == "generator code":
        (host.packages / "omero/plugins/web.py").write_text("# patched\n")
    elif change == "OMERO.web version":
        (host.packages / "omero_web-5.33.2.dist-info").rename(host.packages / "omero_web-5.34.0.dist-info")
    elif change == "data (the generate command)":
        generate = generate.replace("cat", "cat -u")
    else:
        Path(host.record).unlink()
    fact = host.fact(generate)
    assert not fact["recorded"] and host.runs == 2  # the fact ran the generator to compare
    commands = host.operations(monkeypatch, generate)
    assert host.runs == 3 and len(commands) == 1
    if change == "site edited by hand":
        # the site is put back (generated again), and recorded with it
        assert "> " + host.site + ".deploy-new" in commands[0]
    else:
        # same output from new inputs: the site is right, only the record is written (no reload)
        assert host.site + ".deploy-new" not in commands[0] and host.record + ".new" in commands[0]
    host.run(commands)
    assert host.fact(generate)["recorded"] and host.operations(monkeypatch, generate) == []
    assert Path(host.site).read_text() == (trusted_tmp / "site.txt").read_text()


def test_a_venv_another_account_can_change_is_not_read_or_run(trusted_tmp):
    host = Host(trusted_tmp)
    Path(host.site).write_text("x")
    (host.packages / "omero/plugins/web.py").chmod(0o666)
    assert host.fact() == {"installed": sha("x"), "inputs": None, "generated": None, "recorded": False}
    assert host.runs == 0


def test_host_output_is_taken_as_hashes_only():
    fact = NginxSite().process(["installed=" + "a" * 64, "inputs=$(reboot)", "generated=" + "b" * 63, "recorded=yes"])
    assert fact == {"installed": "a" * 64, "inputs": None, "generated": None, "recorded": True}
    assert "cut -d' ' -f1" in site_inputs(OmeroInstall("/v", "/d", "u"), "x")


def test_inputs_seen_before_stay_recorded_so_a_rollback_changes_nothing(trusted_tmp, monkeypatch):
    """An upgrade changes the venv (new inputs, same site: recorded), then is rolled back: the
    old inputs are still in the record, the generator does not run; the record keeps 4 lines."""
    host = Host(trusted_tmp)
    host.run(host.operations(monkeypatch))
    web = host.packages / "omero/plugins/web.py"
    for version in range(1, 6):
        web.write_text(f"# version {version}\n")
        host.run(host.operations(monkeypatch))
        assert host.fact()["recorded"]
    lines = Path(host.record).read_text().splitlines()
    assert len(lines) == nginx.RECORD_LINES == len(set(lines))
    runs = host.runs
    web.write_text("# version 3\n")  # back to inputs recorded three upgrades ago
    assert host.fact()["recorded"] and host.operations(monkeypatch) == [] and host.runs == runs
    web.write_text("# version 1\n")  # too old: dropped from the record, generated and recorded again
    assert not host.fact()["recorded"] and host.runs == runs + 1
