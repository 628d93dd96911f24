"""The command line: ``python -m gradcheck check``, its exit codes, --json, progress.

Most tests call ``main(argv)`` in-process; a few run the real ``python -m gradcheck``
and the ``gradcheck`` console script.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradcheck.cli import main

BUGGY = "gradcheck.examples.layers:BuggyDense"


def console_script() -> str:
    """The installed ``gradcheck`` command of the Python running the tests.

    Looked up beside ``sys.executable``, not on PATH, so the suite also finds it when run as
    ``.venv/bin/python -m pytest`` without activating the venv.
    """
    name = "gradcheck.exe" if sys.platform == "win32" else "gradcheck"
    script = Path(sys.executable).parent / name
    assert script.is_file(), f"the gradcheck console script is not installed: no {script}"
    return str(script)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_correct_layer_exits_0_and_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check", "gradcheck.examples.layers:Dense", "--shape", "8,4"], capsys)
    assert code == 0
    assert out.startswith("gradcheck: all 3 tensors ok  (layer gradcheck.examples.layers.Dense")
    assert err == ""  # no progress: stderr is not a terminal here


@pytest.mark.parametrize("spec", ["gradcheck.examples.layers:Conv1d",
                                  "gradcheck.examples.layers:BatchNorm1d",
                                  "gradcheck.examples.layers:dense_relu"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_example_layers_exit_0(
    capsys: pytest.CaptureFixture[str], spec: str, dtype: str
) -> None:
    code, out, _ = run(["check", spec, "--dtype", dtype, "--seed", "1"], capsys)
    assert code == 0, out


def test_wrong_gradient_exits_1_naming_tensor_and_element(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["check", BUGGY, "--shape", "8,4"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("gradcheck: FAILED W[1, 0]: analytic")
    assert "1 of 3 tensors failed" in lines[0]
    [w_row] = [line for line in lines if line.startswith("W ")]
    assert w_row.split()[:2] == ["W", "(4,"] and "FAILED" in w_row and "1 / 12" in w_row
    [element] = [line for line in lines if line.startswith("  W[")]
    assert element.split()[:2] == ["W[1,", "0]"]
    analytic, numeric = map(float, element.split()[2:4])
    assert analytic == pytest.approx(-numeric, rel=1e-6)  # the sign flip of BuggyDense


def test_json_is_the_report_as_a_dict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", BUGGY, "--shape", "8,4", "--json", "--seed", "2"], capsys)
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    by_name = {t["name"]: t for t in data["tensors"]}
    assert set(by_name) == {"x", "W", "b"}
    assert by_name["x"]["ok"] and by_name["b"]["ok"]
    w = by_name["W"]
    assert (w["ok"], w["shape"], w["mismatched"], w["size"]) == (False, [4, 3], 1, 12)
    [worst] = w["worst"]
    assert worst["index"] == [1, 0]
    assert worst["analytic"] == pytest.approx(-worst["numeric"], rel=1e-6)
    assert data["options"]["seed"] == 2


def test_options_reach_the_checker(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", "gradcheck.examples.layers:Dense", "--mode", "fast",
                        "--kinks", "hull", "--rtol", "0.01", "--atol", "0.001", "--seed", "5",
                        "--json"], capsys)
    assert code == 0
    options = json.loads(out)["options"]
    assert {k: options[k] for k in ("mode", "kinks", "rtol", "atol", "seed")} == {
        "mode": "fast", "kinks": "hull", "rtol": 0.01, "atol": 0.001, "seed": 5}
    assert {t["mode"] for t in json.loads(out)["tensors"]} == {"fast"}


def test_float32_and_seed_build_the_same_case_as_the_plugin_item(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import gradcheck as gc
    from gradcheck.loading import load_target

    target = load_target(BUGGY)
    layer, x = target.make_case((8, 4), "float32", 3)
    expected = gc.check_layer(layer, x, seed=3).to_dict()
    code, out, _ = run(["check", BUGGY, "--dtype", "float32", "--seed", "3", "--json"], capsys)
    assert code == 1
    got = json.loads(out)
    assert got["tensors"] == expected["tensors"]
    assert {t["dtype"] for t in got["tensors"]} == {"float32"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "gradcheck.examples.nolayers:Dense"],
         "argument LAYER: cannot import module 'gradcheck.examples.nolayers'"),
        (["check", "gradcheck.examples.layers:Dnese"],
         "argument LAYER: module 'gradcheck.examples.layers' has no attribute 'Dnese' "
         "(did you mean 'Dense'?)"),
        (["check", "gradcheck.examples.layers.Dense"],
         "(did you mean 'gradcheck.examples.layers:Dense'?)"),
        (["check", "gradcheck.examples.layers:Dense", "--shape", "8,x"],
         "argument --shape: invalid shape '8,x'"),
        (["check", "gradcheck.examples.layers:Dense", "--shape", "0,4"],
         "argument --shape: invalid shape"),
        (["check", "gradcheck.examples.layers:Dense", "--mode", "slow"],
         "argument --mode: invalid mode 'slow': expected one of auto, full, fast"),
        (["check", "gradcheck.examples.layers:Dense", "--rtol", "-1"],
         "argument --rtol: invalid tolerance"),
        (["check", "gradcheck.examples.layers:Dense", "--seed", "-1"],
         "argument --seed: invalid seed"),
        (["check"], "the following arguments are required: LAYER"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_with_an_argparse_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: gradcheck")
    last = err.strip().splitlines()[-1]
    assert last.startswith("gradcheck") and ": error: " in last
    assert message in last
    assert "Traceback" not in err


def test_shape_mismatch_message_points_into_the_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check", "gradcheck.examples.layers:Dense", "--shape", "8,5"], capsys)
    assert code == 2 and out == ""
    [line] = err.splitlines()  # one line, no usage, no traceback
    assert line.startswith("gradcheck: error: running 'gradcheck.examples.layers:"
                           "Dense' on an input of shape (8, 5) float64 raised ValueError at ")
    assert "gradcheck/examples/layers.py:" in line and "in forward" in line
    assert line.endswith("(is --shape right?)")


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


LAYERS_WITHOUT_EXTRAS = """
    import numpy as np

    class Scale:
        def __init__(self):
            self.params = {"w": np.array([1.5, -2.0])}
            self.grads = {}

        def forward(self, x):
            self.x = x
            return x * self.params["w"]

        def backward(self, g):
            self.grads["w"] = (g * self.x).sum(axis=0)
            return g * self.params["w"]

    class Summed(Scale):
        input_shape = (3, 2)

        def backward(self, g):
            grad_x = super().backward(g)
            self.grads["w"] = self.grads["w"].sum()   # shape () instead of (2,)
            return grad_x
"""


@pytest.mark.parametrize("shape", [["--shape", "3,2"], []], ids=["shape given", "no shape"])
def test_a_factory_that_returns_none_is_named(
    shape: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "nonefactory", "def make():\n    pass\n")
    code, out, err = run(["check", "nonefactory:make", *shape], capsys)
    assert code == 2 and out == ""
    assert err == ("gradcheck: error: 'nonefactory:make' returned None (a missing return?): "
                   "the factory must return a layer\n")


def test_no_shape_and_no_input_shape_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "plainlayers", LAYERS_WITHOUT_EXTRAS)
    code, _, err = run(["check", "plainlayers:Scale"], capsys)
    assert code == 2
    assert "argument --shape: required, since 'plainlayers:Scale' makes a layer without an " \
           "input_shape attribute" in err
    assert run(["check", "plainlayers:Scale", "--shape", "3,2"], capsys)[0] == 0


def test_float32_needs_a_factory_taking_dtype(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "plainlayers2", LAYERS_WITHOUT_EXTRAS)
    code, _, err = run(["check", "plainlayers2:Scale", "--shape", "3,2", "--dtype", "float32"],
                       capsys)
    assert code == 2
    assert "argument --dtype: 'plainlayers2:Scale' takes no dtype argument" in err


def test_gradient_of_the_wrong_shape_is_a_finding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "plainlayers3", LAYERS_WITHOUT_EXTRAS)
    code, out, err = run(["check", "plainlayers3:Summed"], capsys)
    assert code == 1
    assert out.startswith("gradcheck: plainlayers3:Summed FAILED: ") and "w" in out
    assert err == ""
    code, out, _ = run(["check", "plainlayers3:Summed", "--json"], capsys)
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False and data["error"] == "GradientShapeError"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradcheck.cli

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(gradcheck.cli, "PROGRESS_DELAY", 0.0)  # a bar from the start
    assert main(["check", "gradcheck.examples.layers:Conv1d", "--mode", "full", "--json"]) == 0
    shown = terminal.getvalue()
    assert "\rchecking [" in shown
    final = [part for part in shown.split("\r") if part.strip()][-1]
    assert "(100%)" in final and "] " in final
    assert shown.endswith("\r")  # the line is erased before the report is printed
    json.loads(capsys.readouterr().out)  # stdout stays pure JSON


def test_progress_bar_shows_the_time_left_once_the_rate_means_something() -> None:
    """The time left is (total - done) / (done / elapsed), shown from 5% done and 2 s on,
    and gone when the scan is complete."""
    from gradcheck.progress import ProgressBar

    stream, now = io.StringIO(), [0.0]
    bar = ProgressBar(stream, width=4, clock=lambda: now[0])

    def line(done: int, total: int, at: float) -> str:
        now[0] = at
        bar(done, total)
        return stream.getvalue().split("\r")[-1].rstrip()

    assert line(4, 100, 30.0) == "checking [....] 4/100 (4%)  30 s"  # under 5% done
    assert line(50, 100, 1.5) == "checking [##..] 50/100 (50%)  2 s"  # under 2 s
    assert line(5, 100, 2.0) == "checking [....] 5/100 (5%)  2 s, about 38 s left"
    assert line(250, 1000, 60.0) == ("checking [#...] 250/1000 (25%)  1 min 00 s, "
                                     "about 3 min 00 s left")
    assert line(1000, 1000, 240.0) == "checking [####] 1000/1000 (100%)  4 min 00 s"


def test_no_progress_bar_for_a_short_check_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # default delay: a 0.1 s check draws nothing
    assert main(["check", "gradcheck.examples.layers:Dense", "--shape", "2,4"]) == 0
    assert terminal.getvalue() == ""


def test_help_lists_check_and_the_diagnostics_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert all(f"\n    {name}" in out for name in ("check", "flow", "convention"))
    for name in ("check", "flow", "convention"):
        code, out, _ = run([name, "--help"], capsys)
        assert code == 0 and out.startswith(f"usage: gradcheck {name} ")


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "gradcheck", "check", BUGGY, "--shape", "8,4"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "  W[1, 0]" in result.stdout
    script = console_script()
    result = subprocess.run([script, "check", "gradcheck.examples.layers:Nope"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gradcheck check: error: argument LAYER")


def test_unpackaged_module_in_the_current_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "mylayers.py").write_text(
        "from gradcheck.examples.layers import BuggyDense as Mine\n")
    script = console_script()
    # the console script does not put the current directory on sys.path; we do
    result = subprocess.run([script, "check", "mylayers:Mine"], capture_output=True, text=True,
                            cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "  W[1, 0]" in result.stdout


# --------------------------------------------------------------------------- audit of issue 12


ODD_LAYERS = """
    import numpy as np

    class Custom(BaseException):
        pass

    class Twice:
        input_shape = (2, 3)

        def forward(self, x):
            return 2 * x

        def backward(self, g):
            return 2 * g

    class Wrong(Twice):
        def backward(self, g):
            return 3 * g

    class RaisesBase(Twice):
        def forward(self, x):
            raise Custom("odd")

    def needs_sizes(n_in, n_out, rng=None):
        return Twice()

    def exits():
        raise SystemExit(4)

    class NumpyShape(Twice):
        input_shape = np.array([2, 3])

    class NumpyInt(Twice):
        input_shape = np.int64(5)
"""


def test_a_base_exception_at_import_or_in_forward_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "baselayers", "class Custom(BaseException):\n"
                 "    pass\n\nraise Custom('odd')\n")
    code, out, err = run(["check", "baselayers:Dense"], capsys)
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith("gradcheck: error: cannot load 'baselayers:Dense': importing module "
                           "'baselayers' raised Custom at ")
    assert line.endswith("baselayers.py:4 in <module>: odd")
    write_module(tmp_path, monkeypatch, "oddlayers", ODD_LAYERS)
    code, out, err = run(["check", "oddlayers:RaisesBase"], capsys)
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith("gradcheck: error: running 'oddlayers:RaisesBase' on an input of "
                           "shape (2, 3) float64 raised Custom at ")
    assert line.endswith("in forward: odd")  # no "(is --shape right?)": not a shape error


def test_a_factory_that_needs_arguments_or_exits_is_named_without_a_shape_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "oddlayers2", ODD_LAYERS)
    code, _, err = run(["check", "oddlayers2:needs_sizes"], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert "argument LAYER: 'oddlayers2:needs_sizes' needs arguments (n_in, n_out)" in last
    assert "gradcheck/loading.py" not in err and "--shape" not in last
    code, _, err = run(["check", "oddlayers2:exits", "--shape", "2,3"], capsys)
    assert (code, err) == (2, "gradcheck: error: building 'oddlayers2:exits' called "
                              "sys.exit(4)\n")


def test_input_shape_may_be_numpy_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "oddlayers3", ODD_LAYERS)
    for spec, shape in (("oddlayers3:NumpyShape", [2, 3]), ("oddlayers3:NumpyInt", [5])):
        code, out, _ = run(["check", spec, "--json"], capsys)
        assert code == 0
        assert json.loads(out)["tensors"][0]["shape"] == shape


def test_json_stays_pure_when_the_module_prints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, monkeypatch, "chattylayers", """
        print("loading chattylayers")

        class Layer:
            input_shape = (2, 2)

            def forward(self, x):
                print("forward called")
                return 2 * x

            def backward(self, g):
                return 2 * g
    """)
    code, out, err = run(["check", "chattylayers:Layer", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["ok"] is True
    assert err.startswith("loading chattylayers\nforward called\n")


def test_an_unwritable_png_is_said_on_stderr_and_the_verdict_keeps_its_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradcheck.report

    def refuse(self: object, path: str) -> None:
        raise OSError(f"[Errno 13] Permission denied: {path!r}")

    monkeypatch.setattr(gradcheck.report.Report, "plot", refuse)
    write_module(tmp_path, monkeypatch, "oddlayers4", ODD_LAYERS)
    code, out, err = run(["check", "oddlayers4:Wrong", "--png", "/nope/x.png"], capsys)
    assert code == 1 and out.startswith("gradcheck: FAILED")  # the wrong gradient wins
    # (said as the drawing failed: the refusal patched in, or matplotlib missing where an
    # in-process pytest run earlier in the session left another copy of the report module)
    assert err.startswith("gradcheck: could not write --png /nope/x.png: "), err
    assert "Permission denied: '/nope/x.png'" in err or "pip install matplotlib" in err, err
    assert err.count("\n") == 1, err
    code, out, err = run(["check", "oddlayers4:Twice", "--png", "/nope/x.png"], capsys)
    assert code == 2 and out.startswith("gradcheck: the tensor is ok")
    assert "could not write --png" in err


def test_the_command_line_module_imports_nothing_heavy_before_main(tmp_path: Path) -> None:
    """numpy, the engine and the diagnostics load inside main(), where Ctrl-C is one line."""
    result = subprocess.run([sys.executable, "-c", "import sys, gradcheck.cli; "
                             "print(sorted(m for m in ('numpy', 'gradcheck.engine.run', "
                             "'gradcheck.diagnostics') if m in sys.modules))"],
                            capture_output=True, text=True, cwd=tmp_path, check=True)
    assert result.stdout.strip() == "[]"


def test_ctrl_c_while_main_imports_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradcheck.diagnostics

    def interrupted(subparsers: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(gradcheck.diagnostics, "register_commands", interrupted)
    assert run(["check", BUGGY], capsys) == (130, "", "gradcheck: interrupted\n")


# ----------------------------------------------------------------------- version, exit codes


def test_version_flag_prints_the_installed_distributions_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    import gradcheck

    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out == f"gradcheck {version('gradcheck')}\n"
    assert gradcheck.__version__ == version("gradcheck")
    result = subprocess.run([console_script(), "--version"], capture_output=True, text=True,
                            check=False)
    assert (result.returncode, result.stdout) == (0, out)


def test_an_unverified_check_exits_1_and_the_help_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """UNVERIFIED (the differences cannot decide) is not ok: exit 1, like a wrong gradient,
    and both helps say so."""
    (tmp_path / "offsetlayers.py").write_text(textwrap.dedent("""
        class Offset:
            '''Right gradient, but 1e13 added to the output: the loss's rounding hides
            its changes.'''
            input_shape = (3, 2)

            def forward(self, x):
                return x + 1e13

            def backward(self, g):
                return g
    """))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["check", "offsetlayers:Offset"], capsys)
    assert code == 1
    assert out.startswith("gradcheck: UNVERIFIED x:")
    code, out, _ = run(["check", "--help"], capsys)
    assert code == 0
    assert "1 a wrong gradient or an UNVERIFIED one" in " ".join(out.split())
    code, out, _ = run(["--help"], capsys)
    assert "check: a wrong gradient or an UNVERIFIED one" in " ".join(out.split())
