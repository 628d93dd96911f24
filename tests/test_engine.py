"""Unit tests of the engine: differences, tolerances, kinks, counts, restoration, reports."""
from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.engine import fast
from gradcheck.engine.point import coordinate_scan
from gradcheck.engine.slope import (
    Shape,
    Slopes,
    base_steps,
    distance_to_hull,
    kink_mask,
    read_pair,
    relative_step,
)
from gradcheck.engine.tolerance import relative_error, tolerance_for

EPS64 = float(np.finfo(np.float64).eps)

RNG = np.random.default_rng(20261123)


class Counted:
    """A smooth loss over params {"w", "v"} that counts its calls."""

    def __init__(self, params: dict[str, np.ndarray], wrong: float = 0.0) -> None:
        self.params, self.wrong = params, wrong
        self.n_loss = self.n_grads = 0

    def loss(self) -> float:
        self.n_loss += 1
        w, v = self.params["w"], self.params["v"]
        return float(np.sum(np.sin(w) * w) + np.sum(v**3) + np.sum(w) * np.sum(v))

    def grads(self) -> dict[str, np.ndarray]:
        self.n_grads += 1
        w, v = self.params["w"], self.params["v"]
        gw = np.sin(w) + w * np.cos(w) + np.sum(v)
        gv = 3 * v**2 + np.sum(w)
        gv.flat[0] += self.wrong
        return {"w": gw, "v": gv}


# ------------------------------------------------------------------ numeric, compare, kinks


def test_step_is_cube_root_of_eps_times_magnitude() -> None:
    """h_i = eps^(1/3) * max(1, |v_i|), per dtype."""
    values = np.array([0.0, 0.5, -4.0, 1e3])
    assert np.allclose(base_steps(values, EPS64), EPS64 ** (1 / 3)
                       * np.array([1.0, 1.0, 4.0, 1e3]))
    eps32 = float(np.finfo(np.float32).eps)
    assert relative_step(eps32) == pytest.approx(eps32 ** (1 / 3))


def test_central_difference_restores_each_coordinate_exactly_even_when_loss_raises() -> None:
    """The scan writes in place, but every coordinate gets its exact old bits back."""
    array = RNG.standard_normal(5)
    before = array.copy()
    calls = []

    def loss() -> float:
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("boom")
        return float(np.sum(array**2))

    with pytest.raises(RuntimeError):
        coordinate_scan(loss, array, np.arange(5), base_steps(array, EPS64))
    assert array.tobytes() == before.tobytes()


def test_central_difference_is_second_order_accurate() -> None:
    """Halving h divides the error of the central difference by ~4 (truncation ~ h^2)."""
    x = np.array([0.7])
    errors = []
    for h in (1e-2, 5e-3):
        plus, minus, h_plus, h_minus = coordinate_scan(lambda: float(np.exp(x[0])), x,
                                                       np.arange(1), np.array([h]))
        errors.append(abs((plus - minus)[0] / (h_plus + h_minus)[0] - np.exp(0.7)))
    assert 3.5 < errors[0] / errors[1] < 4.5


def test_tolerances_default_by_dtype_and_say_where_they_came_from() -> None:
    assert tolerance_for(np.dtype(np.float64), None, None).rtol == 1e-5
    assert tolerance_for(np.dtype(np.float32), None, None).rtol == 1e-2
    given = tolerance_for(np.dtype(np.float32), 1e-2, None)
    assert (given.rtol, given.atol, given.source) == (1e-2, 1e-5, "given")


def test_relative_error_matches_numpy_testing_conventions() -> None:
    rel = relative_error(np.array([1.0, 0.0, 1.0]), np.array([2.0, 0.0, 0.0]))
    assert rel[0] == 0.5 and rel[1] == 0.0 and np.isinf(rel[2])


def test_kink_mask_tells_a_jump_from_curvature() -> None:
    """A jump is a kink; a spread of h*L'' on a smooth stretch is not."""
    forward = np.array([1.0, 1.0 + 6e-6])  # ReLU at 0 vs. x^2/2 at 1 with h = 6e-6
    backward = np.array([0.0, 1.0 - 6e-6])
    assert kink_mask(forward, backward, EPS64).tolist() == [True, False]


def _looks(*slopes: tuple[float, float]) -> Slopes:
    """Looks at steps 1 (three coordinates) with these one-sided slopes (d+, d-)."""
    forward = np.array([f for f, _ in slopes])
    backward = np.array([b for _, b in slopes])
    n = len(slopes)
    return Slopes((forward + backward) / 2, forward, backward, np.ones(n), np.full(n, 1e-9),
                  np.zeros(n, dtype=bool))


def test_a_pair_of_looks_reads_a_jump_only_where_the_spread_stays_and_clears_the_noise(
        ) -> None:
    """At a kink the one-sided spread stays when h halves (a jump); on a smooth stretch it
    halves (smooth); a spread within rounding on a linear piece is no jump."""
    coarse = _looks((1e-3, 0.0), (1e-3, 0.0), (1e-13, 0.0))
    fine = _looks((1e-3, 0.0), (5e-4, 0.0), (1e-13, 0.0))
    reading = read_pair(coarse, fine, np.full(3, 1e-8))
    assert [Shape(int(s)).name for s in reading.shape] == ["JUMP", "SMOOTH", "SMOOTH"]


@pytest.mark.parametrize(
    ("f", "grad", "x0"),
    [
        (lambda v: float(np.sum(v**2)), lambda v: v.copy(), 0.1),  # factor 2 missing
        (lambda v: float(np.sum(v**2)), np.ones_like, 0.0),  # true 0 at a smooth minimum
        (lambda v: float(np.sum(-0.7 * v)), lambda v: np.full_like(v, -1.05), 0.2650375939849624),
    ],
    ids=["curvature-is-not-a-kink", "smooth-minimum-is-not-a-kink",
         "linear-rounding-is-not-a-jump"],
)
def test_wrong_gradients_at_smooth_points_are_never_taken_for_kinks(f, grad, x0) -> None:
    """Regressions: each of these passed once as an 'unverified kink'."""
    for kinks in ("subgradient", "hull"):
        report = gc.check_function(f, grad, np.array([x0]), kinks=kinks)
        assert not report.ok and report.tensors[0].kinks.met == 0, str(report)


def test_distance_to_hull_is_zero_inside_and_the_gap_outside() -> None:
    gap = distance_to_hull(np.array([0.0, 0.5, 2.0, -1.0]), np.zeros(4), np.full(4, 1.0))
    assert gap.tolist() == [0.0, 0.0, 1.0, 1.0]


# ------------------------------------------------------------------ counts and restoration


@pytest.mark.parametrize("n", [1, 7, 40])
def test_full_mode_costs_exactly_2n_plus_3_loss_evaluations_for_a_right_gradient(n: int) -> None:
    """'full' checks every coordinate with two evaluations each, plus three at the point:
    once, once more (determinism), and once after the scan (state unchanged)."""
    params = {"w": RNG.standard_normal(n), "v": RNG.standard_normal((2, 3))}
    f = Counted(params)
    report = gc.check_params(f.loss, f.grads, params, mode="full")
    assert report.ok, str(report)
    total = n + 6
    assert f.n_loss == report.evaluations["loss"] == 2 * total + 3
    assert f.n_grads == report.evaluations["grads"] == 2  # twice: accumulation check


def test_a_wrong_element_costs_two_more_evaluations_to_confirm() -> None:
    """A failing element is looked at again at h/2 before it is called wrong (2 more). A
    check whose first looks leave something to settle measures the loss's resolution
    once (gradcheck.engine.resolution): here the probe's first two moves follow the
    gradient's prediction (4), and the second is taken again (1). In subgradient mode the
    failing element is also moved a quarter step each way (2 gradient calls, no loss
    evaluation): an exact kink the loss does not show would give way there; and, as the
    loss bends within its step (v^3), a whole step each way (2 more): a kink the looks
    reached across would show there."""
    params = {"w": RNG.standard_normal(5), "v": RNG.standard_normal(3)}
    probe = 2 * 2 + 1
    for kinks, grads in (("hull", 2), ("subgradient", 2 + 2 + 2)):
        f = Counted(params, wrong=0.5)
        report = gc.check_params(f.loss, f.grads, params, mode="full", kinks=kinks)
        assert report.status == "FAILED" and report.tensors[1].worst[0].index == (0,)
        assert (f.n_loss, f.n_grads) == (2 * 8 + 3 + 2 + probe, grads), kinks


def test_params_are_restored_bit_for_bit_also_when_user_code_raises() -> None:
    params = {"w": RNG.standard_normal((3, 2)), "v": np.array([-0.0, 1e-300, 3.0])}
    before = {k: v.tobytes() for k, v in params.items()}
    count = [0]

    def loss() -> float:
        count[0] += 1
        if count[0] == 9:
            raise KeyError("user bug")
        return float(np.sum(params["w"] ** 2) + np.sum(params["v"]))

    def grads() -> dict[str, np.ndarray]:
        return {"w": 2 * params["w"], "v": np.ones(3)}

    with pytest.raises(KeyError):
        gc.check_params(loss, grads, params, mode="full")
    assert {k: v.tobytes() for k, v in params.items()} == before
    assert gc.check_params(lambda: float(np.sum(params["w"] ** 2) + np.sum(params["v"])),
                           grads, params).ok
    assert {k: v.tobytes() for k, v in params.items()} == before


def test_user_input_to_check_layer_and_check_function_is_never_changed() -> None:
    x = RNG.standard_normal((4, 3))
    before = x.tobytes()
    gc.check_function(lambda v: float(np.sum(np.tanh(v))), lambda v: 1 - np.tanh(v) ** 2, x)

    class Writes:
        def forward(self, x: np.ndarray) -> np.ndarray:
            x *= 2.0  # the bug: forward writes into its input
            return x

        def backward(self, g: np.ndarray) -> np.ndarray:
            return 2.0 * g

    report = gc.check_layer(Writes(), x)
    assert x.tobytes() == before
    text = report.problems[0].text
    assert not report.ok and "in place" in text and "'x'" in text


# ------------------------------------------------------------------ verdicts


def test_a_scale_error_of_a_tenth_of_a_percent_in_float64_is_caught() -> None:
    x = RNG.standard_normal((6, 5))
    good = gc.check_function(lambda v: float(np.sum(np.tanh(v) * v)),
                             lambda v: np.tanh(v) + v * (1 - np.tanh(v) ** 2), x)
    bad = gc.check_function(lambda v: float(np.sum(np.tanh(v) * v)),
                            lambda v: 1.001 * (np.tanh(v) + v * (1 - np.tanh(v) ** 2)), x)
    assert good.ok, str(good)
    assert not bad.ok and bad.tensors[0].mismatched > 0


def test_accumulating_backward_is_named_as_a_problem() -> None:
    params = {"w": RNG.standard_normal(4)}
    store = {"w": np.zeros(4)}

    def grads() -> dict[str, np.ndarray]:
        store["w"] += 2 * params["w"]  # the bug: += instead of =
        return store

    report = gc.check_params(lambda: float(np.sum(params["w"] ** 2)), grads, params)
    assert not report.ok
    assert any("twice" in p and "accumulate" in p for p in (q.text for q in report.problems))


def test_non_deterministic_forward_is_named_as_a_problem() -> None:
    rng = np.random.default_rng(0)

    class Dropout:
        def forward(self, x: np.ndarray) -> np.ndarray:
            self.mask = rng.random(x.shape) > 0.5
            return x * self.mask

        def backward(self, g: np.ndarray) -> np.ndarray:
            return g * self.mask

    report = gc.check_layer(Dropout(), RNG.standard_normal((3, 4)))
    assert not report.ok
    assert any("not deterministic" in p for p in (q.text for q in report.problems))


def test_non_finite_loss_and_gradient_are_named() -> None:
    x = np.array([1.0, 0.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        report = gc.check_function(lambda v: float(np.sum(np.log(v))), lambda v: 1 / v, x)
        assert not report.ok and "is -inf at the given point" in report.problems[0].text
        report = gc.check_function(lambda v: float(np.sum(v**2)), lambda v: v / 0.0 * 0.0,
                                   np.ones(3))
    assert not report.ok and "non-finite" in " ".join(map(str, report.problems))


def test_relu_at_exact_zero_any_convention_in_0_1_passes_and_2_fails_under_hull() -> None:
    x = np.array([[0.0, 1.5, -2.0, 0.0]])
    for c, expected in [(0.0, True), (0.3, True), (1.0, True), (2.0, False), (-0.5, False)]:
        report = gc.check_function(lambda v: float(np.sum(np.maximum(v, 0) * [1, 2, 3, -4])),
                                   lambda v, c=c: np.where(v > 0, 1.0, np.where(v == 0, c, 0.0))
                                   * np.array([1, 2, 3, -4]), x, kinks="hull")
        assert report.ok is expected, (c, str(report))
        assert report.tensors[0].kinks.met == 2


def test_kink_modes_strict_fails_and_skip_counts_at_relu_zero() -> None:
    x = np.array([0.0, 1.0])

    def f(v: np.ndarray) -> float:
        return float(np.sum(np.maximum(v, 0)))

    def g(v: np.ndarray) -> np.ndarray:
        return (v > 0).astype(float)

    assert not gc.check_function(f, g, x, kinks="strict").ok
    skipped = gc.check_function(f, g, x, kinks="skip")
    assert skipped.ok and skipped.tensors[0].kinks.skipped == 1
    assert "1 skipped" in str(skipped)


def test_multi_kink_zero_row_passes_by_jitter_and_says_so() -> None:
    """A zero row through bias-free Dense + ReLU crosses kinks both ways along one input
    coordinate: the hull cannot settle it, the jitter re-check does, with a warning."""
    w = np.array([[1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]])
    g = np.array([[1.0, -1.0, 1.0], [0.3, -0.2, 0.9]])  # one-sided slopes 1.5 and 2 at x[0, 0]

    def f(x: np.ndarray) -> float:
        return float(np.sum(g * np.maximum(x @ w, 0)))

    def grad(x: np.ndarray) -> np.ndarray:
        return (g * (x @ w > 0)) @ w.T

    x = np.array([[0.0, 0.0], [0.4, -1.2]])
    assert not gc.check_function(f, grad, x, kinks="hull").ok
    report = gc.check_function(f, grad, x)
    assert report.ok, str(report)
    kinks = report.tensors[0].kinks
    assert kinks.by_jitter >= 1 and kinks.outside_hull >= 1
    assert "jittered point" in str(report)


# ------------------------------------------------------------------ fast mode


class BigDense:
    """y = x W + b with an optional wrong element of dW."""

    def __init__(self, n_in: int, n_out: int, wrong: tuple[int, int] | None = None) -> None:
        rng = np.random.default_rng(7)
        self.params = {"W": rng.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                       "b": np.zeros(n_out)}
        self.grads: dict[str, np.ndarray] = {}
        self.wrong = wrong

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, g: np.ndarray) -> np.ndarray:
        dw = self.x.T @ g
        if self.wrong is not None:
            dw[self.wrong] += 0.01 * np.abs(dw).max()
        self.grads = {"W": dw, "b": g.sum(axis=0)}
        return g @ self.params["W"].T


def test_fast_mode_verifies_a_right_linear_layer_with_one_direction_and_two_evaluations() -> None:
    """One random direction through x, W and b together; the loss is linear along it, so
    step d alone settles it (2 loss evaluations), plus three at the point (once, the
    determinism repeat, and after the scan)."""
    x = RNG.standard_normal((8, 300))
    report = gc.check_layer(BigDense(300, 200), x, mode="fast")
    assert report.ok, str(report)
    assert [t.mode for t in report.tensors] == ["fast"] * 3
    assert report.evaluations == {"loss": 3 + 2, "grads": 2}


class BigTanh(BigDense):
    """y = tanh(x W + b): curved along every direction."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(super().forward(x))
        return self.y

    def backward(self, g: np.ndarray) -> np.ndarray:
        return super().backward(g * (1 - self.y ** 2))


def test_fast_mode_verifies_a_right_curved_layer_with_one_direction_and_two_steps() -> None:
    """Curved along the direction: steps d and d/2 measure the truncation (4 loss
    evaluations for all three tensors together)."""
    x = RNG.standard_normal((8, 300))
    report = gc.check_layer(BigTanh(300, 200), x, mode="fast")
    assert report.ok, str(report)
    assert report.evaluations == {"loss": 3 + 4, "grads": 2}


def test_fast_mode_localizes_one_wrong_element_in_log_n_evaluations() -> None:
    """Group testing: each level tests two halves (8 evaluations), leaves of <= 8 are
    scanned; the wrong element is named with its index."""
    n_in, n_out = 300, 200
    report = gc.check_layer(BigDense(n_in, n_out, wrong=(123, 45)), RNG.standard_normal(
        (8, n_in)), mode="fast")
    assert not report.ok
    w = next(t for t in report.tensors if t.name == "W")
    assert w.mismatched == 1 and w.worst[0].index == (123, 45)
    assert "W[123, 45]" in str(report)
    n = n_in * n_out
    levels = int(np.ceil(np.log2(n / fast.LEAF_SIZE)))
    # 3 at the point; the joint direction (4), x and b alone (2 each: linear), W alone (4);
    # two halves per level (4 each at most); the leaf of LEAF_SIZE elements (2 each, 2 for
    # a second look, 4 for the deeper ones); the wrong element re-checked at two jittered
    # points (a loss, a gradient and its 2 + 2 evaluations each)
    bound = 3 + 4 + 2 * 2 + 4 + 8 * levels + 8 * fast.LEAF_SIZE + 2 * (1 + 2 + 2)
    assert report.evaluations["loss"] <= bound
    assert report.evaluations["loss"] < 2 * n / 100  # far from a full scan


def test_auto_picks_by_size_and_says_which() -> None:
    x = RNG.standard_normal((2, 100))
    report = gc.check_layer(BigDense(100, 50), x)  # W has 5000 > AUTO_FULL_MAX elements
    modes = {t.name: t.mode for t in report.tensors}
    assert modes == {"x": "full", "W": "fast", "b": "full"}
    assert "auto picked fast" in str(report)


# ------------------------------------------------------------------ usage errors and report


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: gc.check_function(np.sum, np.ones_like, np.arange(3)), "dtype int"),
        (lambda: gc.check_params(lambda: 0.0, dict, {"w": [1.0]}), "params['w']"),
        (lambda: gc.check_params(lambda: 0.0, dict, {}), "params"),
        (lambda: gc.check_function(np.sum, np.ones_like, np.ones(2), mode="quick"), "mode"),
        (lambda: gc.check_function(np.sum, np.ones_like, np.ones(2), kinks="none"), "kinks"),
        (lambda: gc.check_function(np.sum, np.ones_like, np.ones(2), rtol=-1), "rtol"),
        (lambda: gc.check_function(np.sum, np.ones_like, np.ones(2), seed="a"), "seed"),
        (lambda: gc.check_function(lambda v: v, np.ones_like, np.ones(2)), "scalar"),
        (lambda: gc.check_layer(object(), np.ones(2)), "forward"),
    ],
)
def test_usage_errors_are_value_errors_naming_the_argument(call, names: str) -> None:
    with pytest.raises(gc.GradcheckUsageError, match=None) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert names in str(info.value)


def test_wrong_gradient_shape_or_missing_key_raises_gradient_shape_error() -> None:
    params = {"w": np.ones((2, 3)), "b": np.ones(3)}
    with pytest.raises(gc.GradientShapeError, match=r"'w'.*\(3, 2\).*\(2, 3\)"):
        gc.check_params(lambda: 0.0, lambda: {"w": np.ones((3, 2)), "b": np.ones(3)}, params)
    with pytest.raises(gc.GradientShapeError, match="no gradient for 'b'"):
        gc.check_params(lambda: 0.0, lambda: {"w": np.ones((2, 3))}, params)


def test_failing_report_names_tensor_index_values_and_options() -> None:
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]])}

    def grads() -> dict[str, np.ndarray]:
        g = 2 * params["w"]
        g[1, 0] = 0.0
        return {"w": g}

    report = gc.check_params(lambda: float(np.sum(params["w"] ** 2)), grads, params, seed=3)
    text = str(report)
    for piece in ("FAILED w[1, 0]: analytic 0 vs numeric 6", "1 of 1 tensors failed", "w[1, 0]",
                  "6", "1e-05*|n| + 1e-08", "1e-07*|n|", "seed=3",
                  "mode='auto'", "evaluations:"):
        assert piece in text, piece
    with pytest.raises(gc.GradientMismatch, match=r"w\[1, 0\]"):
        report.raise_if_failed()
    data = report.to_dict()
    assert data["ok"] is False and data["tensors"][0]["worst"][0]["index"] == [1, 0]


def test_float32_layer_gross_bug_caught_and_right_layer_passes() -> None:
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    w = (RNG.standard_normal((5, 3)) / 2).astype(np.float32)

    def make(sign: float):
        class Tanh32:
            def __init__(self) -> None:
                self.params = {"W": w.copy()}
                self.grads: dict[str, np.ndarray] = {}

            def forward(self, x: np.ndarray) -> np.ndarray:
                self.x, self.y = x, np.tanh(x @ self.params["W"])
                return self.y

            def backward(self, g: np.ndarray) -> np.ndarray:
                dz = g * (1 - self.y**2)
                self.grads = {"W": sign * (self.x.T @ dz)}
                return dz @ self.params["W"].T
        return Tanh32()

    good = gc.check_layer(make(1.0), x)
    assert good.ok, str(good)
    assert "float32 defaults" in str(good)
    assert not gc.check_layer(make(-1.0), x).ok


def test_executor_gives_the_same_verdict_as_the_serial_scan() -> None:
    from concurrent.futures import ProcessPoolExecutor

    x = RNG.standard_normal((3, 20))
    layer = BigDense(20, 10, wrong=(4, 7))
    serial = gc.check_layer(layer, x, mode="full")
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = gc.check_layer(layer, x, mode="full", executor=pool)
    assert not parallel.ok
    assert parallel.evaluations == serial.evaluations
    assert [m.index for t in parallel.tensors for m in t.worst] == [(4, 7)]
    assert parallel.to_dict()["tensors"] == serial.to_dict()["tensors"]


def test_hidden_kinks_flat_on_both_sides_are_verified_nearby_not_cried_wolf() -> None:
    """ReLU(c) -> negate -> ReLU(c) at 0: the loss is 0 on both sides, the chain rule with
    c = 0.5 gives -0.25 g. Subgradient mode verifies it at a jittered point and warns;
    hull mode holds the point to account."""

    class Chain:
        def forward(self, x: np.ndarray) -> np.ndarray:
            self.x, self.z = x, -np.maximum(x, 0.0)
            return np.maximum(self.z, 0.0)

        def backward(self, g: np.ndarray) -> np.ndarray:
            def d(v: np.ndarray) -> np.ndarray:
                return np.where(v > 0, 1.0, np.where(v < 0, 0.0, 0.5))
            return -(g * d(self.z)) * d(self.x)

    report = gc.check_layer(Chain(), np.zeros((1, 3)))
    assert report.ok, str(report)
    assert report.tensors[0].kinks.by_jitter == 3
    assert any("does not show" in w for w in report.warnings)
    assert not gc.check_layer(Chain(), np.zeros((1, 3)), kinks="hull").ok


def _leaky_square(g: float):
    def f(w: np.ndarray) -> float:
        return float(g / 2 * np.sum(np.where(w > 0, 0.3 * w, 0.03 * w) ** 2))

    def grad(w: np.ndarray) -> np.ndarray:
        return g * np.where(w > 0, 0.3 * w, 0.03 * w) * np.where(w > 0, 0.3, 0.03)
    return f, grad


def _softmax_cross_entropy_at(offset: float):
    def f(z: np.ndarray) -> float:
        shifted = z - z.max()
        return float(np.log(np.sum(np.exp(shifted))) - shifted[0])

    def grad(z: np.ndarray) -> np.ndarray:
        p = np.exp(z - z.max())
        p /= p.sum()
        p[0] -= 1.0
        return p
    return f, grad, np.array([-1e4, 1e4 - 2.0, 1e4, 1e4]) - offset


@pytest.mark.parametrize("g", [0.05, 0.1, 0.2, 0.5])
def test_a_jump_in_curvature_is_no_false_alarm(g: float) -> None:
    """g/2 LeakyReLU(0.3 w)^2 at 0 is differentiable but L'' jumps: the central difference
    has an O(h) bias, which the gap between the h and h/2 estimates accounts for."""
    f, grad = _leaky_square(g)
    assert gc.check_function(f, grad, np.zeros(1)).ok


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_softmax_cross_entropy_at_huge_logits_is_no_false_alarm(offset: float) -> None:
    """At logits ~1e4 the step (6e-6 * |v| = 0.06) is large against softmax's curvature;
    the h, h/2 pair bounds the truncation error."""
    f, grad, z = _softmax_cross_entropy_at(offset)
    assert gc.check_function(f, grad, z).ok
    assert not gc.check_function(f, lambda v: 1.01 * grad(v), z).ok


def test_progress_reports_every_coordinate_scanned_up_to_the_total(monkeypatch) -> None:
    """Long scans call progress(done, total) (by time: here every coordinate); the last
    call covers every coordinate."""
    from gradcheck.engine import calls

    monkeypatch.setattr(calls, "PROGRESS_INTERVAL", 0.0)
    seen: list[tuple[int, int]] = []
    x = RNG.standard_normal(200)
    report = gc.check_function(lambda v: float(np.sum(v**2)), lambda v: 2 * v, x, mode="full",
                               progress=lambda done, total: seen.append((done, total)))
    assert report.ok
    assert seen[-1] == (200, 200)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 200


def test_a_smooth_minimum_is_not_counted_as_a_kink_and_costs_two_more_per_element() -> None:
    """x^2 at 0: d+ = h and d- = -h differ by 100 %, like a kink. An agreeing element that
    looks like a kink gets one more look at h/2, where a curve's spread halves and a jump's
    does not: no kink is counted, at 2 more evaluations per such element."""
    x0 = np.zeros(3)
    calls = [0]

    def f(v: np.ndarray) -> float:
        calls[0] += 1
        return float(np.sum(v**2))

    report = gc.check_function(f, lambda v: 2 * v, x0, mode="full")
    assert report.ok, str(report)
    assert report.tensors[0].kinks.met == 0, str(report)
    assert calls[0] == report.evaluations["loss"] == 2 * 3 + 3 + 2 * 3


def test_relu_at_zero_is_still_a_kink_after_the_second_look() -> None:
    """The second look keeps a real kink a kink: ReLU at 0 under a valid convention."""
    report = gc.check_function(lambda v: float(np.sum(np.maximum(v, 0))),
                               lambda v: (v > 0).astype(float) * 1.0, np.zeros(2), kinks="hull")
    assert report.ok, str(report)
    assert report.tensors[0].kinks.met == 2, str(report)


def test_zero_gradients_everywhere_are_verified_not_unverified() -> None:
    """A dead unit, a softmax over one class: every gradient exactly 0 and a loss of order
    1. The loss sets the default atol's scale (no gradient does), and the loss's rounding
    (~1e-11) is far inside it: ok, not UNVERIFIED. A loss of exactly 0 with exact zero
    gradients is ok too: nothing to be unsure of."""
    w = {"w": np.array([-1.0, 0.5])}
    report = gc.check_params(lambda: 0.5 + float(np.maximum(w["w"][0], 0.0)) * 0.0,
                             lambda: {"w": np.zeros(2)}, w)
    assert report.ok, str(report)
    flat = gc.check_params(lambda: 0.0 * float(np.sum(w["w"])), lambda: {"w": np.zeros(2)}, w)
    assert flat.ok, str(flat)


def test_a_tiny_one_sided_gradient_next_to_an_order_one_loss_is_verified() -> None:
    """C = (1 - relu(w1 relu(w2)))^2 / 2 at w1 = 0, w2 = 1.19e-7: the only nonzero slope is
    one-sided and 1e-7. The atol's scale is the larger of |L| and the gradients, so the
    loss's own rounding (1.8e-11) does not make the right gradient UNVERIFIED."""
    from reference_nets.classic import relu_chain_cost, relu_chain_grad

    w = np.array([0.0, 1.192092896e-07])
    report = gc.check_params(lambda: relu_chain_cost(w, 1.0, 1.0),
                             lambda: {"w": relu_chain_grad(w, 1.0, 1.0)}, {"w": w})
    assert report.ok, str(report)


def test_a_float32_layer_summed_in_float64_is_judged_at_float32_rounding() -> None:
    """A float32 forward makes the loss float32-rough though check_layer sums it in
    float64: agreement within one float32 rounding of |L| / h is agreement (a correct
    float32 softmax cross-entropy is ok), yet a sign error is still FAILED."""
    from layer_bank import correct_dense_softmax_ce, dense_bias_sign_flipped

    for seed in (2, 3):
        report = gc.check_layer(*correct_dense_softmax_ce(np.float32, seed), seed=seed)
        assert report.ok, str(report)
    wrong = gc.check_layer(*dense_bias_sign_flipped(np.float32, 0))
    assert wrong.status == "FAILED", str(wrong)
