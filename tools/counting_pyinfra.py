"""
pyinfra's command line, counting per host the commands its SSH connector runs (facts and
operations alike, the commands of a sudo upload included) and the files it uploads; the
counts are written as JSON (``{"commands": {host: n}, "uploads": {host: n}}``) to the file
named by ``$OMEROWEB_BENCH_COUNTS`` when pyinfra exits.

The benchmark runs the deploy through this instead of ``pyinfra --debug``, whose logging of
every command and fact cost the control side 0.1-0.2 s of CPU per run: the CPU time it
measures is then a plain run's, what a user's run costs. Counting is two integer additions
per command.

    OMEROWEB_BENCH_COUNTS=counts.json python -m tools.counting_pyinfra -y INVENTORY deploy.py
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections import Counter

COUNTS_ENV = "OMEROWEB_BENCH_COUNTS"


def count_calls(connector_class) -> dict[str, Counter]:
    """Wrap ``run_shell_command`` and ``put_file`` of ``connector_class`` to count them per host."""
    counts = {"commands": Counter(), "uploads": Counter()}
    run, put = connector_class.run_shell_command, connector_class.put_file

    def run_shell_command(self, *args, **kwargs):
        counts["commands"][self.host.name] += 1
        return run(self, *args, **kwargs)

    def put_file(self, *args, **kwargs):
        counts["uploads"][self.host.name] += 1
        return put(self, *args, **kwargs)

    connector_class.run_shell_command, connector_class.put_file = run_shell_command, put_file
    return counts


def write_counts(counts: dict[str, Counter], path: str) -> None:
    with open(path, "w") as handle:
        json.dump({kind: dict(counter) for kind, counter in counts.items()}, handle)


def main() -> int:
    # pyinfra_cli first: it applies gevent's monkey patching before socket users are imported
    from pyinfra_cli.main import main as pyinfra_main
    from pyinfra.connectors.ssh import SSHConnector

    path = os.environ[COUNTS_ENV]
    counts = count_calls(SSHConnector)
    atexit.register(write_counts, counts, path)
    sys.argv[0] = "pyinfra"
    return pyinfra_main()


if __name__ == "__main__":
    sys.exit(main())
