"""
Which hosts failed and why, printed at the very end of a run (``FailureSummary``).
"""

from __future__ import annotations

import atexit

from pyinfra.api.state import BaseStateCallback


class FailureSummary(BaseStateCallback):
    """
    Remembers where each host failed, and prints at the very end of the run which hosts
    failed and why (the failed operation and the last lines of its output): with many
    hosts the reason is otherwise far up in the output, and the results table has no hosts.
    """

    def __init__(self):
        self.state, self.failures = None, {}
        atexit.register(self.print_summary)

    def host_connect_error(self, run_state, host, error):
        self.failures.setdefault(host.name, ("connecting", None, str(error)))

    def operation_host_error(self, run_state, host, op_hash, *args):
        self.state = run_state
        names = ", ".join(sorted(run_state.get_op_meta(op_hash).names))
        self.failures.setdefault(host.name, (names, op_hash, ""))

    def print_summary(self):
        if not self.failures:
            return
        lines = [f"--> Failed hosts ({len(self.failures)}):"]
        for name, (operation, op_hash, reason) in sorted(self.failures.items()):
            if op_hash:
                host = self.state.inventory.get_host(name)
                meta = self.state.get_op_data_for_host(host, op_hash).operation_meta
                try:
                    lines_out = meta.stderr_lines or meta.stdout_lines
                except (RuntimeError, AssertionError):  # the operation did not complete on this host
                    lines_out = []
                tail = [line.strip() for line in lines_out if line.strip()][-4:]
                reason = " / ".join(tail)
            lines.append(f"    {name}: {operation}: {reason or 'see its output above'}")
        print("\n".join(lines), flush=True)
