"""
Load-test a deployed OMERO.web from the control machine with wrk (a real HTTP load tool,
installed with apt when missing): the login page (Django, through Gunicorn) and a static
file (served by NGINX / WhiteNoise). Reports requests/s, p50/p99 latency and errors
(non-2xx answers + socket errors) per URL.

    tools/dev.sh loadtest --url http://127.0.0.1:8080/
    tools/dev.sh loadtest --url http://127.0.0.1:8080/ --duration 20 --connections 16
    tools/dev.sh loadtest --compare-workers      # deploy a local target three times and compare

``--compare-workers`` starts one Debian 12 systemd container, deploys OMERO.web with
``omero_web_wsgi_workers`` = 1, then (2 x cores) + 1 (the walkthrough's advice, the deploy's
default), then the gevent worker class, load-tests each and prints them side by side.

Only loopback addresses are load-tested unless ``--allow-remote`` is given: point it at
your own servers only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATHS = {"login": "webclient/login/", "static": "static/webgateway/css/ome.body.css"}

# Counts non-2xx answers over all threads (wrk itself only counts >= 400 as errors) and
# prints machine-readable totals after wrk's own report.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  non2xx = 0
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d " ..
    "connect=%d read=%d write=%d timeout=%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), bad, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class LoadResult:
    url: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def parse_wrk(output: str, url: str) -> LoadResult:
    """The ``RESULT ...`` line that :data:`WRK_SCRIPT` prints, as a :class:`LoadResult`."""
    for line in output.splitlines():
        if line.startswith("RESULT "):
            values = dict(item.split("=", 1) for item in line.split()[1:])
            numbers = {key: int(value) for key, value in values.items()}
            return LoadResult(
                url=url,
                requests=numbers["requests"],
                seconds=numbers["duration_us"] / 1e6,
                p50_ms=numbers["p50_us"] / 1000,
                p99_ms=numbers["p99_us"] / 1000,
                non2xx=numbers["non2xx"],
                socket_errors=numbers["connect"] + numbers["read"] + numbers["write"] + numbers["timeout"],
            )
    raise ValueError(f"no RESULT line in wrk's output:\n{output[-2000:]}")


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    from testbed.engine import apt_install

    apt_install(["wrk"])
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return path


def run_wrk(url: str, duration: int, connections: int, threads: int, timeout: int = 10) -> LoadResult:
    """One bounded wrk run (``duration`` seconds) against ``url``."""
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        result = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout}s",
             "-s", script.name, url],
            capture_output=True, text=True, timeout=duration + timeout + 60,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {result.returncode}): {result.stderr.strip()}")
    return parse_wrk(result.stdout, url)


def load_test(base_url: str, duration: int, connections: int, threads: int) -> dict[str, LoadResult]:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return {name: run_wrk(urljoin(base, path), duration, connections, threads) for name, path in PATHS.items()}


def format_results(columns: dict[str, dict[str, LoadResult]]) -> str:
    """A table: one column per configuration, rows per URL and metric."""
    names = list(columns)
    lines = []
    header = ["", *names]
    body = []
    for page in PATHS:
        for label, value in (("req/s", lambda r: f"{r.rps:.1f}"), ("p50 ms", lambda r: f"{r.p50_ms:.1f}"),
                             ("p99 ms", lambda r: f"{r.p99_ms:.1f}"), ("errors", lambda r: str(r.errors)),
                             ("requests", lambda r: str(r.requests))):
            body.append([f"{page} {label}", *(value(columns[n][page]) for n in names)])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        lines.append("  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(row)))
    return "\n".join(lines)


def compare_workers(duration: int, connections: int, threads: int, workdir: Path) -> dict[str, dict[str, LoadResult]]:
    """Deploy one local target with three worker settings; load-test each."""
    from testbed.engine import ensure_docker_engine
    from testbed.images import ensure_image
    from testbed.targets import cleanup_stale, remove_targets, start_systemd_target
    from testbed.pyinfra_run import run_pyinfra, target_data, write_inventory

    ensure_docker_engine()
    cleanup_stale()
    target = start_systemd_target(ensure_image("bookworm"), name="loadtest")
    columns: dict[str, dict[str, LoadResult]] = {}
    try:
        code, out = target.ssh("nproc")
        cores = int(out.strip()) if code == 0 else 1
        variants = {
            "1 sync worker": {"omero_web_wsgi_workers": 1, "omero_web_wsgi_worker_class": "sync"},
            f"{2 * cores + 1} sync (2xcores+1)": {"omero_web_wsgi_workers": 2 * cores + 1,
                                                  "omero_web_wsgi_worker_class": "sync"},
            f"{2 * cores + 1} gevent": {"omero_web_wsgi_workers": 2 * cores + 1,
                                        "omero_web_wsgi_worker_class": "gevent"},
        }
        for number, (label, data) in enumerate(variants.items(), 1):
            inventory = write_inventory(workdir / f"inventory{number}.py",
                                        {"debian12": [target_data(target, **data)]})
            run = run_pyinfra(inventory, log=workdir / f"deploy{number}.log")
            if run.returncode != 0:
                print(f"{label}: deploy failed (exit {run.returncode}), log {workdir / f'deploy{number}.log'}:\n"
                      f"{run.tail(25)}", file=sys.stderr)
                continue
            _, workers = target.ssh("pgrep -fc '[g]unicorn.*omeroweb.wsgi' || true")
            print(f"{label}: deployed in {run.seconds:.0f}s, {workers.strip()} gunicorn processes "
                  "(master + workers); load-testing", flush=True)
            columns[label] = load_test(target.url(80, "/"), duration, connections, threads)
    finally:
        remove_targets([target])
    return columns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", default=[],
                        help="base URL of a deployed OMERO.web (repeatable), e.g. http://127.0.0.1:8080/")
    parser.add_argument("--compare-workers", action="store_true",
                        help="deploy a local Debian 12 target with 1, 2xcores+1 and gevent workers and compare")
    parser.add_argument("--duration", type=int, default=10, help="seconds per URL (default 10, at most 300)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow non-loopback URLs (only servers you are responsible for)")
    parser.add_argument("--max-errors", type=int, default=0,
                        help="exit 1 when a URL has more errors than this (default 0)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not args.url and not args.compare_workers:
        parser.error("give --url URL or --compare-workers")
    if not 1 <= args.duration <= 300:
        parser.error("--duration must be between 1 and 300 seconds")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    for url in args.url:
        if not args.allow_remote and not is_loopback(url):
            parser.error(f"{url} is not a loopback address; add --allow-remote for your own servers")

    columns: dict[str, dict[str, LoadResult]] = {}
    for url in args.url:
        columns[url] = load_test(url, args.duration, args.connections, args.threads)
    if args.compare_workers:
        columns.update(compare_workers(args.duration, args.connections, args.threads,
                                       Path(tempfile.mkdtemp(prefix="omeroweb-loadtest-"))))
    if not columns:
        return 1
    print(f"\nwrk: {args.connections} connections, {args.threads} threads, {args.duration}s per URL")
    print(format_results(columns))
    if args.json:
        args.json.write_text(json.dumps({label: {page: asdict(r) | {"rps": r.rps, "errors": r.errors}
                                                 for page, r in results.items()}
                                         for label, results in columns.items()}, indent=1))
    worst = max(r.errors for results in columns.values() for r in results.values())
    return 1 if worst > args.max_errors else 0


if __name__ == "__main__":
    sys.exit(main())
