"""
The benchmark's pure parts (``tools/benchmark.py`` runs the measurements): its targets,
reading pyinfra's timestamped output, and the result table with its verdicts. Plain values
in, plain values out: unit-tested without containers.
"""

from __future__ import annotations

import argparse
import re
import statistics
from dataclasses import dataclass

# Targets of issue #15
COLD_RATIO_MAX = 1.0  # cold deploy / walkthrough script
RERUN_RATIO_MAX = 0.1  # no-op re-run / walkthrough script
RERUN_COMMANDS_MAX = 15  # remote commands of a no-op re-run
CONTROL_CPU_PER_HOST_MAX = 1.0  # the pyinfra process's CPU seconds per host and run, strictly below
FLEET_SIZES = (8, 16)  # besides the 1 host of items 1 and 2

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


def under(value: float, limit: float) -> bool:
    return value < limit


def parse_fleet_sizes(text: str) -> list[int]:
    """``--fleet-sizes``: ``"16, 8"`` -> ``[8, 16]`` (smallest first, each once); every size >= 2."""
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of host counts: {text!r}") from None
    if not sizes:
        raise argparse.ArgumentTypeError("no fleet size given (--skip-fleet measures no fleet)")
    if sizes[0] < 2:
        raise argparse.ArgumentTypeError(f"a fleet has at least 2 hosts, got {sizes[0]} "
                                         "(1 host is the deploy of items 1 and 2)")
    return sizes


def format_loads(pair) -> str:
    """1-minute load average at the start and end of a measurement (other users' work shows here)."""
    return f"{pair[0]:.1f}->{pair[1]:.1f}"


def cpu_seconds(before, after) -> float:
    """User + system CPU seconds between two ``resource.getrusage`` readings."""
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
    for size in m.get("sizes", []):
        rows.extend(fleet_rows(size, m["cold_s"]))
    rows.append(Row("5. remote commands, cold", f"{m['cold_commands']} (+{m['cold_uploads']} uploads)"))
    rows.append(Row("5. remote commands, re-run", f"{m['rerun_commands']} (+{m['rerun_uploads']} uploads)"))
    rows.append(Row("   walkthrough script", f"{m['walkthrough_commands']} SSH session (+{m['walkthrough_uploads']} uploads)"))
    return rows


def exit_status(rows: list[Row]) -> int:
    """The benchmark's exit status: 1 when a target is missed, informational rows aside."""
    return 0 if all(row.passed is not False for row in rows) else 1


def fleet_rows(size: dict, one_host_cold_s: float) -> list[Row]:
    """Item 3 and 4 for one fleet size (1 host included): keys as ``benchmark.fleet_record``.

    Wall time is informational: with many targets on the control machine's cores it measures
    the machine. The control side's CPU time per host and run is the target.
    """
    count = size["hosts"]
    hosts = host_count(count)
    rows = []
    for run, what in (("cold", "cold"), ("rerun", "re-run")):
        wall = f"{size[f'{run}_s']:.1f}"
        if run == "cold" and count > 1:
            wall += f" = {ratio(size['cold_s'], one_host_cold_s):.2f} x 1 host"
        rows.append(Row(f"3. {hosts}, {what} (s)", f"{wall} (load {format_loads(size[f'{run}_load'])})"))
        per_host = size[f"{run}_cpu_s"] / count
        rows.append(Row(f"3. {hosts}, {what}: control CPU per host (s)",
                        f"{per_host:.2f} ({size[f'{run}_cpu_s']:.2f} in all)",
                        f"< {CONTROL_CPU_PER_HOST_MAX}", under(per_host, CONTROL_CPU_PER_HOST_MAX)))
    rows.append(Row(f"3. {hosts} healthy (login page)", f"{size['healthy']}/{count}", f"{count}/{count}",
                    size["healthy"] == count))
    rows.append(Row(f"3. {hosts}, re-run changed operations", str(size["rerun_changed"]), "0",
                    size["rerun_changed"] == 0))
    builds, abis = size["ice_fetch_or_build"], size["ice_abis"]
    if size["ice_cache"] == "empty":
        expected, ok = "1 per ABI (empty cache)", builds == abis
    else:
        expected, ok = "0 (cached wheel)", builds == 0
    rows.append(Row(f"4. {hosts}: Ice fetched/built", f"{builds} for {abis} ABI", expected, ok))
    rows.append(Row(f"   {hosts}: Ice wheel uploaded", f"{size['ice_uploaded']}/{count}"))
    return rows


def host_count(count: int) -> str:
    return f"{count} host" if count == 1 else f"{count} hosts"


def fleet_summary(size: dict) -> str:
    """One line for a fleet size: wall time, load and the control side's CPU per run."""
    count = size["hosts"]
    runs = []
    for run, what in (("cold", "cold"), ("rerun", "re-run")):
        cpu_s = size[f"{run}_cpu_s"]
        runs.append(f"{what} {size[f'{run}_s']:.1f}s (load {format_loads(size[f'{run}_load'])}), "
                    f"control CPU {cpu_s:.2f}s = {cpu_s / count:.2f}s/host")
    return (f"{host_count(count)}: " + "; ".join(runs)
            + f"; {size['rerun_changed']} changed on re-run; {size['healthy']}/{count} healthy")


def merge_rounds(records: list[dict]) -> dict:
    """The 1-host fleet record over several rounds: medians of times and CPU, the worst of the
    verdicts' inputs; loads and the rest from the last round."""
    merged = dict(records[-1])
    for key in ("cold_s", "cold_cpu_s", "rerun_s", "rerun_cpu_s"):
        merged[key] = statistics.median(record[key] for record in records)
    merged["healthy"] = min(record["healthy"] for record in records)
    for key in ("rerun_changed", "ice_fetch_or_build"):
        merged[key] = max(record[key] for record in records)
    merged["rerun_changed_operations"] = sorted({op for record in records
                                                 for op in record["rerun_changed_operations"]})
    return merged
