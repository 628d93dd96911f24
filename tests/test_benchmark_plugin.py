"""The benchmark items that ``--gradcheck-layer`` generates: forward and backward apart, per
dtype, in pytest-benchmark groups; compared across runs with pytest-benchmark's own options;
and what happens when pytest-benchmark is not installed.

pytest runs inside pytest (``pytester``, in-process). Under pytest-xdist the outer run's
worker sets PYTEST_XDIST_WORKER, which makes an inner pytest-benchmark disable itself:
the ``inner`` fixture removes it, so the inner run times as a user's run would. An inner
run forgets the modules first imported during it, and numpy cannot be imported twice in one
process: this module imports numpy and the benchmark code itself, before any inner run.
"""
from __future__ import annotations

import json

import numpy  # noqa: F401  imported here, before any inner run: see below
import pytest

import gradcheck.bench
import gradcheck.plugin

NO_MACHINE_INFO = """
    import pytest

    @pytest.hookimpl(optionalhook=True)   # also where pytest-benchmark is left out
    def pytest_benchmark_generate_machine_info(config):
        return {}   # py-cpuinfo costs seconds and is not under test
"""
QUICK = ("--benchmark-max-time=0.005", "--benchmark-min-rounds=2")
CONV = "gradcheck.examples.layers:Conv1d"


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)
    pytester.makeconftest(NO_MACHINE_INFO)
    return pytester


def test_forward_and_backward_are_timed_apart_per_dtype_in_one_group(
        inner: pytest.Pytester) -> None:
    result = inner.runpytest(f"--gradcheck-layer={CONV}", "--benchmark-only", *QUICK,
                             "--benchmark-json=bench.json")
    result.assert_outcomes(passed=4, skipped=6)  # --benchmark-only skips the checks
    result.stdout.fnmatch_lines([f"*benchmark 'gradcheck {CONV} float64': 2 tests*"])
    benches = json.loads((inner.path / "bench.json").read_text())["benchmarks"]
    found = {(b["extra_info"]["dtype"], b["extra_info"]["timed"]): b for b in benches}
    assert sorted(found) == [("float32", "backward"), ("float32", "forward"),
                             ("float64", "backward"), ("float64", "forward")]
    backward = found["float64", "backward"]
    assert backward["fullname"] == f"gradcheck::{CONV}-float64-backward-benchmark"
    assert backward["group"] == f"gradcheck {CONV} float64"
    assert found["float64", "forward"]["group"] == backward["group"]
    assert backward["stats"]["rounds"] >= 2
    info = backward["extra_info"]
    assert info["layer"] == CONV and info["shape"] == [2, 2, 9]
    assert info["allocated_bytes"] > 0 and info["peak_bytes"] > 0
    assert info["backward_over_floor"] is None and "leading shape" in info["floor"]
    dense = inner.runpytest("--gradcheck-layer=gradcheck.examples.layers:Dense",
                            "--benchmark-only", *QUICK, "--benchmark-json=dense.json")
    dense.assert_outcomes(passed=4, skipped=6)
    benches = json.loads((inner.path / "dense.json").read_text())["benchmarks"]
    [info] = [b["extra_info"] for b in benches
              if b["extra_info"]["timed"] == "backward" and b["extra_info"]["dtype"] == "float64"]
    assert info["backward_over_floor"] > 0 and info["floor"].startswith("dW = x.T @ g")


def test_a_backward_regression_fails_benchmark_compare_fail(
        inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same node ids run twice: the second time the layer's backward sleeps 20 ms, a
    regression thousands of times its own time, which --benchmark-compare-fail catches
    (its threshold, 10x, is far below the regression and far above a busy machine's noise)."""
    inner.makepyfile(mylayer="""
        import os
        import time

        class Scale:
            input_shape = (4, 3)
            def __init__(self, rng=None):
                self.params, self.grads = {}, {}
            def forward(self, x):
                return 2 * x
            def backward(self, g):
                if os.environ.get("MYLAYER_SLOW"):
                    time.sleep(0.02)
                return 2 * g
    """)
    args = ("--gradcheck-layer=mylayer:Scale", "-m", "gradcheck_benchmark",
            "--benchmark-enable", "--benchmark-max-time=0.002", "--benchmark-min-rounds=3")
    inner.runpytest(*args, "--benchmark-autosave").assert_outcomes(passed=2, deselected=3)
    monkeypatch.setenv("MYLAYER_SLOW", "1")
    result = inner.runpytest(*args, "--benchmark-compare",
                             "--benchmark-compare-fail=median:1000%")
    assert result.ret != 0
    output = [*result.stdout.lines, *result.stderr.lines]
    assert any("Performance has regressed" in line for line in output), output[-20:]
    # the backward is named (the forward's own median is left alone: on a busy machine a
    # microsecond call may vary, and that is not what this test is about)
    assert any("Scale-float64-backward-benchmark" in line and "median" in line
               for line in output), output[-20:]


def test_benchmark_items_run_once_when_disabled_and_are_absent_when_left_out(
        inner: pytest.Pytester) -> None:
    args = ("--gradcheck-layer=gradcheck.examples.layers:Dense", "--gradcheck-seeds=1")
    inner.runpytest(*args, "--benchmark-disable").assert_outcomes(passed=6)
    result = inner.runpytest(*args, "--benchmark-skip", "-rs")
    result.assert_outcomes(passed=2, skipped=4)
    result = inner.runpytest(*args, "-p", "no:benchmark", "--collect-only", "-q")
    result.stdout.no_fnmatch_line("*benchmark*")  # the user left it out on purpose
    result.stdout.fnmatch_lines(["2 tests collected*"])


def test_without_pytest_benchmark_the_items_skip_saying_what_to_install(
        inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gradcheck.plugin, "_benchmark_installed", lambda: False)
    args = ("--gradcheck-layer=gradcheck.examples.layers:Dense", "--gradcheck-seeds=1",
            "-p", "no:benchmark")
    result = inner.runpytest(*args, "-m", "gradcheck_benchmark", "-rs")
    result.assert_outcomes(skipped=4, deselected=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]4[]] *layers.py*: pytest-benchmark is not "
                                 "installed*pip install pytest-benchmark*"])
    result = inner.runpytest(*args, "-m", "gradcheck_benchmark", "--benchmark-enable")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --benchmark-enable: pytest-benchmark is not "
                                 "installed*pip install pytest-benchmark*"])
    # options that ask for no timing (often in addopts) are let through
    inner.runpytest(*args, "--benchmark-disable").assert_outcomes(passed=2, skipped=4)
