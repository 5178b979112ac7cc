"""The pure parts of the benchmark (tools/bench_report.py) and the load test: output parsing and target evaluation."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import pytest

from tools import bench_report, counting_pyinfra, loadtest

class FakeConnector:
    """What ``tools.counting_pyinfra`` wraps: pyinfra's SSH connector's two methods."""

    def __init__(self, name):
        self.host = SimpleNamespace(name=name)

    def run_shell_command(self, command, **kwargs):
        if command.startswith("sudo-move"):  # as an upload with sudo runs a command of its own
            self.run_shell_command("mv")
        return True, command

    def put_file(self, local, remote, **kwargs):
        return self.run_shell_command("sudo-move " + remote) if kwargs.get("sudo") else (True, remote)


def test_counting_pyinfra_counts_commands_and_uploads_per_host(tmp_path):
    counts = counting_pyinfra.count_calls(FakeConnector)
    one, other = FakeConnector("one"), FakeConnector("other")
    assert one.run_shell_command("echo") == (True, "echo")  # results pass through
    one.put_file("a", "/x")
    one.put_file("b", "/y", sudo=True)  # an upload, and its commands counted as commands
    other.run_shell_command("true")
    assert counts == {"commands": {"one": 3, "other": 1}, "uploads": {"one": 2}}
    counting_pyinfra.write_counts(counts, str(tmp_path / "counts.json"))
    assert json.loads((tmp_path / "counts.json").read_text()) == {"commands": {"one": 3, "other": 1},
                                                                  "uploads": {"one": 2}}


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
        "cold_ice": False,
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


def size(hosts, **overrides):
    """A fleet record as benchmark._deploy_and_rerun makes it: within every target by default."""
    record = dict(hosts=hosts, cold_s=57.0 * (1 + 0.2 * (hosts - 1)), cold_load=(1.0, 3.0),
                  cold_cpu_s=0.9 * hosts, rerun_s=5.5, rerun_load=(3.0, 2.0), rerun_cpu_s=0.5 * hosts,
                  healthy=hosts, rerun_changed=0, rerun_changed_operations=[], ice_fetch_or_build=0,
                  ice_abis=1, ice_cache="cached", ice_uploaded=hosts)
    record.update(overrides)
    return record


def fleet(*sizes):
    return measurements(sizes=list(sizes))


def test_evaluate_fleet_rows_and_verdicts_for_every_size():
    rows = bench_report.evaluate(fleet(size(1), size(8), size(16)))
    result = verdicts(rows)
    for hosts in ("1 host", "8 hosts", "16 hosts"):
        assert result[f"3. {hosts}, cold: control CPU per host (s)"] == "PASS"  # 0.90
        assert result[f"3. {hosts}, re-run: control CPU per host (s)"] == "PASS"  # 0.50
        assert result[f"3. {hosts} healthy (login page)"] == "PASS"
        assert result[f"3. {hosts}, re-run changed operations"] == "PASS"
        assert result[f"4. {hosts}: Ice fetched/built"] == "PASS"
    assert len([item for item in result if item.startswith(("3.", "4."))]) == 15  # 5 targets x 3 sizes
    assert bench_report.exit_status(rows) == 0
    measured = {row.item: row.measured for row in rows}
    assert measured["3. 8 hosts, cold: control CPU per host (s)"] == "0.90 (7.20 in all)"
    assert measured["3. 8 hosts, re-run (s)"] == "5.5 (load 3.0->2.0)"
    assert measured["3. 8 hosts, cold (s)"] == "136.8 = 2.40 x 1 host (load 1.0->3.0)"
    assert measured["3. 1 host, cold (s)"] == "57.0 (load 1.0->3.0)"  # no ratio to itself


def test_evaluate_wall_time_of_a_fleet_is_informational():
    rows = bench_report.evaluate(fleet(size(1), size(8, cold_s=1000.0, rerun_s=300.0)))
    walls = [row for row in rows if row.item in ("3. 8 hosts, cold (s)", "3. 8 hosts, re-run (s)")]
    assert len(walls) == 2 and all(row.passed is None for row in walls)
    assert bench_report.exit_status(rows) == 0  # 17.5 x 1 host: the machine, not the deploy


def test_evaluate_control_cpu_per_host_must_stay_under_one_second():
    result = verdicts(bench_report.evaluate(fleet(size(1, cold_cpu_s=1.6), size(8, cold_cpu_s=8.0, rerun_cpu_s=7.9),
                                                  size(16, rerun_cpu_s=16.8))))
    assert result["3. 1 host, cold: control CPU per host (s)"] == "FAIL"  # 1.6
    assert result["3. 1 host, re-run: control CPU per host (s)"] == "PASS"
    assert result["3. 8 hosts, cold: control CPU per host (s)"] == "FAIL"  # exactly 1.0 is not under 1 s
    assert result["3. 8 hosts, re-run: control CPU per host (s)"] == "PASS"  # 0.99
    assert result["3. 16 hosts, cold: control CPU per host (s)"] == "PASS"
    assert result["3. 16 hosts, re-run: control CPU per host (s)"] == "FAIL"  # 1.05


def test_a_missed_cpu_target_fails_the_benchmark():
    rows = bench_report.evaluate(fleet(size(1), size(8, rerun_cpu_s=8.5)))
    assert bench_report.exit_status(rows) == 1


def test_evaluate_fleet_failures():
    result = verdicts(bench_report.evaluate(fleet(size(1), size(8, healthy=7, ice_fetch_or_build=2,
                                                                   rerun_changed=1))))
    assert result["3. 8 hosts healthy (login page)"] == "FAIL"
    assert result["4. 8 hosts: Ice fetched/built"] == "FAIL"  # two hosts for one ABI
    assert result["3. 8 hosts, re-run changed operations"] == "FAIL"
    assert result["3. 1 host healthy (login page)"] == "PASS"


def test_evaluate_ice_with_the_cached_wheel_is_never_fetched():
    result = verdicts(bench_report.evaluate(fleet(size(1), size(8, ice_fetch_or_build=1))))
    assert result["4. 8 hosts: Ice fetched/built"] == "FAIL"  # the control cache held the wheel


def test_evaluate_empty_ice_cache_needs_exactly_one_build_per_abi():
    def ice(builds):
        rows = bench_report.evaluate(fleet(size(1), size(8, ice_cache="empty", ice_fetch_or_build=builds)))
        return verdicts(rows)["4. 8 hosts: Ice fetched/built"]

    assert ice(0) == "FAIL"  # an empty cache that built nothing is wrong
    assert ice(1) == "PASS"
    assert ice(2) == "FAIL"


def test_evaluate_without_fleet_sizes_has_no_fleet_rows():
    assert not [row for row in bench_report.evaluate(measurements()) if row.item.startswith(("3.", "4."))]


def test_parse_fleet_sizes():
    assert bench_report.parse_fleet_sizes("8,16") == [8, 16]
    assert bench_report.parse_fleet_sizes(" 16, 8,8 ") == [8, 16]  # smallest first, each once
    assert bench_report.parse_fleet_sizes("2") == [2]


@pytest.mark.parametrize("text", ["", ",", "1", "8,1", "0,8", "-3", "eight", "8;16", "2.5"])
def test_parse_fleet_sizes_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        bench_report.parse_fleet_sizes(text)


def test_the_options_take_fleet_sizes_and_refuse_a_one_host_fleet(capsys):
    from tools import benchmark  # parse_args only: main() would start containers

    assert benchmark.parse_args([]).fleet_sizes == [8, 16]
    assert benchmark.parse_args(["--fleet-sizes", "4"]).fleet_sizes == [4]
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(["--fleet-sizes", "1,8"])
    assert exit_info.value.code == 2
    assert "at least 2 hosts" in capsys.readouterr().err


def test_merge_rounds_takes_medians_of_times_and_the_worst_verdict_inputs():
    merged = bench_report.merge_rounds([
        size(1, cold_s=50.0, cold_cpu_s=1.0, rerun_changed=0),
        size(1, cold_s=70.0, cold_cpu_s=3.0, rerun_changed=2, rerun_changed_operations=["a"], healthy=0),
        size(1, cold_s=60.0, cold_cpu_s=1.2, rerun_load=(9.0, 9.5)),
    ])
    assert merged["cold_s"] == 60.0 and merged["cold_cpu_s"] == 1.2
    assert merged["rerun_changed"] == 2 and merged["rerun_changed_operations"] == ["a"]
    assert merged["healthy"] == 0
    assert merged["rerun_load"] == (9.0, 9.5)  # the last round's


def test_fleet_summary_shows_cpu_per_host_and_load():
    line = bench_report.fleet_summary(size(8, cold_cpu_s=12.0, rerun_cpu_s=4.0))
    assert line.startswith("8 hosts: cold 136.8s (load 1.0->3.0), control CPU 12.00s = 1.50s/host; ")
    assert "re-run 5.5s (load 3.0->2.0), control CPU 4.00s = 0.50s/host" in line
    assert line.endswith("0 changed on re-run; 8/8 healthy")


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
