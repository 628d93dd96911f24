"""The pytest plugin: generated suites (--gradcheck-layer), the fixture, the marker.

Runs pytest inside pytest with ``pytester``; in-process except where loading through the
``pytest11`` entry point is itself under test. The example layers come from ``gradcheck/examples/``;
layers with special needs are written into the pytester directory.
"""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from gradcheck.loading import load_target, make_input

NO_BENCH = ("-p", "no:benchmark")  # keeps runs fast where the benchmark is not under test


# --------------------------------------------------------------------------- generated suite


def test_correct_layer_passes_every_generated_item(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--gradcheck-layer=gradcheck.examples.layers:Dense",
                                "--gradcheck-seeds=2", *NO_BENCH)
    result.assert_outcomes(passed=4)  # float64 and float32, seeds 0 and 1


@pytest.mark.parametrize("spec", ["gradcheck.examples.layers:Conv1d",
                                  "gradcheck.examples.layers:BatchNorm1d",
                                  "gradcheck.examples.layers:dense_relu"])
def test_other_correct_example_layers_pass(pytester: pytest.Pytester, spec: str) -> None:
    result = pytester.runpytest(f"--gradcheck-layer={spec}", *NO_BENCH)
    result.assert_outcomes(passed=6)


def test_buggy_layer_fails_with_tensor_element_and_repeat_command(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--gradcheck-layer=gradcheck.examples.layers:BuggyDense",
                                "--gradcheck-seeds=1", *NO_BENCH)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*_ gradcheck gradcheck.examples.layers:BuggyDense-float64-seed0 _*",
        "gradcheck: FAILED W[[]1, 0[]]*1 of 3 tensors failed"
        "*gradcheck.examples.layers.BuggyDense*float64*",
        "W *(4, 3)*FAILED*1 / 12*",
        "W: worst elements*",
        "  W[[]1, 0[]] *",
        # the report's own repeat line says how x was built: the command line
        "repeat with: python -m gradcheck check gradcheck.examples.layers:BuggyDense"
        " --shape 8,4 --dtype float64 --seed 0",
        "*_ gradcheck gradcheck.examples.layers:BuggyDense-float32-seed0 _*",
        "W *(4, 3)*float32*FAILED*",
        # the summary line is cut at the terminal width
        "FAILED gradcheck::gradcheck.examples.layers:BuggyDense-float64-seed0 - gradch*",
    ])
    # only the wrong tensor fails, and the failure is the report, not a traceback
    result.stdout.fnmatch_lines(["x *(8, 4)*ok*0 / 32*", "b *(3,)*ok*0 / 3*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*def runtest*")


def test_items_are_parametrized_by_dtype_and_seed_with_readable_ids(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--gradcheck-layer=gradcheck.examples.layers:BuggyDense",
                                "--gradcheck-layer=gradcheck.examples.layers:Conv1d",
                                # once is enough
                                "--gradcheck-layer=gradcheck.examples.layers:BuggyDense",
                                "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if line.startswith("gradcheck::")]
    expected = [f"gradcheck::{spec}-{dtype}-seed{seed}"
                for spec in ("gradcheck.examples.layers:BuggyDense",
                             "gradcheck.examples.layers:Conv1d")
                for dtype in ("float64", "float32") for seed in range(3)]
    benchmarks = [f"gradcheck::{spec}-{dtype}-{timed}-benchmark"
                  for spec in ("gradcheck.examples.layers:BuggyDense",
                               "gradcheck.examples.layers:Conv1d")
                  for dtype in ("float64", "float32") for timed in ("forward", "backward")]
    assert sorted(ids) == sorted(expected + benchmarks)


def test_keyword_selection_and_gradcheck_marker_select_generated_items(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_other="def test_unrelated():\n    pass\n")
    args = ("--gradcheck-layer=gradcheck.examples.layers:BuggyDense", *NO_BENCH)
    pytester.runpytest(*args, "-m", "gradcheck").assert_outcomes(failed=6, deselected=1)
    pytester.runpytest(*args, "-k", "float32 and seed2").assert_outcomes(failed=1, deselected=6)
    pytester.runpytest(*args, "-m", "not gradcheck").assert_outcomes(passed=1, deselected=6)


def test_last_failed_reruns_the_failed_generated_items(pytester: pytest.Pytester) -> None:
    args = ("--gradcheck-layer=gradcheck.examples.layers:Dense",
            "--gradcheck-layer=gradcheck.examples.layers:BuggyDense", "--gradcheck-seeds=1",
            *NO_BENCH)
    pytester.runpytest(*args).assert_outcomes(passed=2, failed=2)
    result = pytester.runpytest(*args, "--lf", "-v")
    result.assert_outcomes(failed=2, deselected=2)
    result.stdout.fnmatch_lines(
        ["gradcheck::gradcheck.examples.layers:BuggyDense-float64-seed0 FAILED*"])


def test_float32_items_only_when_the_factory_takes_dtype(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mylayers="""
        import numpy as np

        class Scale:
            input_shape = (3, 2)

            def __init__(self, rng=None):
                self.seen_rng = rng
                self.params = {"w": np.array([1.5, -2.0])}
                self.grads = {}

            def forward(self, x):
                self.x = x
                return x * self.params["w"]

            def backward(self, g):
                self.grads["w"] = (g * self.x).sum(axis=0)
                return g * self.params["w"]

        def plain():
            return Scale()
    """)
    result = pytester.runpytest("--gradcheck-layer=mylayers:Scale",
                                "--gradcheck-layer=mylayers:plain", "--collect-only", "-q",
                                *NO_BENCH)
    ids = [line for line in result.stdout.lines if line.startswith("gradcheck::")]
    assert ids == [f"gradcheck::mylayers:{f}-float64-seed{s}" for f in ("Scale", "plain")
                   for s in range(3)]
    pytester.runpytest("--gradcheck-layer=mylayers:Scale", *NO_BENCH).assert_outcomes(passed=3)


def test_factory_gets_a_seeded_rng_and_the_dtype(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(recording="""
        import json, os
        import numpy as np

        def factory(*, rng, dtype):
            with open("calls.jsonl", "a") as f:
                f.write(json.dumps([str(np.dtype(dtype)), float(rng.random())]) + "\\n")
            layer = type("Id", (), {})()
            layer.params, layer.grads = {}, {}
            layer.forward = lambda x: 2.0 * x
            layer.backward = lambda g: 2.0 * g
            return layer
    """)
    result = pytester.runpytest("--gradcheck-layer=recording:factory", "--gradcheck-shape=4",
                                "--gradcheck-seeds=2", *NO_BENCH)
    result.assert_outcomes(passed=4)
    calls = [json.loads(line) for line in (pytester.path / "calls.jsonl").read_text().splitlines()]
    dtypes = [dtype for dtype, _ in calls]
    draws = [draw for _, draw in calls]
    assert sorted(dtypes) == ["float32", "float32", "float64", "float64"]  # one call per item
    # seed s gives the layer default_rng([s, 0]), the same for both dtypes
    for seed in range(2):
        assert float(np.random.default_rng([seed, 0]).random()) in draws
    assert len(set(draws)) == 2


def test_shape_comes_from_option_or_input_shape_attribute(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(shapeless="""
        import numpy as np

        class Square:
            params, grads = {}, {}
            def forward(self, x):
                self.x = x
                return x * x
            def backward(self, g):
                return 2 * self.x * g
    """)
    result = pytester.runpytest("--gradcheck-layer=shapeless:Square", *NO_BENCH)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gradcheck-layer=shapeless:Square: the layer has no "
                                 "input_shape attribute; pass --gradcheck-shape=8,4*"])
    result = pytester.runpytest("--gradcheck-layer=shapeless:Square", "--gradcheck-shape=5,3",
                                "--gradcheck-seeds=1", "-v", *NO_BENCH)
    result.assert_outcomes(passed=1)
    # the option wins over the attribute too
    result = pytester.runpytest("--gradcheck-layer=gradcheck.examples.layers:BuggyDense",
                                "--gradcheck-shape=2,4", "--gradcheck-seeds=1", *NO_BENCH)
    result.stdout.fnmatch_lines(["x *(2, 4)*ok*0 / 8*"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gradcheck.examples.nolayers:Dense",
         "cannot import module 'gradcheck.examples.nolayers'*"),
        ("gradcheck.examples.layers:Dnese",
         "module 'gradcheck.examples.layers' has no attribute 'Dnese' (did you mean 'Dense'?)"),
        ("gradcheck.examples.layers.Dense",
         "invalid layer 'gradcheck.examples.layers.Dense': expected 'package.module:factory' "
         "(did you mean 'gradcheck.examples.layers:Dense'?)"),
        ("gradcheck.examples.layers:__all__",
         "'gradcheck.examples.layers:__all__' is a list, not a callable*"),
    ],
)
def test_bad_factory_path_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, spec: str, message: str
) -> None:
    result = pytester.runpytest(f"--gradcheck-layer={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # 4
    result.stderr.fnmatch_lines([f"ERROR: --gradcheck-layer={spec}: {message}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    for args, message in [
        (["--gradcheck-shape=8,x"], "ERROR: --gradcheck-shape: invalid shape '8,x'*"),
        (["--gradcheck-mode=fsat"], "ERROR: --gradcheck-mode: invalid mode 'fsat': "
                                    "expected one of auto, full, fast"),
        (["--gradcheck-rtol=-1"], "ERROR: --gradcheck-rtol: invalid tolerance '-1'*"),
        (["--gradcheck-seeds=0"], "ERROR: --gradcheck-seeds: invalid value '0'*"),
    ]:
        result = pytester.runpytest("--gradcheck-layer=gradcheck.examples.layers:Dense", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        result.stderr.fnmatch_lines([message])
    pytester.makeini("[pytest]\ngradcheck_kinks = hul\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option gradcheck_kinks: invalid kinks 'hul'*"])


def test_user_module_that_fails_to_import_shows_where(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(brokenlayers="import numpy\nSCALE = 1 / 0\n")
    result = pytester.runpytest("--gradcheck-layer=brokenlayers:Dense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # one line: the exception, where, its message (no page of import machinery)
    [line] = [line for line in result.stderr.lines if line.strip()]
    assert line == ("ERROR: --gradcheck-layer=brokenlayers:Dense: loading the layer raised "
                    "ZeroDivisionError at brokenlayers.py:2 in <module>: division by zero")


def test_layer_whose_backward_raises_shows_the_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(raising="""
        class Layer:
            input_shape = (2, 2)
            params, grads = {}, {}
            def forward(self, x):
                return x
            def backward(self, g):
                raise RuntimeError("backward not written yet")
    """)
    result = pytester.runpytest("--gradcheck-layer=raising:Layer", "--gradcheck-seeds=1", *NO_BENCH)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*raise RuntimeError*", "E*RuntimeError: backward not written yet",
                                 "raising.py:7: RuntimeError"])


def test_gradient_of_the_wrong_shape_is_a_finding(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(wrongshape="""
        import numpy as np

        class Layer:
            input_shape = (3, 2)
            def __init__(self):
                self.params = {"w": np.ones(2)}
                self.grads = {}
            def forward(self, x):
                self.x = x
                return x * self.params["w"]
            def backward(self, g):
                self.grads["w"] = (g * self.x).sum()   # summed over everything: shape ()
                return g * self.params["w"]
    """)
    result = pytester.runpytest("--gradcheck-layer=wrongshape:Layer", "--gradcheck-seeds=1",
                                *NO_BENCH)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["gradcheck: *w*", "repeat with: python -m "
                                 "gradcheck check wrongshape:Layer --shape 3,2 --dtype float64 "
                                 "--seed 0"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_options_reach_the_generated_checks_cli_over_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        gradcheck_mode = "fast"
        gradcheck_rtol = "0.25"
        gradcheck_seeds = "1"
    """)
    args = ("--gradcheck-layer=gradcheck.examples.layers:BuggyDense", *NO_BENCH)
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["gradcheck: *mode fast*", "*rtol 0.25*",
                                 "repeat with: *--seed 0 --rtol 0.25 --mode fast"])
    result = pytester.runpytest(*args, "--gradcheck-mode=full", "--gradcheck-atol=0.5",
                                "--gradcheck-kinks=hull")
    result.stdout.fnmatch_lines(["gradcheck: *mode full, kinks hull*",
                                 "*verified if that bar <= 0.25*|n| + 0.5 (given)*"])


def test_fuzzed_inputs_hold_exact_zeros_and_repeat_per_seed() -> None:
    for seed in range(4):
        x = make_input((8, 4), "float64", seed)
        assert (x == 0).sum() >= 4  # about a quarter of the entries, on purpose
        assert np.array_equal(x, make_input((8, 4), "float64", seed))
        assert bool((x[0] == 0).all()) == (seed % 2 == 1)  # odd seeds: a whole zero sample
    assert not np.array_equal(make_input((8, 4), "float64", 0), make_input((8, 4), "float64", 1))
    x32 = make_input((8, 4), "float32", 2)
    assert x32.dtype == np.float32
    np.testing.assert_array_equal(x32, make_input((8, 4), "float64", 2).astype(np.float32))


def test_target_builds_layers_in_the_requested_dtype() -> None:
    target = load_target("gradcheck.examples.layers:Conv1d")
    layer, x = target.make_case(target.input_shape(), "float32", seed=1)
    assert x.shape == (2, 2, 9) and x.dtype == np.float32
    assert {p.dtype for p in layer.params.values()} == {np.dtype(np.float32)}


# --------------------------------------------------------------------------- benchmark


# the generated benchmark items: tests/test_benchmark_plugin.py


# --------------------------------------------------------------------------- fixture and marker

FIXTURE_TESTS = """
    import numpy as np
    import pytest
    import gradcheck as gc

    X = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]])

    def square(x):
        return float(np.sum(x ** 2))

    def test_right(gradcheck):
        report = gradcheck.check_function(square, lambda x: 2 * x, X)
        assert report.ok

    def test_wrong(gradcheck):
        def grad(x):
            g = 2 * x
            g[1, 2] += 1.0
            return g
        gradcheck.check_function(square, grad, X)

    def test_wrong_but_returned(gradcheck):
        report = gc.check_function(square, lambda x: 3 * x, X, **gradcheck.options)
        assert not report.ok
        assert report.tensors[0].mismatched == 5   # every element but the zero

    def test_layer_and_params(gradcheck):
        from gradcheck.examples.layers import BuggyDense, Dense
        x = np.random.default_rng(0).standard_normal((8, 4))
        gradcheck.check_layer(Dense(), x)
        with pytest.raises(gc.GradientMismatch, match=r"W\\[1, 0\\]"):
            gradcheck.check_layer(BuggyDense(), x)
        w = {"w": np.array([1.0, -2.0])}
        gradcheck.check_params(lambda: float(np.sum(w["w"] ** 3)),
                               lambda: {"w": 3 * w["w"] ** 2}, w)
"""


def test_fixture_checks_and_fails_with_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FIXTURE_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*___ test_wrong ___*",
        "E  *gradcheck.errors.GradientMismatch: gradcheck: FAILED*1 of 1 tensors failed*",
        "E  *x *(2, 3)*FAILED*1 / 6*",
        "E  *x[[]1, 2[]] *",
    ])
    # our own frames are hidden from the traceback
    result.stdout.no_fnmatch_line("*plugin.py*")


MARKER_TESTS = """
    import numpy as np
    import pytest

    X = np.array([1.0, -2.0, 0.5])

    def test_configured_from_command_line(gradcheck):
        assert gradcheck.options == {"rtol": 1e-4, "mode": "full", "kinks": "subgradient"}
        report = gradcheck.check_function(lambda x: float(x @ x), lambda x: 2 * x, X)
        assert report.options["rtol"] == 1e-4 and report.options["mode"] == "full"

    @pytest.mark.gradcheck(mode="fast", atol=1e-3)
    def test_marker_overrides(gradcheck):
        assert gradcheck.options == {"rtol": 1e-4, "atol": 1e-3, "mode": "fast",
                                     "kinks": "subgradient"}
        report = gradcheck.check_function(lambda x: float(x @ x), lambda x: 2 * x, X)
        assert report.options["mode"] == "fast" and report.options["atol"] == 1e-3

    def test_call_overrides(gradcheck):
        report = gradcheck.check_function(lambda x: float(x @ x), lambda x: 2 * x, X,
                                          mode="fast", seed=7)
        assert report.options["mode"] == "fast" and report.options["seed"] == 7

    @pytest.mark.gradcheck(kinks="hull", rtol=0.5)
    class TestClassMarker:
        @pytest.mark.gradcheck(rtol=0.25)
        def test_closest_marker_wins(self, gradcheck):
            assert gradcheck.options["kinks"] == "hull"
            assert gradcheck.options["rtol"] == 0.25

        def test_loose_rtol_accepts_a_small_error(self, gradcheck):
            # 2x + 10% is within rtol 0.5 of 2x
            gradcheck.check_function(lambda x: float(x @ x), lambda x: 2.2 * x, X)

    @pytest.mark.gradcheck(rtl=1e-3)
    def test_misspelled_marker_option(gradcheck):
        pass
"""


def test_marker_and_options_configure_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKER_TESTS)
    result = pytester.runpytest("--gradcheck-rtol=1e-4", "--gradcheck-mode=full",
                                "--strict-markers")
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.gradcheck: unexpected rtl (did you mean 'rtol'?);"
                                 " it takes keyword arguments rtol, atol, mode, kinks, seed, "
                                 "reset_random"])


def test_fixture_turns_report_warnings_into_pytest_warnings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import numpy as np
        from gradcheck.examples.layers import dense_relu

        def test_zero_batch(gradcheck):
            report = gradcheck.check_layer(dense_relu(), np.zeros((8, 4)))
            assert report.ok and report.warnings
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    # count ours only: newer pytest adds PytestAssertRewriteWarnings in an in-process run
    ours = [line for line in result.outlines if "GradcheckWarning:" in line]
    assert len(ours) == 1, result.outlines
    result.stdout.fnmatch_lines(["*GradcheckWarning: test_zero_batch: x: * kink coordinate*"])


def test_marker_is_declared(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gradcheck(rtol=None, atol=None, mode=None, *"])


# --------------------------------------------------------------------------- entry point


def test_entry_point_loads_plugin_and_costs_nothing_unused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import sys

        def test_nothing_generated(request, gradcheck):
            assert request.config.pluginmanager.hasplugin("gradcheck")  # via the entry point
            assert [item.name for item in request.session.items] == ["test_nothing_generated"]
            assert "gradcheck.examples.layers" not in sys.modules   # no user module was imported
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- issue 12


def test_dash_m_gradcheck_runs_the_checks_only_and_the_benchmark_has_its_own_marker(
    pytester: pytest.Pytester,
) -> None:
    args = ("--gradcheck-layer=gradcheck.examples.layers:Dense", "--gradcheck-seeds=1",
            "--benchmark-disable")
    pytester.runpytest(*args, "-m", "gradcheck").assert_outcomes(passed=2, deselected=4)
    result = pytester.runpytest(*args, "-m", "gradcheck_benchmark", "-v")
    result.assert_outcomes(passed=4, deselected=2)
    result.stdout.fnmatch_lines(["*Dense-float64-backward-benchmark PASSED*"])
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gradcheck_benchmark: *"])


def test_warnings_point_at_the_factory_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(widelayers="""
        import numpy as np


        class Twice:
            input_shape = (70, 70)   # 4900 elements: "auto" picks fast, and says so

            def forward(self, x):
                return 2 * x

            def backward(self, g):
                return 2 * g


        def make_twice():
            return Twice()
    """)
    result = pytester.runpytest("--gradcheck-layer=widelayers:make_twice",
                                "--gradcheck-layer=widelayers:Twice", "--gradcheck-seeds=1",
                                *NO_BENCH)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*widelayers.py:14: GradcheckWarning: widelayers:make_twice-*",
                                 "*def make_twice():",
                                 "*widelayers.py:4: GradcheckWarning: widelayers:Twice-*",
                                 "*class Twice:"])


def test_a_huge_shape_is_refused_unless_forced(pytester: pytest.Pytester) -> None:
    args = ("--gradcheck-layer=gradcheck.examples.layers:Dense",
            "--gradcheck-shape=100000000,4", "--collect-only", "-q", *NO_BENCH)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gradcheck-layer=*: an input of shape (100000000, 4) "
                                 "has 400,000,000 elements (3.2 GB in float64)*--gradcheck-force*"])
    result = pytester.runpytest(*args, "--gradcheck-force")
    assert result.ret == pytest.ExitCode.OK  # collected only: nothing built


def test_a_module_calling_sys_exit_on_import_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(exitinglayers="import sys\nsys.exit(3)\n")
    result = pytester.runpytest("--gradcheck-layer=exitinglayers:Dense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gradcheck-layer=exitinglayers:Dense: loading the "
                                 "layer called sys.exit(3)"])


def test_fixture_checks_pairs_and_losses(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import numpy as np
        import pytest
        import gradcheck as gc

        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dout, x):
            return dout * (x > 0)

        def square_loss(x, target):
            return float(np.sum((x - target) ** 2)), 2 * (x - target)

        X = np.array([[0.5, -1.0, 2.0]])

        @pytest.mark.gradcheck(mode="full")
        def test_pair_and_loss(gradcheck):
            assert gradcheck.check_pair(relu_forward, relu_backward, X).ok
            assert gradcheck.check_loss(square_loss, X, np.zeros((1, 3))).ok
            with pytest.raises(gc.GradientMismatch):
                gradcheck.check_pair(relu_forward, lambda d, x: d, X)
            with pytest.raises(gc.GradcheckArgumentError, match="check_loss\\(\\) got an "
                               "unexpected option 'rtl' \\(did you mean 'rtol'"):
                gradcheck.check_loss(square_loss, X, np.zeros((1, 3)), rtl=1e-3)
    """)
    pytester.runpytest().assert_outcomes(passed=1)


# --------------------------------------------------------------------------- audit of issue 12


def test_a_base_exception_at_import_is_a_one_line_usage_error_not_an_internal_error(
    pytester: pytest.Pytester,
) -> None:
    # a module name of its own: in-process runs share sys.modules
    pytester.makepyfile(
        raisingbaselayers="class Custom(BaseException):\n    pass\n\nraise Custom('odd')\n")
    result = pytester.runpytest("--gradcheck-layer=raisingbaselayers:Dense", *NO_BENCH)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # was INTERNALERROR (3)
    [line] = [line for line in result.stderr.lines if line.strip()]
    assert line == ("ERROR: --gradcheck-layer=raisingbaselayers:Dense: loading the layer raised "
                    "Custom at raisingbaselayers.py:4 in <module>: odd")


def test_a_generated_item_whose_layer_breaks_the_protocol_fails_with_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(nonelayers="class Layer:\n    input_shape = (2, 3)\n"
                                   "    forward = lambda self, x: None  # a missing return\n"
                                   "    backward = lambda self, g: g\n")
    result = pytester.runpytest("--gradcheck-layer=nonelayers:Layer", "--gradcheck-seeds=1",
                                *NO_BENCH)
    result.assert_outcomes(failed=1)
    start = next(i for i, line in enumerate(result.outlines) if "_ gradcheck nonelayers" in line)
    # up to the next section ("warnings summary": newer pytest warns about assert rewriting
    # in an in-process run; "short test summary")
    end = next(i for i, line in enumerate(result.outlines) if i > start and line.startswith("="))
    failure = [line for line in result.outlines[start + 1:end] if line.strip()]
    assert failure == [
        "gradcheck: nonelayers:Layer: layer.forward(x) returned None (a missing return?): "
        "forward must return its output (a numpy float array; a float for a loss)",
        "repeat with: python -m gradcheck check nonelayers:Layer --shape 2,3 --dtype float64 "
        "--seed 0"]


def test_a_usage_error_in_a_users_test_shows_the_users_frames_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("""
        import numpy as np
        import gradcheck as gc

        class ReturnsNone:
            def forward(self, x):
                return None
            def backward(self, g):
                return g

        def test_direct():
            gc.assert_layer(ReturnsNone(), np.ones((2, 3)))

        def test_fixture(gradcheck):
            gradcheck.check_layer(ReturnsNone(), np.ones((2, 3)))
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*gc.assert_layer(ReturnsNone(), np.ones((2, 3)))",
                                 "E * layer.forward(x) returned None (a missing return?)*",
                                 "*gradcheck.check_layer(ReturnsNone(), np.ones((2, 3)))",
                                 "E * layer.forward(x) returned None (a missing return?)*"])
    for internal in ("core.py", "calls.py", "adapters.py", "options.py", "plugin.py"):
        result.stdout.no_fnmatch_line(f"*gradcheck/{internal}*")


def test_configured_options_never_clash_with_a_parameter_of_forward(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("""
        import numpy as np
        import pytest
        import gradcheck as gc

        def scale_forward(x, mode="train"):   # a parameter named like an option
            return 2 * x, None

        def scale_backward(dout, cache):
            return 2 * dout

        @pytest.mark.gradcheck(seed=3)
        def test_configured(gradcheck):
            report = gradcheck.check_pair(scale_forward, scale_backward, np.ones(3))
            assert report.options["mode"] == "full" and report.options["seed"] == 3

        def test_given_to_the_call(gradcheck):
            with pytest.raises(gc.GradcheckUsageError, match="mode= is gradcheck's option"):
                gradcheck.check_pair(scale_forward, scale_backward, np.ones(3), mode="fast")
    """)
    pytester.runpytest("--gradcheck-mode=full").assert_outcomes(passed=2)


def test_the_fixtures_methods_are_the_check_functions_signatures_and_help() -> None:
    import inspect
    import pydoc

    import gradcheck as gc
    from gradcheck.plugin import Checker

    checker = Checker()
    for name in ("check_layer", "check_function", "check_params", "check_pair", "check_loss"):
        method = getattr(checker, name)
        assert inspect.signature(method) == inspect.signature(getattr(gc, name)), name
        text = pydoc.render_doc(method, renderer=pydoc.plaintext)
        assert "configured options" in text and "- progress:" in text
    assert "check_pair(" in pydoc.render_doc(Checker, renderer=pydoc.plaintext)


# --------------------------------------------------------------------------- the project's ini

USER_LAYERS = """
    import numpy as np


    class Scale:
        '''A correct elementwise scale; no input_shape: the ini key gives the shape.'''

        def __init__(self, rng=None, dtype=np.float64):
            self.params = {"w": np.array([1.5, -2.0, 0.5], dtype=dtype)}
            self.grads = {}

        def forward(self, x):
            self.x = x
            return x * self.params["w"]

        def backward(self, g):
            self.grads["w"] = (g * self.x).sum(axis=0)
            return g * self.params["w"]


    class WrongScale(Scale):
        '''dw doubled: FAILED in every generated item.'''

        def backward(self, g):
            dx = super().backward(g)
            self.grads["w"] = 2 * self.grads["w"]
            return dx


    def float64_only(rng=None):
        return Scale(rng)
"""

OWN_TESTS = """
    import numpy as np
    import pytest

    from gradcheck.examples.layers import Dense


    @pytest.mark.gradcheck(mode="full")
    def test_scale_by_hand(gradcheck):
        gradcheck.check_layer(Dense(), np.ones((2, 4)))


    def test_unrelated():
        pass
"""


def _user_project(pytester: pytest.Pytester, ini: str) -> None:
    """A project of a user's own: a package with layers, its tests, a pyproject.toml."""
    pytester.mkpydir("mynet")
    (pytester.path / "mynet" / "layers.py").write_text(textwrap.dedent(USER_LAYERS))
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_own.py").write_text(textwrap.dedent(OWN_TESTS))
    pytester.makepyprojecttoml(ini)


PROJECT_INI = """
    [tool.pytest.ini_options]
    gradcheck_layers = ["mynet.layers:Scale", "mynet.layers:WrongScale"]
    gradcheck_shape = "5,3"
    gradcheck_dtypes = ["float64"]
    gradcheck_seeds = "2"
"""


def test_pytest_alone_runs_the_layers_of_the_pyproject_in_its_dtypes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user's project configures gradcheck in its pyproject.toml and runs plain ``pytest``
    (in a subprocess: the plugin comes in through its entry point): the generated checks
    run beside the project's own tests, in float64 only, at the configured shape; the
    wrong layer's items fail with the report."""
    _user_project(pytester, PROJECT_INI)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark",
                                           "-v")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines_random([
        "tests/test_own.py::test_scale_by_hand PASSED*",
        "tests/test_own.py::test_unrelated PASSED*",
        "gradcheck::mynet.layers:Scale-float64-seed0 PASSED*",
        "gradcheck::mynet.layers:Scale-float64-seed1 PASSED*",
        "gradcheck::mynet.layers:WrongScale-float64-seed0 FAILED*",
        "gradcheck::mynet.layers:WrongScale-float64-seed1 FAILED*",
        "repeat with: python -m gradcheck check mynet.layers:WrongScale --shape 5,3 "
        "--dtype float64 --seed 0",
    ])
    result.stdout.no_fnmatch_line("*float32*")
    # from a folder of the project, whose PYTHONPATH holds only that folder: the layers'
    # modules are found beside the pyproject.toml
    monkeypatch.chdir(pytester.path / "tests")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark",
                                           "-m", "gradcheck_generated")
    result.assert_outcomes(passed=2, failed=2, deselected=2)


def test_dash_m_gradcheck_generated_selects_the_generated_checks_alone(
    pytester: pytest.Pytester,
) -> None:
    """``-m gradcheck`` runs every test carrying the gradcheck marker (the generated checks
    and the user's marked test); ``-m gradcheck_generated`` the generated ones alone."""
    _user_project(pytester, PROJECT_INI)
    args = ("-p", "no:cacheprovider", *NO_BENCH, "-v")
    result = pytester.runpytest(*args, "-m", "gradcheck_generated")
    result.assert_outcomes(passed=2, failed=2, deselected=2)
    result.stdout.no_fnmatch_line("*test_scale_by_hand*")
    result = pytester.runpytest(*args, "-m", "gradcheck")
    result.assert_outcomes(passed=3, failed=2, deselected=1)
    result.stdout.fnmatch_lines(["*test_scale_by_hand PASSED*"])
    result = pytester.runpytest(*args, "-m", "not gradcheck_generated")
    result.assert_outcomes(passed=2, deselected=4)
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gradcheck_generated: *"])


def test_ini_layers_run_with_the_project_not_with_some_of_its_files(
    pytester: pytest.Pytester,
) -> None:
    """``pytest tests/test_own.py`` (an editor running one file) leaves the ini's layers out
    and imports none of them; ``pytest .`` runs them; ``--gradcheck-layer`` replaces them."""
    _user_project(pytester, PROJECT_INI)
    args = ("-p", "no:cacheprovider", *NO_BENCH)
    pytester.runpytest(*args, "tests/test_own.py").assert_outcomes(passed=2)
    pytester.runpytest(*args, "tests/test_own.py::test_unrelated").assert_outcomes(passed=1)
    pytester.runpytest(*args, ".").assert_outcomes(passed=4, failed=2)
    result = pytester.runpytest(*args, "--gradcheck-layer=mynet.layers:Scale",
                                "tests/test_own.py", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.no_fnmatch_line("*WrongScale*")


def test_dtypes_option_and_ini_key_choose_the_generated_dtypes(
    pytester: pytest.Pytester,
) -> None:
    args = ("--gradcheck-layer=gradcheck.examples.layers:Dense", "--gradcheck-seeds=1",
            "--collect-only", "-q")

    def ids(*more: str, bench: bool = False) -> list[str]:
        result = pytester.runpytest(*args, *(() if bench else NO_BENCH), *more)
        return [line for line in result.stdout.lines if line.startswith("gradcheck::")]

    spec = "gradcheck::gradcheck.examples.layers:Dense"
    assert ids() == [f"{spec}-float64-seed0", f"{spec}-float32-seed0"]
    # the benchmark items come in the same dtypes
    benchmarks = [i for i in ids("--gradcheck-dtypes=float64", bench=True)
                  if i.endswith("-benchmark")]
    assert benchmarks == [f"{spec}-float64-forward-benchmark",
                          f"{spec}-float64-backward-benchmark"]
    assert ids("--gradcheck-dtypes=float32") == [f"{spec}-float32-seed0"]
    pytester.makeini("[pytest]\ngradcheck_dtypes = float64\n")
    assert ids() == [f"{spec}-float64-seed0"]
    assert ids("--gradcheck-dtypes=float64,float32") == [f"{spec}-float64-seed0",
                                                         f"{spec}-float32-seed0"]


def test_bad_dtypes_and_a_dtype_the_factory_cannot_take_are_usage_errors(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--gradcheck-dtypes=float16")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gradcheck-dtypes: invalid dtypes 'float16': "
                                 "expected float64 or float32*"])
    pytester.mkpydir("mynet")
    (pytester.path / "mynet" / "layers.py").write_text(textwrap.dedent(USER_LAYERS))
    result = pytester.runpytest("--gradcheck-layer=mynet.layers:float64_only",
                                "--gradcheck-dtypes=float32", "--gradcheck-shape=2,3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gradcheck-layer=mynet.layers:float64_only: the "
                                 "factory takes no dtype argument, so the layer can be checked "
                                 "in float64 only, and the dtypes asked for are float32*"])


def test_a_bad_ini_layer_or_shape_is_a_usage_error_naming_the_ini_key(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        gradcheck_layers = ["gradcheck.examples.layers:Dnese"]
    """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option gradcheck_layers: "
                                 "gradcheck.examples.layers:Dnese: module "
                                 "'gradcheck.examples.layers' has no attribute 'Dnese' "
                                 "(did you mean 'Dense'?)"])
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        gradcheck_layers = ["gradcheck.examples.layers:Dense"]
        gradcheck_shape = "8,x"
    """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option gradcheck_shape: invalid shape '8,x'*"])
