"""
The benchmark's pure parts (``tools/benchmark.py`` runs the measurements): its targets,
reading pyinfra's ``--debug`` output, and the result table with its verdicts. Plain values
in, plain values out: unit-tested without containers.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

# Targets of issue #15 (cold and re-run) and issue #7 (fleet)
COLD_RATIO_MAX = 1.0  # cold deploy / walkthrough script
RERUN_RATIO_MAX = 0.1  # no-op re-run / walkthrough script
RERUN_COMMANDS_MAX = 15  # remote commands of a no-op re-run
FLEET_RATIO_MAX = 2.5

_COMMAND = re.compile(r"\[pyinfra\.connectors\.ssh\] Running command on (\S+): ")
_UPLOAD = re.compile(r"\[pyinfra\.connectors\.ssh\] Attempting upload of .* to ")
_OPERATION = re.compile(r"^--> Starting operation: (.+?)\s*$")
_TIMESTAMP = re.compile(r"^\s*(\d+\.\d+) (.*)$")


@dataclass
class Row:
    """One line of the result table."""

    item: str
    measured: str
    target: str = ""
    passed: bool | None = None  # None: informational

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0:
        raise ValueError(f"cannot divide by a non-positive time: {denominator}")
    return numerator / denominator


def at_most(value: float, limit: float) -> bool:
    return value <= limit


def cpu_seconds(before, after) -> float:
    """User + system CPU seconds between two ``resource.getrusage`` readings."""
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def remote_commands(debug_output: str) -> dict[str, int]:
    """Shell commands pyinfra ran per host, counted from ``--debug`` output.

    pyinfra's SSH connector logs ``Running command on HOST: ...`` once for every command
    it executes on the host (facts and operations alike, a sudo retry counted again), so
    this is exact for SSH targets. File uploads are counted apart (:func:`uploads`).
    """
    counts: dict[str, int] = {}
    for line in debug_output.splitlines():
        match = _COMMAND.search(line)
        if match:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def uploads(debug_output: str) -> int:
    """SFTP uploads pyinfra made (all hosts), from ``--debug`` output."""
    return sum(1 for line in debug_output.splitlines() if _UPLOAD.search(line))


def split_timestamps(lines: list[str]) -> list[tuple[float, str]]:
    """``'  12.345 text'`` lines (as :func:`run_timed` writes them) -> [(12.345, 'text')]."""
    result = []
    for line in lines:
        match = _TIMESTAMP.match(line)
        if match:
            result.append((float(match.group(1)), match.group(2)))
    return result


def section_times(timed: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Wall time per deploy section from the ``--> Starting operation: SECTION | op`` lines.

    An operation lasts until the next one starts (all hosts run an operation before the
    next begins); the last one until ``end``. Time before the first operation (connecting,
    planning, facts read while planning) is ``(connect and plan)``.
    """
    starts = [(t, m.group(1)) for t, text in timed if (m := _OPERATION.match(text.strip()))]
    totals: dict[str, float] = {}
    if not starts:
        return totals
    totals["(connect and plan)"] = starts[0][0]
    for (t, name), following in zip(starts, [*starts[1:], (end, "")]):
        section = name.split(" | ")[0]
        totals[section] = totals.get(section, 0.0) + (following[0] - t)
    return totals


def operation_times(timed: list[tuple[float, str]], end: float) -> list[tuple[str, float]]:
    """Wall time per operation (see :func:`section_times`), longest first."""
    starts = [(t, m.group(1)) for t, text in timed if (m := _OPERATION.match(text.strip()))]
    spans = [(name, following[0] - t) for (t, name), following in zip(starts, [*starts[1:], (end, "")])]
    return sorted(spans, key=lambda item: -item[1])


def _median_or(values, compute):
    """The median of per-round ratios when there are any, else ``compute()``."""
    return statistics.median(values) if values else compute()


def format_table(rows: list[Row]) -> str:
    headers = ("item", "measured", "target", "result")
    cells = [headers, *((r.item, r.measured, r.target, r.verdict) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def evaluate(m: dict) -> list[Row]:
    """The result table from the measurements (keys as :func:`main` fills them)."""
    rows = [
        Row("walkthrough shell script, cold (s)", f"{m['walkthrough_s']:.1f}"),
        Row("deploy, cold (s)", f"{m['cold_s']:.1f}"),
    ]
    cold_ratio = _median_or(m.get("cold_ratios"), lambda: ratio(m["cold_s"], m["walkthrough_s"]))
    rows.append(Row("1. cold deploy / walkthrough", f"{cold_ratio:.2f}", f"<= {COLD_RATIO_MAX}",
                    at_most(cold_ratio, COLD_RATIO_MAX)))
    rerun_ratio = _median_or(m.get("rerun_ratios"), lambda: ratio(m["rerun_s"], m["walkthrough_s"]))
    rows.append(Row("deploy, no-op re-run (s)", f"{m['rerun_s']:.1f}"))
    rows.append(Row("2. re-run / walkthrough", f"{rerun_ratio:.3f}", f"<= {RERUN_RATIO_MAX}",
                    at_most(rerun_ratio, RERUN_RATIO_MAX)))
    rows.append(Row("2. re-run changed operations", str(m["rerun_changed"]), "0", m["rerun_changed"] == 0))
    rows.append(Row("2. re-run remote commands", str(m["rerun_commands"]), f"<= {RERUN_COMMANDS_MAX}",
                    m["rerun_commands"] <= RERUN_COMMANDS_MAX))
    if m.get("fleet_s") is not None:
        hosts = m["fleet_hosts"]
        fleet_ratio = ratio(m["fleet_s"], m["cold_s"])
        rows.append(Row(f"deploy, {hosts} hosts at once (s)", f"{m['fleet_s']:.1f}"))
        rows.append(Row(f"3. {hosts} hosts / 1 host", f"{fleet_ratio:.2f}", f"<= {FLEET_RATIO_MAX}",
                        at_most(fleet_ratio, FLEET_RATIO_MAX)))
        rows.append(Row(f"   {hosts} hosts healthy (login page)", f"{m['fleet_healthy']}/{hosts}",
                        f"{hosts}/{hosts}", m["fleet_healthy"] == hosts))
        if m.get("fleet_rerun_s") is not None:
            rows.append(Row(f"   {hosts} hosts no-op re-run (s), changed", 
                            f"{m['fleet_rerun_s']:.1f}, {m['fleet_rerun_changed']}", "0 changed",
                            m["fleet_rerun_changed"] == 0))
        builds, abis = m["ice_fetch_or_build"], m["ice_abis"]
        expected = "1 per ABI (empty cache)" if m["cold_ice"] else "<= 1 per ABI (0: cached wheel)"
        ok = builds == abis if m["cold_ice"] else builds <= abis
        rows.append(Row("4. Ice fetched/built for the fleet", f"{builds} for {abis} ABI", expected, ok))
        rows.append(Row("   hosts that got the wheel uploaded", f"{m['ice_uploaded']}/{hosts}"))
    rows.append(Row("5. remote commands, cold", f"{m['cold_commands']} (+{m['cold_uploads']} uploads)"))
    rows.append(Row("5. remote commands, re-run", f"{m['rerun_commands']} (+{m['rerun_uploads']} uploads)"))
    rows.append(Row("   walkthrough script", f"{m['walkthrough_commands']} SSH session (+{m['walkthrough_uploads']} uploads)"))
    return rows
