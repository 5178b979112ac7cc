"""The pure parts of the benchmark (tools/bench_report.py) and the load test: output parsing and target evaluation."""

from __future__ import annotations

import pytest

from tools import bench_report, loadtest

HOST = "owd-test-bench-one-1234abcd"
DEBUG_OUTPUT = f"""\
--> Loading config...
    [pyinfra.connectors.ssh] Connecting to: 127.0.0.1 ({{'port': 32769}})
    [pyinfra.connectors.ssh] Running command on {HOST}: (pty=False) sh -c 'echo "[os-release]"'
    [pyinfra.connectors.ssh] Waiting for exit status...
    [pyinfra.connectors.ssh] Running command on {HOST}: (pty=False) sh -c 'dpkg -l'
    [pyinfra.connectors.ssh] Running command on other-host: (pty=False) sh -c 'dpkg -l'
    [pyinfra.connectors.ssh] Attempting upload of <_io.StringIO object at 0x7f> to /tmp/x
    [pyinfra.connectors.ssh] Attempting upload of /root/.cache/w.whl to /var/cache/w.whl
    [{HOST}] >>> sh -c 'Running command on nobody: not a log line of the connector'
"""


def test_remote_commands_counts_each_connector_command_per_host():
    assert bench_report.remote_commands(DEBUG_OUTPUT) == {HOST: 2, "other-host": 1}


def test_remote_commands_of_output_without_debug_lines_is_empty():
    assert bench_report.remote_commands("--> Results:\n    Grand total  1  -  -  1\n") == {}


def test_uploads_counts_sftp_uploads():
    assert bench_report.uploads(DEBUG_OUTPUT) == 2


def test_cpu_seconds_adds_user_and_system_time_between_readings():
    from types import SimpleNamespace as Usage

    before, after = Usage(ru_utime=1.25, ru_stime=0.5), Usage(ru_utime=3.0, ru_stime=0.75)
    assert bench_report.cpu_seconds(before, after) == pytest.approx(2.0)  # 1.75 user + 0.25 system


def test_cpu_seconds_of_a_real_child_process():
    import resource
    import subprocess
    import sys

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    spent = bench_report.cpu_seconds(before, resource.getrusage(resource.RUSAGE_CHILDREN))
    assert 0.05 < spent < 30  # the child's loop, counted once it was waited for


TIMED_LINES = [
    "    0.600 --> Loading config...",
    "    1.000 --> Starting operation: OMERO.web prerequisites | Install OS packages: nginx ",
    "    1.500     [pyinfra.connectors.ssh] Running command on h: apt-get update",
    "   13.000 --> Starting operation: OMERO.web prerequisites | Create the omero-web system user ",
    "   15.000 --> Starting operation: OMERO.web | Install omero-web>=5.6.1 and whitenoise ",
    "   28.000 --> Starting operation: OMERO.web health check | OMERO.web answers with its login page ",
    "not a timestamped line",
]


def test_split_timestamps_skips_lines_without_a_time():
    timed = bench_report.split_timestamps(TIMED_LINES)
    assert len(timed) == 6
    assert timed[1] == (1.0, "--> Starting operation: OMERO.web prerequisites | Install OS packages: nginx ")


def test_section_times_adds_operations_of_a_section_until_the_next_starts():
    sections = bench_report.section_times(bench_report.split_timestamps(TIMED_LINES), end=30.0)
    assert sections == pytest.approx({
        "(connect and plan)": 1.0,
        "OMERO.web prerequisites": 14.0,  # 1 -> 13 -> 15
        "OMERO.web": 13.0,
        "OMERO.web health check": 2.0,  # until the end of the run
    })


def test_operation_times_longest_first():
    ops = bench_report.operation_times(bench_report.split_timestamps(TIMED_LINES), end=30.0)
    assert ops[0] == ("OMERO.web | Install omero-web>=5.6.1 and whitenoise", pytest.approx(13.0))
    assert ops[1][0] == "OMERO.web prerequisites | Install OS packages: nginx"
    assert [seconds for _, seconds in ops] == sorted((s for _, s in ops), reverse=True)


def test_section_times_without_operations():
    assert bench_report.section_times([(0.5, "--> Loading config...")], end=3.0) == {}


def measurements(**overrides):
    m = {
        "walkthrough_s": 60.0, "walkthrough_uploads": 4, "walkthrough_commands": 1,
        "cold_s": 57.0, "cold_commands": 96, "cold_uploads": 8,
        "rerun_s": 5.5, "rerun_changed": 0, "rerun_commands": 14, "rerun_uploads": 0,
        "fleet_s": None, "cold_ice": False,
    }
    m.update(overrides)
    return m


def verdicts(rows):
    return {row.item: row.verdict for row in rows if row.verdict}


def test_evaluate_passes_within_targets():
    result = verdicts(bench_report.evaluate(measurements()))
    assert result == {
        "1. cold deploy / walkthrough": "PASS",  # 0.95
        "2. re-run / walkthrough": "PASS",  # 0.092
        "2. re-run changed operations": "PASS",
        "2. re-run remote commands": "PASS",  # 14
    }


def test_evaluate_fails_a_slow_cold_deploy_a_slow_rerun_and_a_changing_rerun():
    result = verdicts(bench_report.evaluate(measurements(cold_s=61.0, rerun_s=6.1, rerun_changed=2, rerun_commands=16)))
    assert result["1. cold deploy / walkthrough"] == "FAIL"  # 1.02 > 1.0
    assert result["2. re-run / walkthrough"] == "FAIL"  # 0.102 > 0.1
    assert result["2. re-run changed operations"] == "FAIL"
    assert result["2. re-run remote commands"] == "FAIL"  # 16 > 15


def test_evaluate_limits_are_inclusive():
    result = verdicts(bench_report.evaluate(measurements(cold_s=60.0, rerun_s=6.0, rerun_commands=15)))
    assert result["1. cold deploy / walkthrough"] == "PASS"  # exactly 1.0
    assert result["2. re-run / walkthrough"] == "PASS"  # exactly 0.1
    assert result["2. re-run remote commands"] == "PASS"  # exactly 15


def fleet(**overrides):
    values = dict(fleet_s=130.0, fleet_hosts=8, fleet_healthy=8, fleet_rerun_s=20.0, fleet_rerun_changed=0,
                  ice_fetch_or_build=0, ice_abis=1, ice_uploaded=8)
    values.update(overrides)
    return measurements(**values)


def test_evaluate_fleet_ratio_and_ice():
    rows = bench_report.evaluate(fleet())
    result = verdicts(rows)
    assert result["3. 8 hosts / 1 host"] == "PASS"  # 130 / 57 = 2.28
    assert result["4. Ice fetched/built for the fleet"] == "PASS"
    assert result["   8 hosts healthy (login page)"] == "PASS"
    assert any(row.measured == "2.28" for row in rows)


def test_evaluate_fleet_failures():
    result = verdicts(bench_report.evaluate(fleet(fleet_s=145.0, fleet_healthy=7, ice_fetch_or_build=2,
                                               fleet_rerun_changed=1)))
    assert result["3. 8 hosts / 1 host"] == "FAIL"  # 2.54
    assert result["   8 hosts healthy (login page)"] == "FAIL"
    assert result["4. Ice fetched/built for the fleet"] == "FAIL"  # two hosts for one ABI
    assert result["   8 hosts no-op re-run (s), changed"] == "FAIL"


def test_evaluate_cold_ice_needs_exactly_one_build_per_abi():
    assert verdicts(bench_report.evaluate(fleet(cold_ice=True, ice_fetch_or_build=0)))[
        "4. Ice fetched/built for the fleet"] == "FAIL"  # an empty cache that built nothing is wrong
    assert verdicts(bench_report.evaluate(fleet(cold_ice=True, ice_fetch_or_build=1)))[
        "4. Ice fetched/built for the fleet"] == "PASS"


def test_ratio_rejects_a_zero_time():
    with pytest.raises(ValueError):
        bench_report.ratio(1.0, 0.0)


def test_format_table_aligns_columns():
    table = bench_report.format_table([bench_report.Row("a", "1.00", "<= 2", True), bench_report.Row("longer item", "x")])
    lines = table.splitlines()
    assert lines[0].split() == ["item", "measured", "target", "result"]
    assert lines[2].endswith("PASS")
    assert lines[3].startswith("longer item  x")
    assert lines[2].index("1.00") == lines[0].index("measured")


WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:32780/webclient/login/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    52.10ms   10.20ms 120.00ms   70.00%
    Req/Sec    76.50     12.30   100.00     65.00%
  1530 requests in 10.01s, 9.80MB read
Requests/sec:    152.85
Transfer/sec:      0.98MB
RESULT requests=1530 duration_us=10010000 p50_us=51234 p99_us=98765 non2xx=3 connect=0 read=2 write=0 timeout=1
"""


def test_parse_wrk_reads_the_result_line():
    result = loadtest.parse_wrk(WRK_OUTPUT, "http://x/")
    assert result.requests == 1530
    assert result.rps == pytest.approx(152.85, abs=0.01)
    assert result.p50_ms == pytest.approx(51.234)
    assert result.p99_ms == pytest.approx(98.765)
    assert result.non2xx == 3 and result.socket_errors == 3 and result.errors == 6


def test_parse_wrk_without_result_line_fails():
    with pytest.raises(ValueError, match="no RESULT line"):
        loadtest.parse_wrk(WRK_OUTPUT.rsplit("RESULT", 1)[0], "http://x/")


def test_is_loopback():
    assert loadtest.is_loopback("http://127.0.0.1:8080/")
    assert loadtest.is_loopback("http://127.5.0.1/")
    assert loadtest.is_loopback("http://[::1]:80/")
    assert not loadtest.is_loopback("http://10.0.0.5/")
    assert not loadtest.is_loopback("http://192.168.1.10:80/")


def test_cli_refuses_non_loopback_urls_without_allow_remote(capsys):
    with pytest.raises(SystemExit) as exit_info:
        loadtest.main(["--url", "http://10.1.2.3/"])
    assert exit_info.value.code == 2
    assert "not a loopback address" in capsys.readouterr().err


def test_format_results_side_by_side():
    result = loadtest.parse_wrk(WRK_OUTPUT, "u")
    table = loadtest.format_results({"one": {"login": result, "static": result},
                                     "two": {"login": result, "static": result}})
    lines = table.splitlines()
    assert lines[0].split() == ["one", "two"]
    assert lines[1].split() == ["login", "req/s", "152.8", "152.8"]
    assert any(line.split()[:2] == ["static", "errors"] and line.split()[2:] == ["6", "6"] for line in lines)
