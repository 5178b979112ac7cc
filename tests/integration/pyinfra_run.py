"""Run the real ``pyinfra`` command line against test targets and read its results table."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
