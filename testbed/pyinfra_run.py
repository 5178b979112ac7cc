"""Run the real ``pyinfra`` command line against test targets and read its results table."""

from __future__ import annotations

import re
from contextlib import contextmanager
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float

    def rows(self) -> dict[str, tuple[int, int, int, int]]:
        """Results table: operation name -> (hosts, success, error, no change); '-' is 0."""
        rows = {}
        in_table = False
        for line in self.output.splitlines():
            if line.strip().startswith("Operation") and "No Change" in line:
                in_table = True
                continue
            if not in_table:
                continue
            match = re.match(r"^\s+(.+?)\s{2,}(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
            if not match:
                continue
            counts = tuple(0 if v == "-" else int(v) for v in match.groups()[1:])
            rows[match.group(1)] = counts
        return rows

    @property
    def changed(self) -> int:
        return self.rows()["Grand total"][1]

    @property
    def errors(self) -> int:
        return self.rows()["Grand total"][2]

    def changed_operations(self) -> list[str]:
        return [name for name, counts in self.rows().items() if name != "Grand total" and counts[1]]

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def runs_summary(runs: dict[str, Run]) -> str:
    """One line per named run: its exit status, seconds and changed operations (for a scenario's log)."""
    return "\n".join(f"run {name}: rc={run.returncode} {run.seconds:.0f}s changed={run.rows().get('Grand total')}"
                     for name, run in runs.items())


def write_inventory(path: Path, groups: dict[str, list[tuple[str, dict]]]) -> Path:
    body = "".join(f"{group} = {hosts!r}\n" for group, hosts in groups.items())
    path.write_text(body)
    return path


def run_pyinfra(inventory: Path, *args: str, log: Path | None = None, timeout: float = 3600) -> Run:
    """``pyinfra -y INVENTORY deploy.py ARGS`` from the repository root."""
    started = time.monotonic()
    command = [PYINFRA, "-y", str(inventory), *(args or ("deploy.py",))]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if log:
        log.write_text(output)
    return Run(result.returncode, output, time.monotonic() - started)


def target_data(target, **data) -> tuple[str, dict]:
    """A test target's inventory entry with the data every test deploy needs."""
    from testbed.cache import cache_dir
    from testbed.targets import host_ca_certificates

    name, host_data = target.pyinfra_host()
    host_data.update(
        omero_web_extra_ca_certificates=host_ca_certificates(),  # the TLS proxy of this environment
        omero_web_ice_cache_dir=str(cache_dir() / "wheels"),
        **data,
    )
    return name, host_data


class Deployer:
    """Runs ``pyinfra INVENTORY deploy.py ARGS`` on one target, with data per call; keeps logs."""

    def __init__(self, target, workdir: Path, group: str, **defaults):
        self.target, self.workdir, self.group, self.defaults = target, workdir, group, defaults
        self.runs: list[Run] = []

    def __call__(self, *args: str, **data) -> Run:
        number = len(self.runs) + 1
        entry = target_data(self.target, **{**self.defaults, **data})
        inventory = write_inventory(self.workdir / f"inventory{number}.py", {self.group: [entry]})
        run = run_pyinfra(inventory, "deploy.py", *args, log=self.workdir / f"run{number}.log")
        self.runs.append(run)
        return run

    def deployed(self) -> "Deployer":
        """Deploy once with the defaults (a module's first run on its target): it must succeed."""
        first = self()
        assert first.returncode == 0, first.tail()
        return self

    def assert_rerun_changes_nothing(self, *args: str, **data) -> Run:
        """Run again with the same arguments and data: it must succeed and change nothing."""
        again = self(*args, **data)
        assert again.returncode == 0, again.tail()
        assert again.changed == 0, again.changed_operations()
        return again


def sh(target, command: str) -> str:
    """Run a command in a target as root (``docker exec``); it must succeed; return its stripped output."""
    code, out = target.exec(command)
    assert code == 0, f"{command}: {out}"
    return out.strip()


def put(target, path: str, data: bytes, mode: int = 0o600) -> None:
    """Write a root-owned file into a target with ``put_archive``: its content is never on a command line."""
    import io
    import os
    import tarfile

    from testbed.engine import docker_client

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(os.path.basename(path))
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    assert docker_client().containers.get(target.container_id).put_archive(os.path.dirname(path), buffer.getvalue())


def ssh_ok(target, command: str) -> str:
    """Run a command on a systemd target over SSH; it must succeed; return its stripped output."""
    code, out = target.ssh(command)
    assert code == 0, out
    return out.strip()


@contextmanager
def systemd_target(release: str, name: str, ports: tuple[int, ...] = (80,)):
    """A systemd target of ``release`` reached over SSH (``ports`` published), removed afterwards."""
    from testbed.images import ensure_image
    from testbed.targets import remove_targets, start_systemd_target

    target = start_systemd_target(ensure_image(release), name=name, ports=ports)
    try:
        yield target
    finally:
        remove_targets([target])
