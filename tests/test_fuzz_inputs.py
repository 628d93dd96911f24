"""Odd inputs never crash (issue 12 §4): each becomes a GradcheckUsageError (or a
GradientShapeError) that names the argument and says what to do, the user's own exception
unchanged (StopIteration too), or on the command line exit 2 with one line and no
traceback (1 is kept for "a wrong gradient"), 130 after Ctrl-C.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.cli import main
from gradcheck.errors import GradcheckArgumentError, GradcheckUsageError, GradientShapeError

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
RAGGED = [[1.0, 2.0], [3.0]]


class Square:
    def forward(self, x):
        self.x = x
        return x ** 2

    def backward(self, g):
        return 2 * self.x * g


class Returns:
    """A layer whose forward returns ``value`` and whose backward returns ``grad``."""

    def __init__(self, value=None, grad=None, grads=None):
        self.value, self.grad = value, grad
        if grads is not None:
            self.params, self.grads = {"w": np.ones(2)}, grads

    def forward(self, x):
        return self.value

    def backward(self, g):
        return self.grad


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def square_loss(x):
    return float(np.sum(x ** 2)), 2 * x


# ----------------------------------------------------------------------------- ragged lists


@pytest.mark.parametrize("call", [
    lambda: gc.check_layer(Square(), RAGGED),
    lambda: gc.check_function(np.sum, np.ones_like, RAGGED),
    lambda: gc.check_loss(square_loss, RAGGED),
], ids=["check_layer", "check_function", "check_loss"])
def test_a_ragged_list_as_x(call) -> None:
    with pytest.raises(GradcheckUsageError, match=r"x is a ragged list .* pass a numpy float"):
        call()


def test_a_ragged_list_as_x_of_a_pair_is_not_checked_and_said_so() -> None:
    with pytest.raises(GradcheckUsageError, match=r"no float numpy array to check among the "
                       r"arguments \(x: list\)"):
        gc.check_pair(relu_forward, relu_backward, RAGGED)


@pytest.mark.parametrize("call", [
    lambda: gc.check_function(lambda v: RAGGED, lambda v: 2 * v, X),
    lambda: gc.check_loss(lambda x: (RAGGED, 2 * x), X),
    lambda: gc.check_params(lambda: RAGGED, lambda: {"w": X}, {"w": X.copy()}),
], ids=["check_function", "check_loss", "check_params"])
def test_a_ragged_list_as_the_loss(call) -> None:
    with pytest.raises(GradcheckUsageError, match="must return a real scalar, got list"):
        call()


@pytest.mark.parametrize("call", [
    lambda: gc.check_function(lambda v: float(np.sum(v)), lambda v: RAGGED, X),
    lambda: gc.check_layer(Returns(X, RAGGED), X),
    lambda: gc.check_loss(lambda x: (0.0, RAGGED), X),
    lambda: gc.check_pair(relu_forward, lambda d, c: RAGGED, X),
], ids=["check_function", "check_layer", "check_loss", "check_pair"])
def test_a_ragged_list_as_the_gradient(call) -> None:
    with pytest.raises(GradientShapeError, match="is not an array"):
        call()


# ----------------------------------------------------------------------------- forward results


@pytest.mark.parametrize("value, what", [(None, r"None \(a missing return\?\)"),
                                         ("abc", "a str")])
def test_forward_returning_none_or_a_string(value, what) -> None:
    with pytest.raises(GradcheckUsageError, match=rf"layer.forward\(x\) returned {what}: "
                       "forward must return its output"):
        gc.check_layer(Returns(value), X)
    with pytest.raises(GradcheckUsageError, match=rf"returned {what}|returned a str"):
        gc.check_pair(lambda x: value, relu_backward, X)

    def relu(x):
        return value, x

    with pytest.raises(GradcheckUsageError, match=rf"relu\(x\) returned {what}: forward must"):
        gc.check_pair(relu, relu_backward, X)


def test_layer_grads_as_a_list() -> None:
    with pytest.raises(GradientShapeError, match=r"layer\.grads must be a dict name -> gradient "
                       r"array with the keys of layer\.params, got list"):
        gc.check_layer(Returns(X, X, grads=[np.ones(2)]), X)


def test_a_layer_class_instead_of_an_instance() -> None:
    with pytest.raises(GradcheckUsageError, match=r"layer is the class Square, not a layer: pass "
                       r"an instance, e.g. Square\(...\)"):
        gc.check_layer(Square, X)


def test_a_loss_that_takes_an_argument() -> None:
    with pytest.raises(GradcheckUsageError, match=r"f must take 1 positional argument"):
        gc.check_function(lambda: 1.0, lambda v: v, X)
    with pytest.raises(GradcheckUsageError, match=r"fn must take 2 positional arguments"):
        gc.check_loss(lambda x: (1.0, x), X, np.array([0, 1]))
    with pytest.raises(GradcheckUsageError, match=r"layer.forward must take 1 positional"):
        gc.check_layer(type("NoArg", (), {"forward": lambda self: X, "backward": lambda s, g: g})(),
                       X)


def test_check_params_loss_taking_an_argument() -> None:
    params = {"w": X.copy()}
    with pytest.raises(GradcheckUsageError, match="loss"):
        gc.check_params(lambda p: float(np.sum(p["w"])), lambda: {"w": np.ones_like(X)}, params)


def test_assert_params_names_a_loss_that_takes_an_argument() -> None:
    params = {"w": X.copy()}
    with pytest.raises(GradcheckUsageError, match=r"loss must take no arguments \(it reads the "
                       r"params the checker perturbs in place\), but <lambda>\(p\) does not"):
        gc.assert_params(lambda p: float(np.sum(p["w"])), lambda: {"w": np.ones_like(X)}, params)


def test_a_backward_taking_the_wrong_number_of_arguments() -> None:
    with pytest.raises(GradcheckUsageError, match=r"backward must take 2 positional arguments "
                       r"\(one upstream gradient for each of the 1 output"):
        gc.check_pair(relu_forward, lambda dout: dout, X)


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("seed", ["x", 1.5, -1, True])
def test_a_bad_seed(seed) -> None:
    for call in (lambda: gc.check_layer(Square(), X, seed=seed),
                 lambda: gc.check_pair(relu_forward, relu_backward, X, seed=seed),
                 lambda: gc.check_loss(square_loss, X, seed=seed)):
        with pytest.raises(GradcheckUsageError, match=r"seed must be an int >= 0 or None, got "):
            call()


@pytest.mark.parametrize("options, message", [
    ({"mode": "slow"}, "mode must be one of 'auto', 'full', 'fast'; got 'slow'"),
    ({"kinks": "hul"}, "kinks must be one of"),
    ({"rtol": -1.0}, "rtol must be finite and >= 0"),
    ({"atol": "1e-3"}, "atol must be a number"),
    ({"progress": "yes"}, "progress must be a callable"),
    ({"executor": 2}, "executor must be a concurrent.futures.Executor"),
])
def test_bad_option_values(options, message) -> None:
    with pytest.raises(GradcheckUsageError, match=message):
        gc.check_layer(Square(), X, **options)


def test_an_unknown_option_names_the_function_and_the_nearest_option() -> None:
    with pytest.raises(GradcheckArgumentError, match=r"check_layer\(\) got an unexpected option "
                       r"'rtl' \(did you mean 'rtol'\?\)"):
        gc.check_layer(Square(), X, rtl=1e-3)
    with pytest.raises(GradcheckArgumentError, match=r"check_pair\(\) got an unexpected option "
                       r"'upstraem' \(did you mean 'upstream'\?\)"):
        gc.check_pair(relu_forward, relu_backward, X, upstraem=X)


@pytest.mark.parametrize("upstream", ["abc", {"g": 1}, [[1.0], [2.0, 3.0]],
                                      np.full((2, 3), np.nan)])
def test_a_bad_upstream(upstream) -> None:
    with pytest.raises(GradcheckUsageError, match="upstream"):
        gc.check_layer(Square(), X, upstream=upstream)
    with pytest.raises(GradcheckUsageError, match="upstream"):
        gc.check_pair(relu_forward, relu_backward, X, upstream=upstream)


@pytest.mark.parametrize("x, message", [
    (None, "x must be a numpy float array, got NoneType"),
    ("abc", "x must be a numpy float array, got str"),
    (np.arange(4), "x has dtype int64: gradients need floats"),
    (np.ones(3, dtype=complex), "x must be a numpy float array, got ndarray of dtype complex128"),
    (np.zeros((0, 3)), r"x is empty \(shape \(0, 3\)\)"),
])
def test_other_bad_inputs(x, message) -> None:
    with pytest.raises(GradcheckUsageError, match=message):
        gc.check_layer(Square(), x)


# ----------------------------------------------------------------------------- StopIteration


class Stop:
    """Raises StopIteration from forward or backward on the n-th call."""

    def __init__(self, where: str, after: int = 0) -> None:
        self.where, self.after, self.calls = where, after, 0
        self.error = StopIteration("the user's own")

    def __call__(self, where: str) -> None:
        if where == self.where:
            self.calls += 1
            if self.calls > self.after:
                raise self.error


@pytest.mark.parametrize("where, after", [("forward", 0), ("forward", 5), ("backward", 0)])
def test_stop_iteration_from_user_code_comes_back_unchanged(where: str, after: int) -> None:
    stop = Stop(where, after)

    class Layer:
        def forward(self, x):
            stop("forward")
            self.x = x
            return x ** 2

        def backward(self, g):
            stop("backward")
            return 2 * self.x * g

    def forward(x):
        stop("forward")
        return x ** 2, x

    def backward(dout, x):
        stop("backward")
        return 2 * x * dout

    def loss(x):
        stop("forward")
        return float(np.sum(x ** 2)), 2 * x

    for mode in ("full", "fast"):
        for call in (lambda m=mode: gc.check_layer(Layer(), X, mode=m),
                     lambda m=mode: gc.check_pair(forward, backward, X, mode=m),
                     lambda m=mode: gc.check_loss(loss, X, mode=m)):
            stop.calls = 0
            try:
                call()
            except StopIteration as error:
                assert error is stop.error
            else:
                assert where == "backward"  # check_loss has no backward to stop in


# ----------------------------------------------------------------------------- command line


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("source, cause", [
    ("import numpy\nSCALE = 1 / 0\n",
     "importing module 'badmod' raised ZeroDivisionError at badmod.py:2 in <module>: division by "
     "zero"),
    ("def Dense(:\n    pass\n", "importing module 'badmod' raised SyntaxError at badmod.py:1: "),
    ("import nonexistent_package_for_gradcheck\n",
     "importing module 'badmod' raised ModuleNotFoundError at badmod.py:1 in <module>: No module "
     "named 'nonexistent_package_for_gradcheck'"),
    ("import sys\nsys.exit(3)\n", "importing module 'badmod' called sys.exit(3)"),
    ("import sys\nsys.exit('no GPU here')\n", "importing module 'badmod' called sys.exit('no GPU"),
], ids=["raises", "syntax_error", "missing_package", "sys_exit", "sys_exit_message"])
def test_a_module_that_fails_to_import_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    source: str, cause: str,
) -> None:
    write_module(tmp_path, monkeypatch, "badmod", source)
    code = main(["check", "badmod:Dense", "--shape", "2,3"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("gradcheck: error: cannot load 'badmod:Dense': ")
    assert cause in line, line
    assert "Traceback" not in err


@pytest.mark.parametrize("shape", ["'8,4'", "(8, -1)", "(8, 4.5)", "(True, 4)", "()", "0"])
def test_an_input_shape_that_is_not_a_shape_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    shape: str,
) -> None:
    write_module(tmp_path, monkeypatch, "shapes", f"""
        class Layer:
            input_shape = {shape}
            def forward(self, x):
                return x
            def backward(self, g):
                return g
    """)
    code = main(["check", "shapes:Layer"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("gradcheck: error: layer 'shapes:Layer' has input_shape="), line
    assert "expected a tuple of positive ints like (8, 4)" in line


def test_a_huge_shape_is_refused_with_its_size_unless_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", "gradcheck.examples.layers:Dense", "--shape", "100000000,4"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert "(100000000, 4) has 400,000,000 elements (3.2 GB in float64)" in line
    assert "--force" in line
    import gradcheck.loading

    monkeypatch.setattr(gradcheck.loading, "MAX_INPUT_ELEMENTS", 10)  # 32 elements: too many
    assert main(["check", "gradcheck.examples.layers:Dense", "--shape", "8,4"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["check", "gradcheck.examples.layers:Dense", "--shape", "8,4", "--force"]) == 0
    assert "repeat with: python -m gradcheck check gradcheck.examples.layers:Dense --shape 8,4 " \
           "--dtype float64 --seed 0 --force" in capsys.readouterr().out


def test_ctrl_c_exits_130_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    write_module(tmp_path, monkeypatch, "slowlayers", """
        class Layer:
            input_shape = (2, 3)
            def __init__(self):
                self.calls = 0
            def forward(self, x):
                self.calls += 1
                if self.calls > 3:
                    raise KeyboardInterrupt
                return 2 * x
            def backward(self, g):
                return 2 * g
    """)
    code = main(["check", "slowlayers:Layer"])
    out, err = capsys.readouterr()
    assert code == 130 and out == ""
    assert err == "gradcheck: interrupted\n"


def test_a_layer_breaking_the_protocol_on_the_command_line_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    write_module(tmp_path, monkeypatch, "nonelayers", """
        class Layer:
            input_shape = (2, 3)
            def forward(self, x):
                return None
            def backward(self, g):
                return g
    """)
    code = main(["check", "nonelayers:Layer"])
    _, err = capsys.readouterr()
    assert code == 2
    [line] = err.splitlines()
    assert line == ("gradcheck: error: nonelayers:Layer: layer.forward(x) returned None (a "
                    "missing return?): forward must return its output (a numpy float array; a "
                    "float for a loss)")


class KinkRelu:
    """A ReLU whose backward says 2 at x == 0 (outside [0, 1]): "subgradient" re-checks those
    coordinates at jittered points, which calls forward inside the kink machinery."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = 0, stop_at
        self.error = StopIteration("the user's own")

    def forward(self, x):
        self.calls += 1
        if self.calls == self.stop_at:
            raise self.error
        self.x = x
        return np.maximum(x, 0)

    def backward(self, g):
        return g * np.where(self.x > 0, 1.0, np.where(self.x == 0, 2.0, 0.0))


def test_stop_iteration_during_the_kink_recheck_comes_back_unchanged() -> None:
    x = np.array([[0.0, 1.0, -1.0, 0.0]])
    counted = KinkRelu()
    gc.check_layer(counted, x)
    total = counted.calls  # the last calls are the re-check, then the final look at the point
    for stop_at in range(total - 1, total - 6, -1):
        layer = KinkRelu(stop_at)
        with pytest.raises(StopIteration) as caught:
            gc.check_layer(layer, x)
        assert caught.value is layer.error
