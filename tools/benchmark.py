"""
Benchmark the deploy against the walkthrough, side by side in one run, on fresh Debian 12
containers from the same image (systemd as PID 1, reached over SSH on 127.0.0.1):

1. cold deploy vs the walkthrough run as a plain shell script (``tools/walkthrough.sh``,
   same Ice wheel, same packages) on an identical fresh container;
2. no-op re-run of the deploy on the converged host (time, ratio, changed operations);
3. fleet, for 1 host (the runs of items 1 and 2) and for each of ``--fleet-sizes`` hosts
   at once (default 8 and 16, each on fresh hosts): wall time and load (informational),
   the control side's CPU seconds per host, cold and re-run (the pyinfra process's user +
   system time), every host healthy, the re-run changing nothing;
4. Ice: how many hosts fetched or built the Ice wheel, per fleet size;
5. remote commands the deploy ran on a host, cold and re-run.

    tools/dev.sh bench                          # everything: 1, 8 and 16 hosts
    tools/dev.sh bench --fleet-sizes 4 --json out.json
    tools/dev.sh bench --skip-fleet             # 1 host only
    tools/dev.sh bench --cold-ice               # each fleet starts from an empty Ice cache

Absolute times vary on a shared machine; the ratios, measured in one run, and the CPU time
of the control side are what the targets apply to. Every container the benchmark starts is
removed at the end; each fleet's before the next size starts.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import paramiko
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.pyinfra_run import Run, target_data, write_inventory  # noqa: E402
from tools.bench_report import (  # noqa: E402
    FLEET_SIZES, cpu_seconds, evaluate, exit_status, fleet_summary, format_loads, format_table, merge_rounds, operation_times,
    parse_fleet_sizes, ratio, section_times,
)
from tools.counting_pyinfra import COUNTS_ENV  # noqa: E402

RELEASE = "bookworm"
ABI_KEY = "debian-12-x86_64-cp311"
ICE_UPLOADS = "/var/cache/omeroweb-deploy/ice/upload"  # where the deploy puts the cached wheel
ICE_ROW = "ZeroC IcePy 3.6.5 | Fetch or build the Ice wheel (one host per distro + Python ABI)"
LOGIN = "OMERO.web - Login"
WALKTHROUGH = ROOT / "tools" / "walkthrough.sh"
REMOTE_DIR = "/root/walkthrough"


# ----------------------------------------------------------------------------- runs


@dataclass
class TimedRun:
    run: Run
    timed: list[tuple[float, str]] = field(default_factory=list)
    cpu_s: float = 0.0  # the pyinfra process's user + system time: the whole control side
    commands: dict[str, int] = field(default_factory=dict)  # remote commands per host
    uploads: int = 0  # files uploaded, all hosts

    @property
    def seconds(self) -> float:
        return self.run.seconds


def run_timed(inventory: Path, log: Path, *args: str, timeout: float = 3600) -> TimedRun:
    """``pyinfra -y INVENTORY deploy.py`` at its default verbosity (``tools.counting_pyinfra``
    counts the remote commands and uploads); every output line is timestamped in ``log``.

    pyinfra's SSH connector (paramiko) runs in its own process, so that process's CPU time is
    the control side's. It is read from this process's terminated children, which holds only
    pyinfra's figures: the benchmark runs one child at a time, and the reading is taken after
    ``Popen`` has reaped any earlier ones.
    """
    counts_file = log.with_suffix(".counts.json")
    counts_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tools.counting_pyinfra", "-y", str(inventory), "deploy.py", *args]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", env={**os.environ, COUNTS_ENV: str(counts_file)})
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert process.stdout is not None
    raw, timed = [], []
    with open(log, "w") as handle:
        for line in process.stdout:
            now = time.monotonic() - started
            raw.append(line)
            timed.append((now, line.rstrip("\n")))
            handle.write(f"{now:9.3f} {line}")
            if now > timeout:
                process.kill()
    code = process.wait()
    cpu_s = cpu_seconds(children_before, resource.getrusage(resource.RUSAGE_CHILDREN))
    counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    return TimedRun(Run(code, "".join(raw), time.monotonic() - started), timed, cpu_s,
                    counts.get("commands", {}), sum(counts.get("uploads", {}).values()))


def _sftp_put(target, files: dict[str, bytes | Path]) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.MissingHostKeyPolicy())
    client.connect("127.0.0.1", port=target.ssh_port, username="root", key_filename=target.ssh_key,
                   allow_agent=False, look_for_keys=False, timeout=30)
    try:
        sftp = client.open_sftp()
        for remote, content in files.items():
            parent = remote.rsplit("/", 1)[0]
            try:
                sftp.stat(parent)
            except FileNotFoundError:
                sftp.mkdir(parent)
            if isinstance(content, Path):
                sftp.put(str(content), remote)
            else:
                sftp.putfo(io.BytesIO(content), remote)
        sftp.close()
    finally:
        client.close()


def run_walkthrough(target, wheel: Path, ca_files: list[str], log: Path) -> tuple[float, int]:
    """Upload the wheel, CA certificates and script, run it over SSH; (seconds, uploads)."""
    started = time.monotonic()
    files: dict[str, bytes | Path] = {f"{REMOTE_DIR}/walkthrough.sh": WALKTHROUGH,
                                      f"{REMOTE_DIR}/{wheel.name}": wheel}
    for number, path in enumerate(ca_files):
        files[f"{REMOTE_DIR}/ca/extra-{number}.crt"] = Path(path)
    _sftp_put(target, files)
    code, output = target.ssh(
        f"ICE_WHEEL={REMOTE_DIR}/{wheel.name} EXTRA_CA_DIR={REMOTE_DIR}/ca bash {REMOTE_DIR}/walkthrough.sh",
        timeout=1800)
    seconds = time.monotonic() - started
    log.write_text(output)
    if code != 0:
        raise RuntimeError(f"walkthrough script failed (exit {code}); last lines:\n"
                           + "\n".join(output.splitlines()[-30:]))
    return seconds, len(files)


def login_ok(target) -> bool:
    try:
        response = requests.get(target.url(80, "/"), timeout=30)
    except requests.RequestException:
        return False
    return response.status_code == 200 and LOGIN in response.text


def _check(run: TimedRun, what: str) -> None:
    if run.run.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {run.run.returncode}):\n{run.run.tail(40)}")


def warm_bytecode() -> None:
    """
    Byte-compile the deploy's own modules (``operations/``) before measuring, as Python does on
    a checkout's first run: every measured run then costs what a user's runs cost, also where
    PYTHONDONTWRITEBYTECODE is set (as here), which would otherwise compile them at every run.
    ``config.py`` and ``deploy.py`` are compiled by pyinfra at every run either way.
    """
    import compileall

    compileall.compile_dir(str(ROOT / "operations"), quiet=1)


def _load() -> float:
    return os.getloadavg()[0]


def _walkthrough_round(image, wheel: Path, ca_files: list[str], logs: Path, number: int, targets: list) -> dict:
    from testbed.targets import remove_targets, start_systemd_target

    target = start_systemd_target(image, name="bench-walk")
    targets.append(target)
    load = _load()
    seconds, uploaded = run_walkthrough(target, wheel, ca_files, logs / f"walkthrough{number + 1}.log")
    if not login_ok(target):
        raise RuntimeError("the walkthrough script's site does not show the login page")
    remove_targets([target])
    return {"walkthrough_s": seconds, "walkthrough_uploads": uploaded, "walkthrough_commands": 1,
            "walkthrough_load": (load, _load())}


def _deploy_and_rerun(hosts: list, inventory: Path, logs: Path, name: str, ice_cache: str):
    """Cold deploy of ``hosts`` at once, their health, then a re-run: (fleet record, cold, re-run).

    The record holds what ``bench_report.fleet_rows`` reads (items 3 and 4 for this size);
    ``ice_cache`` is ``"cached"`` (the control cache holds the wheel) or ``"empty"``.
    """
    load = _load()
    cold = run_timed(inventory, logs / f"{name}-cold.log")
    cold_load = (load, _load())
    _check(cold, f"{name}: cold deploy")
    healthy = sum(login_ok(target) for target in hosts)
    uploaded = sum(target.ssh(f"ls {ICE_UPLOADS}/*.whl")[0] == 0 for target in hosts)
    load = _load()
    rerun = run_timed(inventory, logs / f"{name}-rerun.log")
    rerun_load = (load, _load())
    _check(rerun, f"{name}: re-run")
    record = {
        "hosts": len(hosts),
        "cold_s": cold.seconds, "cold_load": cold_load, "cold_cpu_s": cold.cpu_s,
        "rerun_s": rerun.seconds, "rerun_load": rerun_load, "rerun_cpu_s": rerun.cpu_s,
        "healthy": healthy,
        "rerun_changed": rerun.run.changed, "rerun_changed_operations": rerun.run.changed_operations(),
        "ice_fetch_or_build": cold.run.rows()[ICE_ROW][1], "ice_abis": 1, "ice_cache": ice_cache,
        "ice_uploaded": uploaded,
    }
    return record, cold, rerun


def _deploy_round(image, logs: Path, number: int, targets: list) -> dict:
    from testbed.targets import remove_targets, start_systemd_target

    target = start_systemd_target(image, name="bench-one")
    targets.append(target)
    inventory = write_inventory(logs / f"one{number + 1}.py", {"debian12": [target_data(target)]})
    one_host, cold, rerun = _deploy_and_rerun([target], inventory, logs, f"one{number + 1}", "cached")
    if one_host["healthy"] != 1:
        raise RuntimeError("the deployed site does not show the login page")
    remove_targets([target])
    return {
        "cold_s": cold.seconds, "cold_load": one_host["cold_load"],
        "cold_commands": cold.commands.get(target.name, 0),
        "cold_uploads": cold.uploads,
        "rerun_s": rerun.seconds, "rerun_changed": rerun.run.changed,
        "rerun_changed_operations": rerun.run.changed_operations(),
        "rerun_commands": rerun.commands.get(target.name, 0),
        "rerun_uploads": rerun.uploads,
        "one_host": one_host,
        "cold_run": cold, "rerun_run": rerun,
    }


def _fleet(image, size: int, cold_ice: bool, logs: Path, targets: list) -> dict:
    """Items 3 and 4 for ``size`` fresh hosts at once; their containers are removed afterwards."""
    from testbed.targets import remove_targets, start_systemd_target

    fleet = []
    for number in range(size):
        fleet.append(start_systemd_target(image, name=f"bench-fleet{number}"))
        targets.append(fleet[-1])  # removed in main's cleanup should the next one fail to start
    ice_dir = tempfile.mkdtemp(prefix="omeroweb-bench-ice-") if cold_ice else None
    extra = {"omero_web_ice_cache_dir": ice_dir} if ice_dir else {}
    inventory = write_inventory(logs / f"fleet{size}.py",
                                {"debian12": [target_data(target, **extra) for target in fleet]})
    print(f"fleet of {size}: deploying", flush=True)
    try:
        record, cold, _ = _deploy_and_rerun(fleet, inventory, logs, f"fleet{size}",
                                            "empty" if cold_ice else "cached")
    finally:
        if ice_dir:
            shutil.rmtree(ice_dir, ignore_errors=True)
    remove_targets(fleet)  # before the next size: its hosts share this machine's memory and cores
    record["profile"] = section_times(cold.timed, cold.seconds)
    record["cold_commands"] = cold.commands
    print(f"fleet: {fleet_summary(record)}", flush=True)
    return record


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleet-sizes", type=parse_fleet_sizes, default=list(FLEET_SIZES), metavar="N,N",
                        help="fleets measured after the 1 host of items 1 and 2, one after the other "
                             f"(default {','.join(map(str, FLEET_SIZES))})")
    parser.add_argument("--skip-fleet", action="store_true",
                        help="no fleet of several hosts (items 3 and 4 for the 1 host only)")
    parser.add_argument("--cold-ice", action="store_true",
                        help="each fleet starts from an empty Ice cache (omero_web_ice_cache_dir): "
                             "Ice is built once per fleet, which takes minutes")
    parser.add_argument("--json", type=Path, help="write the measurements and the table here")
    parser.add_argument("--logs", type=Path, help="keep the pyinfra and script logs in this folder")
    # a single pair moves by a fifth with the machine's load (docs/performance.md, "Noise")
    parser.add_argument("--rounds", type=int, default=3,
                        help="walkthrough/deploy pairs, the order alternating; medians are reported (default 3)")
    parser.add_argument("--top", type=int, default=8, help="slowest operations listed per run")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from testbed.cache import cache_dir
    from testbed.engine import ensure_docker_engine
    from testbed.images import ensure_image
    from testbed.targets import cleanup_stale, host_ca_certificates, remove_targets

    wheels = sorted((cache_dir() / "wheels" / ABI_KEY).glob("zeroc_ice-3.6.5-*.whl"))
    if not wheels:
        print(f"No Ice wheel in {cache_dir() / 'wheels' / ABI_KEY}: run `tools/dev.sh demo` (or the "
              "integration tests) once to build it.", file=sys.stderr)
        return 2
    wheel = wheels[0]
    logs = args.logs or Path(tempfile.mkdtemp(prefix="omeroweb-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    ensure_docker_engine()
    cleanup_stale()
    warm_bytecode()
    image = ensure_image(RELEASE)
    ca_files = host_ca_certificates()
    print(f"image {image}; Ice wheel {wheel.name}; logs in {logs}")
    print("targets: fresh systemd containers (systemd PID 1), reached over SSH on 127.0.0.1, "
          "the same kind for every measurement", flush=True)

    fleet_sizes = [] if args.skip_fleet else args.fleet_sizes
    m: dict = {"hosts_cores": _cores(), "cold_ice": args.cold_ice, "fleet_sizes": fleet_sizes}
    targets = []
    try:
        # 1. and 2., in rounds: the walkthrough and the deploy each on a fresh container, the
        # order alternating between rounds, then the deploy again on its converged host.
        rounds: list[dict] = []
        for number in range(args.rounds):
            result: dict = {}
            order = ("walkthrough", "deploy") if number % 2 == 0 else ("deploy", "walkthrough")
            for what in order:
                if what == "walkthrough":
                    result.update(_walkthrough_round(image, wheel, ca_files, logs, number, targets))
                else:
                    result.update(_deploy_round(image, logs, number, targets))
            rounds.append(result)
            print(f"round {number + 1}: walkthrough {result['walkthrough_s']:.1f}s; "
                  f"{fleet_summary(result['one_host'])}", flush=True)
        m["rounds"] = [{k: v for k, v in r.items() if k not in ("cold_run", "rerun_run")} for r in rounds]
        for key in ("walkthrough_s", "cold_s", "rerun_s"):
            m[key] = statistics.median(r[key] for r in rounds)
        m["cold_ratios"] = [ratio(r["cold_s"], r["walkthrough_s"]) for r in rounds]
        m["rerun_ratios"] = [ratio(r["rerun_s"], r["walkthrough_s"]) for r in rounds]
        last = rounds[-1]
        for key in ("walkthrough_uploads", "walkthrough_commands", "cold_commands", "cold_uploads",
                    "rerun_commands", "rerun_uploads"):
            m[key] = last[key]
        m["rerun_changed"] = max(r["rerun_changed"] for r in rounds)
        m["rerun_changed_operations"] = sorted({op for r in rounds for op in r["rerun_changed_operations"]})
        cold, rerun = last["cold_run"], last["rerun_run"]
        m["profile"] = {
            "cold": section_times(cold.timed, cold.seconds),
            "rerun": section_times(rerun.timed, rerun.seconds),
            "cold_slowest": operation_times(cold.timed, cold.seconds)[: args.top],
            "rerun_slowest": operation_times(rerun.timed, rerun.seconds)[: args.top],
        }

        # 3. and 4.: 1 host from the rounds above, then each fleet size on fresh hosts
        m["sizes"] = [merge_rounds([r["one_host"] for r in rounds])]
        for size in fleet_sizes:
            m["sizes"].append(_fleet(image, size, args.cold_ice, logs, targets))
    finally:
        remove_targets(targets)
        cleanup_stale()

    rows = evaluate(m)
    print()
    print(f"Benchmark on Debian 12 (control machine: {m['hosts_cores']} cores, shared); "
          f"fleet targets: systemd+SSH containers")
    print(format_table(rows))
    print()
    if m.get("rerun_changed_operations"):
        print("re-run changed: " + "; ".join(m["rerun_changed_operations"]))
    for number, r in enumerate(m["rounds"], 1):
        print(f"round {number}: walkthrough {r['walkthrough_s']:.1f}s (load {format_loads(r['walkthrough_load'])}), "
              f"cold deploy {r['cold_s']:.1f}s (load {format_loads(r['cold_load'])}), re-run {r['rerun_s']:.1f}s; "
              f"ratios to the walkthrough {r['cold_s'] / r['walkthrough_s']:.2f} and {r['rerun_s'] / r['walkthrough_s']:.3f}")
    for size in m["sizes"]:
        print(f"fleet, {fleet_summary(size)}")
    for run_name in ("cold", "rerun"):
        print(f"time per section, {run_name}: " + ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in m["profile"][run_name].items()))
    for size in m["sizes"][1:]:
        print(f"time per section, {size['hosts']} hosts cold: " + ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in size["profile"].items()))
    for run_name in ("cold", "rerun"):
        print(f"slowest operations, {run_name}: " + "; ".join(
            f"{name} {seconds:.1f}s" for name, seconds in m["profile"][f"{run_name}_slowest"]))
    if args.json:
        args.json.write_text(json.dumps({"measurements": m, "table": [asdict(r) | {"verdict": r.verdict}
                                                                      for r in rows]}, indent=1))
    return exit_status(rows)


def _cores() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
