"""
Benchmark the deploy against the walkthrough, side by side in one run, on fresh Debian 12
containers from the same image (systemd as PID 1, reached over SSH on 127.0.0.1):

1. cold deploy vs the walkthrough run as a plain shell script (``tools/walkthrough.sh``,
   same Ice wheel, same packages) on an identical fresh container;
2. no-op re-run of the deploy on the converged host (time, ratio, changed operations);
3. fleet: the deploy against N hosts at once (default 8) vs the 1-host cold deploy;
4. Ice: how many hosts fetched or built the Ice wheel for the fleet;
5. remote commands the deploy ran on a host, cold and re-run.

    tools/dev.sh bench                      # everything, 8-host fleet
    tools/dev.sh bench --hosts 4 --json out.json
    tools/dev.sh bench --skip-fleet
    tools/dev.sh bench --cold-ice           # the fleet starts from an empty Ice cache

Absolute times vary on a shared machine; the ratios, measured in one run, are what the
targets apply to. Every container the benchmark starts is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
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

from testbed.pyinfra_run import PYINFRA, Run, target_data, write_inventory  # noqa: E402
from tools.bench_report import (  # noqa: E402
    cpu_seconds, evaluate, format_table, operation_times, ratio, remote_commands, section_times, uploads,
)

RELEASE = "bookworm"
ABI_KEY = "debian-12-x86_64-cp311"
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

    @property
    def seconds(self) -> float:
        return self.run.seconds


def run_timed(inventory: Path, log: Path, *args: str, timeout: float = 3600) -> TimedRun:
    """``pyinfra -y --debug INVENTORY deploy.py``; every output line is timestamped in ``log``.

    pyinfra's SSH connector (paramiko) runs in its own process, so that process's CPU time is
    the control side's. It is read from this process's terminated children, which holds only
    pyinfra's figures: the benchmark runs one child at a time, and the reading is taken after
    ``Popen`` has reaped any earlier ones.
    """
    command = [PYINFRA, "-y", "--debug", str(inventory), "deploy.py", *args]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace")
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
    return TimedRun(Run(code, "".join(raw), time.monotonic() - started), timed, cpu_s)


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


def _deploy_round(image, logs: Path, number: int, targets: list) -> dict:
    from testbed.targets import remove_targets, start_systemd_target

    target = start_systemd_target(image, name="bench-one")
    targets.append(target)
    inventory = write_inventory(logs / f"one{number + 1}.py", {"debian12": [target_data(target)]})
    load = _load()
    cold = run_timed(inventory, logs / f"cold{number + 1}.log")
    _check(cold, "cold deploy")
    if not login_ok(target):
        raise RuntimeError("the deployed site does not show the login page")
    cold_load = (load, _load())
    rerun = run_timed(inventory, logs / f"rerun{number + 1}.log")
    _check(rerun, "re-run")
    remove_targets([target])
    return {
        "cold_s": cold.seconds, "cold_load": cold_load,
        "cold_commands": remote_commands(cold.run.output).get(target.name, 0),
        "cold_uploads": uploads(cold.run.output),
        "rerun_s": rerun.seconds, "rerun_changed": rerun.run.changed,
        "rerun_changed_operations": rerun.run.changed_operations(),
        "rerun_commands": remote_commands(rerun.run.output).get(target.name, 0),
        "rerun_uploads": uploads(rerun.run.output),
        "cold_run": cold, "rerun_run": rerun,
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=8, help="fleet size (default 8)")
    parser.add_argument("--skip-fleet", action="store_true", help="measure items 1, 2 and 5 only")
    parser.add_argument("--cold-ice", action="store_true",
                        help="the fleet starts from an empty Ice cache (omero_web_ice_cache_dir): "
                             "Ice is built once, which takes minutes")
    parser.add_argument("--json", type=Path, help="write the measurements and the table here")
    parser.add_argument("--logs", type=Path, help="keep the pyinfra and script logs in this folder")
    parser.add_argument("--rounds", type=int, default=1,
                        help="walkthrough/deploy pairs, the order alternating; medians are reported (default 1)")
    parser.add_argument("--top", type=int, default=8, help="slowest operations listed per run")
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.rounds < 1:
        parser.error("--hosts and --rounds must be at least 1")

    from testbed.cache import cache_dir
    from testbed.engine import ensure_docker_engine
    from testbed.images import ensure_image
    from testbed.targets import cleanup_stale, host_ca_certificates, remove_targets, start_systemd_target

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
    image = ensure_image(RELEASE)
    ca_files = host_ca_certificates()
    print(f"image {image}; Ice wheel {wheel.name}; logs in {logs}")
    print("targets: fresh systemd containers (systemd PID 1), reached over SSH on 127.0.0.1, "
          "the same kind for every measurement", flush=True)

    m: dict = {"hosts_cores": _cores(), "cold_ice": args.cold_ice, "fleet_s": None}
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
            print(f"round {number + 1}: walkthrough {result['walkthrough_s']:.1f}s, cold deploy "
                  f"{result['cold_s']:.1f}s, re-run {result['rerun_s']:.1f}s", flush=True)
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

        # 3. and 4. the fleet
        if not args.skip_fleet:
            fleet = [start_systemd_target(image, name=f"bench-fleet{n}") for n in range(args.hosts)]
            targets.extend(fleet)
            extra = {}
            if args.cold_ice:
                extra["omero_web_ice_cache_dir"] = tempfile.mkdtemp(prefix="omeroweb-bench-ice-")
            inventory = write_inventory(logs / "fleet.py",
                                        {"debian12": [target_data(t, **extra) for t in fleet]})
            print(f"fleet of {args.hosts}: deploying", flush=True)
            load = _load()
            run = run_timed(inventory, logs / "fleet.log")
            m["fleet_load"] = (load, _load())
            _check(run, "fleet deploy")
            m["fleet_hosts"], m["fleet_s"] = args.hosts, run.seconds
            m["fleet_healthy"] = sum(login_ok(t) for t in fleet)
            m["ice_fetch_or_build"] = run.run.rows()[ICE_ROW][1]
            m["ice_abis"] = 1
            m["ice_uploaded"] = sum(t.ssh("ls /var/cache/omeroweb-deploy/ice/upload/*.whl")[0] == 0
                                    for t in fleet)
            m["fleet_commands"] = remote_commands(run.run.output)
            print(f"fleet deploy: {run.seconds:.1f}s", flush=True)
            again = run_timed(inventory, logs / "fleet-rerun.log")
            _check(again, "fleet re-run")
            m["fleet_rerun_s"], m["fleet_rerun_changed"] = again.seconds, again.run.changed
            m["profile"]["fleet"] = section_times(run.timed, run.seconds)
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
        print(f"round {number}: walkthrough {r['walkthrough_s']:.1f}s (load {_loads(r['walkthrough_load'])}), "
              f"cold deploy {r['cold_s']:.1f}s (load {_loads(r['cold_load'])}), re-run {r['rerun_s']:.1f}s; "
              f"ratios to the walkthrough {r['cold_s'] / r['walkthrough_s']:.2f} and {r['rerun_s'] / r['walkthrough_s']:.3f}")
    if m.get("fleet_load"):
        print(f"fleet: load {_loads(m['fleet_load'])}")
    for run_name in ("cold", "rerun", "fleet"):
        sections = m["profile"].get(run_name)
        if sections:
            print(f"time per section, {run_name}: " + ", ".join(
                f"{name} {seconds:.1f}s" for name, seconds in sections.items()))
    for run_name in ("cold", "rerun"):
        print(f"slowest operations, {run_name}: " + "; ".join(
            f"{name} {seconds:.1f}s" for name, seconds in m["profile"][f"{run_name}_slowest"]))
    if args.json:
        args.json.write_text(json.dumps({"measurements": m, "table": [asdict(r) | {"verdict": r.verdict}
                                                                      for r in rows]}, indent=1))
    return 0 if all(r.passed is not False for r in rows) else 1


def _cores() -> int:
    return os.cpu_count() or 1


def _loads(pair) -> str:
    """1-minute load average at the start and end of a measurement (other users' work shows here)."""
    return f"{pair[0]:.1f}->{pair[1]:.1f}"


if __name__ == "__main__":
    sys.exit(main())
