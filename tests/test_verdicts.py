"""Verdicts that cannot be fooled (issue 10): every reproduction of the issue as a plain test.

1. Ties: a tied maximum's upstream given to every tied element (max over an axis, the
   ``(window == window.max()) * dout`` max-pool, top-k as ``(x >= kth) * g``) is FAILED under
   kinks="subgradient" and kinks="hull"; valid tie conventions (first / last argmax, an even
   split) and the other kink conventions (ReLU'(0) in [0, 1], clip at its bounds, |x| and
   LeakyReLU at 0, zero rows through a bias-free Dense + ReLU) pass.
2. float16 / float32 / longdouble: a wrong gradient is never "ok"; gross float32 bugs are
   FAILED; a correct float32 / float64 layer is ok, a correct float16 one never FAILED.
3. The error bar comes from what was measured: a constant offset of 1e12 or 1e20 makes the
   check UNVERIFIED (never ok) and says why; a loss returned as float32 or a longdouble input
   is never a false alarm and never called a kink; in float64 an element off by 1e-6 relative
   is FAILED by default, and an explicit rtol=1e-5 still overrides.
4. Noise and drift: every front door names a nondeterministic loss ("nondeterministic") and a
   loss that changes during the check ("state_changed" / "in_place"); never excused as kinks.
5. Params keyed "x" and "input" in check_layer; params sharing memory; masked-array params.

Also the verdict vocabulary itself ("ok" / "FAILED" / "UNVERIFIED", Problem kinds) and the cost
of a right gradient (2n + 3 loss evaluations, 2 gradient calls). Layers: tests/layer_bank.py,
section "issue 10".
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.report import Problem

import layer_bank as lb  # tests/ is on sys.path (pytest setting "pythonpath")
from report_checks import assert_report_consistent

STATUSES = ("ok", "FAILED", "UNVERIFIED")
KINDS = ("in_place", "accumulates", "nondeterministic", "state_changed", "non_finite_loss",
         "non_finite_grad")
BOTH_KINK_MODES = ("subgradient", "hull")
SEEDS = range(8)


# ------------------------------------------------------------------------------- helpers


def _by_name(rep):
    return {t.name: t for t in rep.tensors}


def _kinds(rep):
    return {p.kind for p in rep.problems}


def _status_line(text, name):
    """The report-table row of tensor ``name`` (first cell == name)."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return line
    raise AssertionError(f"no table row for tensor {name!r} in the report:\n{text}")


def _assert_consistent(rep):
    """The verdict vocabulary: statuses from the three, ok iff "ok", the report's status the
    worst of its tensors' (and FAILED with any problem), problems typed and shown."""
    text = str(rep)
    assert rep.status in STATUSES, rep.status
    assert rep.ok is (rep.status == "ok") and bool(rep) is rep.ok
    for t in rep.tensors:
        assert t.status in STATUSES, (t.name, t.status)
        assert t.ok is (t.status == "ok")
        assert t.status in _status_line(text, t.name), text
        if t.status == "UNVERIFIED":
            assert t.unverified_reason, f"{t.name} UNVERIFIED without a reason:\n{text}"
    statuses = {t.status for t in rep.tensors}
    if rep.problems or "FAILED" in statuses:
        assert rep.status == "FAILED", text
    elif "UNVERIFIED" in statuses:
        assert rep.status == "UNVERIFIED", text
    else:
        assert rep.status == "ok", text
    for p in rep.problems:
        assert isinstance(p, Problem), p
        assert p.kind in KINDS, p
        assert str(p) == p.text and p.text in text, p
    assert_report_consistent(rep)
    return text


def _never_blamed_on_kinks(rep):
    """Nothing excused as a kink: no kink settled by the hull or a jitter, no kink warning."""
    text = str(rep)
    settled = sum(t.kinks.by_hull + t.kinks.by_jitter for t in rep.tensors)
    assert settled == 0, f"misbehaviour excused as kinks:\n{text}"
    assert not [w for w in rep.warnings if "kink" in w.lower()], text


# ------------------------------------------------------------------------------- 1. ties


@pytest.mark.parametrize("kinks", BOTH_KINK_MODES)
def test_issue_example_tied_max_counted_twice_fails(kinks):
    """The issue's literal example: max over axis 1 of [1, 2, 2, 0, -1] with the upstream
    given to both tied 2s. Along d = (0, 1, 1, 0, 0) the loss has slope 1, analytic . d = 2."""

    class MaxAll:  # y = max over axis 1
        def forward(self, x):
            self.x = x
            return x.max(axis=1, keepdims=True)

        def backward(self, g):
            return (self.x == self.x.max(axis=1, keepdims=True)) * g

    rep = gc.check_layer(MaxAll(), np.array([[1.0, 2.0, 2.0, 0.0, -1.0]]),
                         upstream=np.array([[1.0]]), kinks=kinks)
    text = _assert_consistent(rep)
    assert not rep.ok, text
    assert rep.status == "FAILED", text
    assert _by_name(rep)["x"].status == "FAILED", text
    assert "FAILED" in _status_line(text, "x"), text


def _has_harmful_tie(layer, x):
    """Is there a tie at which giving every tied element the upstream is wrong?"""
    if isinstance(layer, lb.MaxPool2x2):
        return lb.has_tied_max(lb.pool_windows(x))
    if isinstance(layer, lb.TopKSum):
        return lb.top_k_boundary_tied(x, layer.k)
    if isinstance(layer, lb.MaxAbs):
        return lb.has_tied_max(np.abs(x), axis=1)
    if isinstance(layer, lb.MaxShifted):
        return lb.has_tied_max(x + layer.c, axis=1)
    if isinstance(layer, lb.ZeroPaddedMaxPool | lb.ReLUThenMaxPool):
        return not x.any()  # a black image: every window tied
    if isinstance(layer, lb.MaxWithThreshold):
        return bool(np.any(x == layer.params["t"]))
    if isinstance(layer, lb.SortDescending):  # any two equal values of a row
        return any(len(np.unique(row)) < len(row) for row in x)
    return lb.has_tied_max(x, axis=1)


@pytest.mark.parametrize("kinks", BOTH_KINK_MODES)
@pytest.mark.parametrize("case", lb.as_params(lb.TIE_BUGS))
def test_tied_maximum_counted_for_every_tied_element_fails(case, kinks):
    """max over an axis, the public max-pool backward and top-k as (x >= kth) * g, on
    integer-valued inputs with ties: FAILED in both kink modes, on the input x."""
    layer, x = case.make()
    assert _has_harmful_tie(layer, x), f"{case.name}: no tie the bug can show on"
    for seed in (0, 1):
        rep = gc.check_layer(layer, x, seed=seed, kinks=kinks, **case.opts)
        text = _assert_consistent(rep)
        assert rep.status == "FAILED", f"{case.name} ({case.doc}) not FAILED:\n{text}"
        assert _by_name(rep)["x"].status == "FAILED", text
        assert _by_name(rep)["x"].mismatched > 0, text


class LeakyReLUForgotAlpha:
    """LeakyReLU(0.01) whose backward drops the slope below 0 (g * (x > 0))."""

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, 0.01 * x)

    def backward(self, g):
        return g * (self.x > 0)


def test_zeros_of_an_elementwise_map_are_never_read_as_a_tie():
    """Six exact zeros of one row of an elementwise map share no output: no tie. Before,
    they were FAILED as tied maxima ("tied: counted together", "give it to one element")
    where the convention itself is invalid at each (LeakyReLU'(0) = 0 is outside [0.01, 1])."""
    x = np.array([[0.0, 0.0, -1.66, 0.0, 0.72, 0.53], [-0.13, 0.0, 0.15, 1.17, -1.45, 0.0],
                  [0.0, 0.0, 1.0, 0.0, 0.59, -0.02], [-1.42, 0.47, 0.0, 0.3, 0.0, 0.0]])
    report = gc.check_layer(LeakyReLUForgotAlpha(), x, seed=0)
    assert report.status == "FAILED" and not report.ties, report
    [tx] = report.tensors
    assert tx.failure == "KINK_CONVENTION", report
    assert not any(n.kind == "tie" for n in report.notes), report
    assert "tied" not in str(report), report
    _assert_consistent(report)


class DenseReLUOutputAsMask:
    """Dense + ReLU whose backward multiplies by the ReLU's output, not by its mask."""

    def __init__(self, w, b):
        self.params = {"W": w, "b": b}

    def forward(self, x):
        self.x = x
        self.out = np.maximum(x @ self.params["W"] + self.params["b"], 0.0)
        return self.out

    def backward(self, g):
        dz = g * self.out
        self.grads = {"W": self.x.T @ dz, "b": dz.sum(axis=0)}
        return dz @ self.params["W"].T


def test_equal_values_wrong_where_no_tie_holds_are_not_called_a_tie():
    """Zero biases behind two zero rows of x: b[0] == b[2] are kink coordinates, and moved
    together their gradients miss the loss's slope, because this backward is wrong
    everywhere. At jittered points, where no tie holds, they are wrong too: FAILED there
    (NEARBY), with no tie in the report (it was FAILED as a tie counted twice, and the
    diagnosis said tie_counted)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4))
    x[0] = x[3] = 0.0
    layer = DenseReLUOutputAsMask(0.5 * rng.standard_normal((4, 3)), np.zeros(3))
    report = gc.check_layer(layer, x, seed=7)
    assert report.status == "FAILED", report
    assert not report.ties, report
    assert all(t.status == "FAILED" for t in report.tensors), report
    assert not any(d.kind.startswith("tie") for d in report.diagnoses), report
    assert "tied: counted together" not in str(report), report
    _assert_consistent(report)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.longdouble])
@pytest.mark.parametrize("case", lb.as_params(lb.TIE_BUGS))
def test_tied_maximum_bugs_in_other_dtypes_are_never_ok(case, dtype):
    """The tie bug is an error of a whole upstream. Never ok in any dtype; FAILED in float32
    and longdouble, where it is far beyond the tie's error bar (what the two steps measured
    along the tie, and the rounding floor of the loss's values). In float16 a move along the
    tie changes each output by about one spacing, and 8 rounding floors (the mismatch a bug
    must exceed, as for a coordinate) can reach a whole upstream: there a tie bug is FAILED
    or, where it does not clear them, UNVERIFIED with the tie's reason, never ok."""
    layer, x = case.make()
    for kinks in BOTH_KINK_MODES:
        rep = gc.check_layer(layer, x.astype(dtype), kinks=kinks, **case.opts)
        text = _assert_consistent(rep)
        assert not rep.ok, f"{case.name} let through in {np.dtype(dtype).name}:\n{text}"
        if dtype is np.float16 and rep.status == "UNVERIFIED":
            assert _by_name(rep)["x"].reason == "TIE_UNDECIDED", text
        else:
            assert rep.status == "FAILED", text


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", lb.as_params(lb.TIE_CONVENTIONS))
def test_valid_tie_conventions_in_float32_pass_and_in_float16_never_fail(case, dtype):
    layer, x = case.make()
    for kinks in BOTH_KINK_MODES:
        rep = gc.check_layer(layer, x.astype(dtype), kinks=kinks, **case.opts)
        text = _assert_consistent(rep)
        if dtype is np.float32:
            assert rep.ok, f"false alarm on {case.name} in float32:\n{text}"
        else:
            assert rep.status != "FAILED", f"false alarm on {case.name} in float16:\n{text}"


@pytest.mark.parametrize("kinks", BOTH_KINK_MODES)
@pytest.mark.parametrize("case", lb.as_params(lb.TIE_CONVENTIONS))
def test_valid_tie_conventions_pass(case, kinks):
    """First argmax, last argmax and an even split among tied elements (and the matching
    top-k conventions) are valid gradients at a tie: ok in both kink modes, no problem."""
    layer, x = case.make()
    x_bytes = x.tobytes()
    for seed in (0, 1):
        rep = gc.check_layer(layer, x, seed=seed, kinks=kinks, **case.opts)
        text = _assert_consistent(rep)
        assert rep.ok, f"false alarm on {case.name} ({case.doc}):\n{text}"
        assert not rep.problems, text
    assert x.tobytes() == x_bytes


def test_ties_only_inside_the_top_k_are_no_bug():
    """(x >= kth) * g is right when the ties do not straddle the k-th place (top 2 of
    [3, 3, 1]): both tied entries are in the sum, so the check must not cry wolf."""
    x = np.array([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    assert not lb.top_k_boundary_tied(x, 2)
    for kinks in BOTH_KINK_MODES:
        rep = gc.check_layer(lb.TopKSum(2, "all"), x, kinks=kinks)
        assert rep.ok, str(rep)


@pytest.mark.parametrize("c", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("kinks", BOTH_KINK_MODES)
def test_relu_at_zero_any_convention_in_0_1_passes_on_pixels(c, kinks):
    """ReLU'(0) anywhere in [0, 1] on integer-valued inputs (many exact zeros)."""
    x = lb.integer_valued((4, 6), 210, lo=-2, hi=3)
    assert np.any(x == 0)
    rep = gc.check_layer(lb.ReLU(grad_at_zero=c), x, kinks=kinks)
    assert rep.ok, str(_assert_consistent(rep))


@pytest.mark.parametrize("kinks", BOTH_KINK_MODES)
@pytest.mark.parametrize(
    ("layer", "x"),
    [
        (lb.HardTanh(-1.0, 1.0, 1.0), lb.integer_valued((4, 5), 211, lo=-2, hi=3)),
        (lb.HardTanh(-1.0, 1.0, 0.0), lb.integer_valued((4, 5), 212, lo=-2, hi=3)),
        (lb.HardTanh(0.0, 6.0, 0.5), lb.integer_valued((4, 5), 213, lo=-1, hi=8)),
        (lb.Abs(0.0), lb.integer_valued((4, 5), 214, lo=-2, hi=3)),
        (lb.LeakyReLU(0.1, grad_at_zero=0.1), lb.integer_valued((4, 5), 215, lo=-2, hi=3)),
        (lb.LeakyReLU(0.1, grad_at_zero=1.0), lb.integer_valued((4, 5), 216, lo=-2, hi=3)),
    ],
    ids=["clip_corner_1", "clip_corner_0", "relu6_corner_half", "abs_sign0",
         "leaky_alpha_at_0", "leaky_1_at_0"],
)
def test_clip_abs_and_leaky_at_their_kinks_pass_on_pixels(layer, x, kinks):
    """clip with values exactly at its bounds, |x| and LeakyReLU at 0: elementwise kinks
    with valid conventions, on integer-valued inputs that hit them often."""
    assert np.any(np.isin(x, layer.kink_points))
    rep = gc.check_layer(layer, x, kinks=kinks)
    assert rep.ok, str(_assert_consistent(rep))


@pytest.mark.parametrize("seed", [0, 1])
def test_zero_rows_through_bias_free_dense_relu_pass(seed):
    """Zero input rows through a bias-free Dense + ReLU (ReLU'(0) = 0) cross many kinks at once
    along one coordinate: a valid gradient, which must pass by default."""
    layer, x = lb.zero_row_bias_free_dense_relu()
    rep = gc.check_layer(layer, x, seed=seed)
    assert rep.ok, str(_assert_consistent(rep))


# ------------------------------------------------------------------------------- 2. dtypes


@pytest.mark.parametrize("name", list(lb.LOW_PRECISION_MUTANTS))
def test_float16_wrong_gradient_is_never_ok_on_any_seed(name):
    """Issue: a sign-flipped bias, a transposed dW, softmax cross-entropy without the one-hot
    and +0.4 on one element of dW each passed in float16 on some seeds ("max rel 2.0e+00 ...
    ok"). FAILED or UNVERIFIED are both acceptable; "ok" never is."""
    make = lb.LOW_PRECISION_MUTANTS[name]
    for seed in SEEDS:
        rep = gc.check_layer(*make(np.float16, seed), seed=seed)
        text = _assert_consistent(rep)
        assert not rep.ok, f"{name} passed in float16 with seed {seed}:\n{text}"
        assert rep.status in ("FAILED", "UNVERIFIED"), text


@pytest.mark.parametrize("name", list(lb.LOW_PRECISION_MUTANTS))
def test_float32_gross_bug_is_failed_on_every_seed(name):
    """The same gross bugs in float32: FAILED (the error is far beyond float32's error bar),
    and the tensor the bug reaches is FAILED."""
    make = lb.LOW_PRECISION_MUTANTS[name]
    bad = lb.LOW_PRECISION_BAD[name]
    for seed in SEEDS:
        rep = gc.check_layer(*make(np.float32, seed), seed=seed)
        text = _assert_consistent(rep)
        assert rep.status == "FAILED", f"{name} not FAILED in float32, seed {seed}:\n{text}"
        assert any(_by_name(rep)[t].status == "FAILED" for t in bad), text


@pytest.mark.parametrize("name", list(lb.LOW_PRECISION_MUTANTS))
def test_longdouble_wrong_gradient_is_never_ok(name):
    """The same bugs in longdouble (the loss itself is summed in float64): never ok."""
    make = lb.LOW_PRECISION_MUTANTS[name]
    for seed in (0, 1, 2):
        rep = gc.check_layer(*make(np.longdouble, seed), seed=seed)
        assert not rep.ok, str(_assert_consistent(rep))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(lb.LOW_PRECISION_CORRECT))
def test_correct_float32_and_float64_layers_are_ok(name, dtype):
    make = lb.LOW_PRECISION_CORRECT[name]
    for seed in SEEDS:
        rep = gc.check_layer(*make(dtype, seed), seed=seed)
        text = _assert_consistent(rep)
        assert rep.ok, f"false alarm on {name} in {np.dtype(dtype).name}, seed {seed}:\n{text}"


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
@pytest.mark.parametrize("name", list(lb.LOW_PRECISION_CORRECT))
def test_correct_float16_and_longdouble_layers_are_never_failed(name, dtype):
    """float16's error bar may be too wide to vouch for a gradient (UNVERIFIED, with a
    reason), but a correct layer is never FAILED."""
    make = lb.LOW_PRECISION_CORRECT[name]
    for seed in SEEDS:
        rep = gc.check_layer(*make(dtype, seed), seed=seed)
        text = _assert_consistent(rep)
        assert rep.status != "FAILED", f"false alarm on {name} in {np.dtype(dtype).name}:\n{text}"
        assert not rep.problems, text


def test_longdouble_input_with_a_float64_loss_is_no_false_alarm():
    """Issue: x = [1.19e-07, 32, 32] in longdouble, f = sum(x**2) computed in float64, the
    right gradient 2x, failed. It must be ok (or at worst UNVERIFIED), never FAILED."""
    x = np.array([1.19e-07, 32, 32], dtype=np.longdouble)
    rep = gc.check_function(lambda v: float(np.sum(np.asarray(v, dtype=np.float64) ** 2)),
                            lambda v: 2 * v, x)
    text = _assert_consistent(rep)
    assert rep.status in ("ok", "UNVERIFIED"), text
    assert not rep.problems, text


def test_longdouble_input_with_a_longdouble_loss_is_no_false_alarm():
    """The same point with f = sum(x**2) evaluated in longdouble (returned as a Python float)."""
    x = np.array([1.19e-07, 32, 32], dtype=np.longdouble)
    rep = gc.check_function(lambda v: float(np.sum(v**2)), lambda v: 2 * v, x)
    text = _assert_consistent(rep)
    assert rep.status in ("ok", "UNVERIFIED"), text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float64_function_returning_a_float32_loss_is_no_false_alarm_and_no_kink(seed):
    """Issue: a float64 function whose loss comes back as np.float32 failed a right gradient
    and the report called it a kink ("for an elementwise layer it is a bug"). The loss is
    rough at the step's scale: never FAILED, and not called a kink."""
    x = np.random.default_rng(seed).standard_normal(6)
    rep = gc.check_function(lambda v: np.float32(np.sum(np.sin(v) * v)),
                            lambda v: np.sin(v) + v * np.cos(v), x)
    text = _assert_consistent(rep)
    assert rep.status != "FAILED", text
    assert sum(t.kinks.met for t in rep.tensors) == 0, text
    assert "it is a bug" not in text, text
    assert not [w for w in rep.warnings if "kink" in w.lower()], text


def test_float64_function_returning_a_float32_loss_with_a_wrong_gradient_is_not_ok():
    """The other side: the float32 loss still resolves a sign flip."""
    x = np.random.default_rng(3).standard_normal(6) + 2.0
    rep = gc.check_function(lambda v: np.float32(np.sum(v**2)), lambda v: -2 * v, x)
    text = _assert_consistent(rep)
    assert not rep.ok, text


# ------------------------------------------------------------------------------- 3. error bars

OFFSET_REASON = re.compile(r"(?i)offset|size of the loss|\|L\||magnitud|large loss|too large")


@pytest.mark.parametrize("offset", [1e12, 1e20])
def test_constant_offset_with_a_wrong_gradient_is_unverified_and_says_why(offset):
    """Issue: 1e12 + sum(v**2) with the gradient 6v passed (the allowance was ~2e3); at 1e20
    any gradient passed. The error bar comes from what was measured: too wide to tell, so
    UNVERIFIED, with a reason naming the loss's size or the constant offset."""
    rep = gc.check_function(lambda v: offset + float(np.sum(v**2)), lambda v: 6 * v, np.ones(4))
    text = _assert_consistent(rep)
    assert not rep.ok, text
    assert rep.status == "UNVERIFIED", text
    t = rep.tensors[0]
    assert t.status == "UNVERIFIED" and t.unverified > 0, text
    assert OFFSET_REASON.search(t.unverified_reason), t.unverified_reason
    assert t.unverified_reason in text, text
    assert "UNVERIFIED" in text.splitlines()[0], text
    assert rep.to_dict()["status"] == "UNVERIFIED"
    with pytest.raises(gc.GradientMismatch):  # in a pytest run, unverified is not a pass
        rep.raise_if_failed()


@pytest.mark.parametrize("offset", [1e12, 1e16, 1e20])
def test_constant_offset_with_the_right_gradient_is_never_failed(offset):
    """1e12 + sum(v**2) with the right gradient 2v: ok or UNVERIFIED, never a false alarm
    (at 1e16 and beyond the perturbation does not even change the loss)."""
    rep = gc.check_function(lambda v: offset + float(np.sum(v**2)), lambda v: 2 * v, np.ones(4))
    text = _assert_consistent(rep)
    assert rep.status in ("ok", "UNVERIFIED"), text
    if rep.status == "UNVERIFIED":
        assert OFFSET_REASON.search(rep.tensors[0].unverified_reason), text


def test_moderate_offset_still_fails_a_gross_bug():
    """1e6 + sum(v**2): the measured error bar (~1e-4) is far below a factor-3 error."""
    rep = gc.check_function(lambda v: 1e6 + float(np.sum(v**2)), lambda v: 6 * v, np.ones(4))
    assert rep.status == "FAILED", str(_assert_consistent(rep))


@pytest.mark.parametrize("scale", [1e-12, 1e-20, 1e-30])
def test_a_tiny_loss_scale_never_lets_a_wrong_gradient_pass(scale):
    """scale * sum(v sin v) is as precise, relative to itself, as sum(v sin v): a gradient 3x
    too large is caught at any scale, not waved through because every number is below a
    fixed absolute tolerance ("ok" means verified); the right gradient is ok."""
    x = np.linspace(-1.0, 2.0, 4)

    def grad(v):
        return scale * (np.sin(v) + v * np.cos(v))

    def f(v):
        return scale * float(np.sum(v * np.sin(v)))

    wrong = gc.check_function(f, lambda v: 3 * grad(v), x)
    assert not wrong.ok, str(_assert_consistent(wrong))
    right = gc.check_function(f, grad, x)
    assert right.ok, str(_assert_consistent(right))


def test_a_tiny_upstream_never_lets_a_wrong_layer_pass():
    """The same through check_layer: an upstream gradient of size 1e-12 scales every
    gradient down; a sign-flipped bias gradient is still wrong."""
    layer, x = lb.dense_bias_sign_flipped(np.float64, 0)
    g = 1e-12 * np.random.default_rng(0).standard_normal((len(x), 3))
    rep = gc.check_layer(layer, x, upstream=g)
    text = _assert_consistent(rep)
    assert not rep.ok, text
    assert not _by_name(rep)["b"].ok, text
    rep = gc.check_layer(lb.Dense(4, 3, seed=0), x, upstream=g)
    assert rep.ok, str(_assert_consistent(rep))


@pytest.mark.parametrize("case", lb.as_params(lb.SENSITIVITY_MUTANTS))
def test_float64_one_element_off_by_a_millionth_is_failed_by_default(case):
    """In float64 a smooth, well-scaled layer's central differences are good to ~1e-10
    relative: an element off by 1e-6 relative (a dropped eps in batch norm is that size) is
    FAILED by default, and the tensor it sits in is named."""
    layer, x = case.make()
    rep = gc.check_layer(layer, x)
    text = _assert_consistent(rep)
    assert rep.status == "FAILED", f"{case.name} ({case.doc}) let through:\n{text}"
    for name in case.bad:
        assert _by_name(rep)[name].status == "FAILED", text


@pytest.mark.parametrize("case", lb.as_params(lb.SENSITIVITY_MUTANTS))
def test_explicit_rtol_still_overrides_the_derived_tolerance(case):
    """rtol=1e-5 given explicitly: a 1e-6 (or 5e-6) relative error is within it, so ok."""
    layer, x = case.make()
    rep = gc.check_layer(layer, x, rtol=1e-5)
    text = _assert_consistent(rep)
    assert rep.ok, text


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("make", [lb.batchnorm_case, lb.dense_tanh_case],
                         ids=["batchnorm", "dense_tanh"])
def test_correct_smooth_float64_layers_pass_at_the_tight_default(make, seed):
    """The other side of the sensitivity: the correct layers are ok by default."""
    rep = gc.check_layer(*make(seed), seed=seed)
    assert rep.ok, str(_assert_consistent(rep))


# ------------------------------------------------------------------------------- 4. noise, drift


@pytest.mark.parametrize("factor", [6.0, 2.0], ids=["wrong", "right"])
def test_issue_example_noisy_loss_through_check_params_is_nondeterministic(factor):
    """Issue: loss = sum(w**2) + 1e-2 * noise with the wrong gradient 6w passed check_params.
    The engine evaluates the point more than once: not ok, named "nondeterministic", with the
    wrong and with the right gradient alike."""
    rng = np.random.default_rng(11)
    p = {"w": np.ones(8)}
    rep = gc.check_params(lambda: float(np.sum(p["w"] ** 2)) + 1e-2 * rng.standard_normal(),
                          lambda: {"w": factor * p["w"]}, p)
    text = _assert_consistent(rep)
    assert not rep.ok and rep.status == "FAILED", text
    assert "nondeterministic" in _kinds(rep), text
    _never_blamed_on_kinks(rep)
    assert p["w"].tobytes() == np.ones(8).tobytes()


@pytest.mark.parametrize("factor", [6.0, 2.0], ids=["wrong", "right"])
def test_noisy_function_through_check_function_is_nondeterministic(factor):
    rng = np.random.default_rng(12)
    rep = gc.check_function(lambda v: float(np.sum(v**2)) + 1e-2 * rng.standard_normal(),
                            lambda v: factor * v, np.ones(8))
    text = _assert_consistent(rep)
    assert not rep.ok, text
    assert "nondeterministic" in _kinds(rep), text


@pytest.mark.parametrize("sigma", [1e-2, 1e-8])
def test_noisy_layer_through_check_layer_is_nondeterministic(sigma):
    rep = gc.check_layer(lb.NoisyDense(4, 3, seed=1, sigma=sigma), lb.sample((5, 4), 500))
    text = _assert_consistent(rep)
    assert not rep.ok, text
    assert "nondeterministic" in _kinds(rep), text


@pytest.mark.parametrize("wrong_db", [True, False], ids=["wrong_db", "right"])
@pytest.mark.parametrize("kinks", BOTH_KINK_MODES)
def test_forward_that_starts_moving_a_param_after_its_third_call_fails(kinks, wrong_db):
    """Issue: a forward that from its fourth call on increments a param in place passed
    with a buggy backward, every coordinate "a kink settled by the hull". It must fail,
    named as state changed during the check (or an in-place write), never as kinks."""
    layer = lb.DriftingDense(4, 3, seed=1, after=3, wrong_db=wrong_db)
    b_before = layer.params["b"].copy()
    rep = gc.check_layer(layer, lb.sample((5, 4), 501), kinks=kinks)
    text = _assert_consistent(rep)
    assert not rep.ok and rep.status == "FAILED", text
    assert _kinds(rep) & {"state_changed", "in_place"}, text
    _never_blamed_on_kinks(rep)
    assert layer.params["b"].tobytes() == b_before.tobytes(), "params not restored"


@pytest.mark.parametrize("after", [6, 20])
@pytest.mark.parametrize("wrong_db", [True, False], ids=["wrong_db", "right"])
def test_hidden_state_that_drifts_during_the_scan_is_state_changed(wrong_db, after):
    """State outside the params (a scale that grows from call `after` on) changes the loss at
    the point during the scan: the evaluation after the scan differs from the ones before."""
    layer = lb.HiddenDriftDense(4, 3, seed=1, after=after, wrong_db=wrong_db)
    rep = gc.check_layer(layer, lb.sample((5, 4), 502))
    text = _assert_consistent(rep)
    assert not rep.ok and rep.status == "FAILED", text
    assert _kinds(rep) & {"state_changed", "nondeterministic"}, text
    _never_blamed_on_kinks(rep)


def test_check_params_loss_that_drifts_during_the_scan_is_state_changed():
    """The same drift through check_params (no forward to compare): the engine's own
    re-evaluation of the point after the scan catches it."""
    p = {"w": np.linspace(-1.0, 1.0, 6)}
    calls = [0]

    def loss():
        calls[0] += 1
        return float(np.sum(p["w"] ** 2)) + 1e-3 * max(0, calls[0] - 4)

    rep = gc.check_params(loss, lambda: {"w": 2 * p["w"]}, p)
    text = _assert_consistent(rep)
    assert not rep.ok, text
    assert _kinds(rep) & {"state_changed", "nondeterministic"}, text
    _never_blamed_on_kinks(rep)


# ------------------------------------------------------------------------------- 5. usage


def test_layer_with_params_keyed_x_and_input_still_checks_its_input():
    """Issue: params keyed "x" and "input" hid the user's input (a correct layer failed, the
    input was never checked). The input is checked under a name of its own."""
    x = lb.sample((3, 4), 510)
    rep = gc.check_layer(lb.ParamsNamedXAndInput((3, 4), seed=1), x)
    text = _assert_consistent(rep)
    assert rep.ok, text
    names = [t.name for t in rep.tensors]
    assert len(names) == len(set(names)) == 3, names
    (input_name,) = set(names) - {"x", "input"}
    if rep.input_name is not None:
        assert rep.input_name == input_name, (rep.input_name, names)
    assert _by_name(rep)[input_name].shape == (3, 4)


def test_layer_with_params_keyed_x_and_input_fails_a_wrong_input_gradient():
    """The input's gradient is really checked: a sign-flipped dx fails on the input tensor
    only, the params named "x" and "input" are ok."""
    rep = gc.check_layer(lb.ParamsNamedXAndInput((3, 4), seed=1, wrong_dx=True),
                         lb.sample((3, 4), 511))
    text = _assert_consistent(rep)
    assert rep.status == "FAILED", text
    by = _by_name(rep)
    (input_name,) = set(by) - {"x", "input"}
    assert by[input_name].status == "FAILED", text
    assert by["x"].ok and by["input"].ok, text


def _sum_of_squares(p):
    return lambda: float(sum(np.sum(a**2) for a in p.values()))


@pytest.mark.parametrize(
    "make",
    [
        lambda base: {"a": base, "b": base},
        lambda base: {"a": base[:4], "b": base[2:]},
        lambda base: {"a": base.reshape(2, 3), "b": base[::2]},
    ],
    ids=["same_array_twice", "overlapping_slices", "reshape_and_strided_view"],
)
def test_params_sharing_memory_are_refused_naming_both(make):
    p = make(np.arange(6, dtype=np.float64))
    with pytest.raises(gc.GradcheckUsageError) as info:
        gc.check_params(_sum_of_squares(p), lambda: {k: 2 * v for k, v in p.items()}, p)
    message = str(info.value)
    assert "share memory" in message, message
    assert "'a'" in message and "'b'" in message, message


@pytest.mark.parametrize(
    "make",
    [
        lambda base: {"a": base[:3], "b": base[3:]},
        lambda base: {"a": base[::2], "b": base[1::2]},
    ],
    ids=["disjoint_slices", "interleaved_strides"],
)
def test_disjoint_views_of_one_buffer_are_fine(make):
    """Views that do not overlap share no element: nothing to refuse, and a right gradient
    passes."""
    p = make(np.linspace(-1.0, 2.0, 6))
    rep = gc.check_params(_sum_of_squares(p), lambda: {k: 2 * v for k, v in p.items()}, p)
    assert rep.ok, str(_assert_consistent(rep))


@pytest.mark.parametrize("view", [
    lambda base: np.lib.stride_tricks.as_strided(base, shape=(3, 2), strides=(8, 0)),
    lambda base: np.lib.stride_tricks.as_strided(base, shape=(2, 3), strides=(0, 8)),
], ids=["repeated_elements", "repeated_rows"])
def test_a_param_whose_elements_share_memory_is_refused(view):
    """A 0-stride view is one array whose elements alias each other: moving one moves
    others, so no element-by-element check means anything. Refused, naming the param and
    saying what to pass instead (was: FAILED with a 'scale 1/2' diagnosis)."""
    p = {"W": view(np.arange(3.0))}
    with pytest.raises(gc.GradcheckUsageError) as info:
        gc.check_params(_sum_of_squares(p), lambda: {"W": 2 * p["W"]}, p)
    message = str(info.value)
    assert "params['W']" in message and "share memory" in message, message
    assert ".copy()" in message, message


def test_a_stray_gradient_key_is_named_beside_the_missing_one():
    """grads() keyed 'w' for params 'W': the error names both, the stray key as the likely
    match."""
    p = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    with pytest.raises(gc.GradientShapeError) as info:
        gc.check_params(_sum_of_squares(p), lambda: {"w": 2 * p["W"], "b": 2 * p["b"]}, p)
    message = str(info.value)
    assert "no gradient for 'W'" in message and "'w' (for 'W'?)" in message, message


def test_layer_params_sharing_memory_are_refused():
    layer = lb.Dense(3, 3, seed=1)
    layer.params["b"] = layer.params["W"][0]  # a view of W's first row
    with pytest.raises(gc.GradcheckUsageError, match="share memory") as info:
        gc.check_layer(layer, lb.sample((2, 3), 512))
    assert "'W'" in str(info.value) and "'b'" in str(info.value), str(info.value)


def test_masked_array_param_is_refused_naming_it():
    """Issue: a masked-array param failed with "loss was not finite" although the loss is
    finite everywhere. Refuse it, naming it."""
    w = np.ma.masked_array(np.array([1.0, 2.0, 3.0]), mask=[False, True, False])
    p = {"w": w, "v": np.ones(2)}
    with pytest.raises(gc.GradcheckUsageError) as info:
        gc.check_params(lambda: float(np.sum(p["w"] ** 2) + np.sum(p["v"])),
                        lambda: {"w": 2 * p["w"], "v": np.ones(2)}, p)
    message = str(info.value)
    assert "'w'" in message and "'v'" not in message, message
    assert "mask" in message.lower(), message


def test_masked_array_layer_param_is_refused_naming_it():
    layer = lb.Dense(3, 2, seed=1)
    layer.params["b"] = np.ma.masked_array(layer.params["b"], mask=[False, True])
    with pytest.raises(gc.GradcheckUsageError, match="'b'"):
        gc.check_layer(layer, lb.sample((2, 3), 513))


# ------------------------------------------------------------------------------- vocabulary


def test_problem_kinds_for_the_classic_misbehaviours():
    """Each misbehaviour has its kind; the text is what str(problem) shows."""
    params = {"w": np.linspace(0.5, 2.0, 4)}
    store = {"w": np.zeros(4)}

    def accumulating():
        store["w"] += 2 * params["w"]
        return store

    rep = gc.check_params(lambda: float(np.sum(params["w"] ** 2)), accumulating, params)
    assert "accumulates" in _kinds(_check(rep)), str(rep)

    def writes():
        params["w"] *= 1.0 + 1e-3
        return float(np.sum(params["w"] ** 2))

    rep = gc.check_params(writes, lambda: {"w": 2 * params["w"]}, params)
    assert "in_place" in _kinds(_check(rep)), str(rep)

    with np.errstate(divide="ignore", invalid="ignore"):
        rep = gc.check_function(lambda v: float(np.sum(np.log(v))), lambda v: 1 / v,
                                np.array([1.0, 0.0, 2.0]))
        assert "non_finite_loss" in _kinds(_check(rep)), str(rep)
        rep = gc.check_function(lambda v: float(np.sum(v**2)), lambda v: v / 0.0 * 0.0,
                                np.ones(3))
        assert "non_finite_grad" in _kinds(_check(rep)), str(rep)


def _check(rep):
    _assert_consistent(rep)
    assert rep.status == "FAILED" and not rep.ok
    return rep


def test_a_right_gradient_report_is_ok_everywhere():
    rep = gc.check_function(lambda v: float(np.sum(np.sin(v))), np.cos, np.linspace(-1, 1, 5))
    text = _assert_consistent(rep)
    assert rep.status == "ok" and rep.tensors[0].status == "ok" and not rep.problems, text
    assert rep.to_dict()["status"] == "ok"


# ------------------------------------------------------------------------------- cost


class _Counted:
    """A smooth loss over {"w", "v"} counting its calls."""

    def __init__(self, params):
        self.params = params
        self.n_loss = self.n_grads = 0

    def loss(self):
        self.n_loss += 1
        w, v = self.params["w"], self.params["v"]
        return float(np.sum(np.sin(w) * w) + np.sum(v**3) + np.sum(w) * np.sum(v))

    def grads(self):
        self.n_grads += 1
        w, v = self.params["w"], self.params["v"]
        return {"w": np.sin(w) + w * np.cos(w) + np.sum(v), "v": 3 * v**2 + np.sum(w)}


@pytest.mark.parametrize("n", [1, 7, 40])
def test_a_right_gradient_costs_2n_plus_3_loss_evaluations_and_2_gradient_calls(n):
    """Full mode: two evaluations per coordinate, the point, a repeat of the point (is it
    deterministic?) and the point again after the scan (did it change?); grads() twice
    (does it accumulate?)."""
    rng = np.random.default_rng(n)
    params = {"w": rng.standard_normal(n), "v": rng.standard_normal((2, 3))}
    f = _Counted(params)
    rep = gc.check_params(f.loss, f.grads, params, mode="full")
    assert rep.ok, str(rep)
    total = n + 6
    assert f.n_loss == rep.evaluations["loss"] == 2 * total + 3, (f.n_loss, rep.evaluations)
    assert f.n_grads == rep.evaluations["grads"] == 2


def test_a_right_function_and_layer_cost_2n_plus_3():
    x = np.linspace(-1.0, 1.0, 9)
    rep = gc.check_function(lambda v: float(np.sum(np.tanh(v))), lambda v: 1 - np.tanh(v) ** 2,
                            x, mode="full")
    assert rep.ok and rep.evaluations == {"loss": 2 * 9 + 3, "grads": 2}, rep.evaluations
    layer, xl = lb.dense_tanh_case(0)
    rep = gc.check_layer(layer, xl, mode="full")
    n = xl.size + sum(v.size for v in layer.params.values())
    assert rep.ok and rep.evaluations == {"loss": 2 * n + 3, "grads": 2}, rep.evaluations


# ------------------------------------------------------------------ no kink on a linear piece


class LinearDenseOneSignFlipped:
    """y = x W + b, linear in every tensor; dW[3, 0] has the wrong sign."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.params = {"W": rng.standard_normal((4, 4)) / 2, "b": 0.5 * rng.standard_normal(4)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, g: np.ndarray) -> np.ndarray:
        dw = self.x.T @ g
        dw[3, 0] = -dw[3, 0]
        self.grads = {"W": dw, "b": g.sum(axis=0)}
        return g @ self.params["W"].T


@pytest.mark.parametrize("kinks", ["subgradient", "hull", "strict"])
@pytest.mark.parametrize("seed", range(6))
def test_a_wrong_element_of_a_linear_layer_is_never_read_as_a_kink(kinks: str, seed: int) -> None:
    """The one-sided differences of a linear loss differ only by rounding (2.9e-10 on a
    slope of 6.1 here): that is no jump. The element is FAILED as itself, never settled or
    excused as a kink."""
    x = np.random.default_rng(4).standard_normal((8, 4))
    report = gc.check_layer(LinearDenseOneSignFlipped(), x, seed=seed, kinks=kinks)
    w = next(t for t in report.tensors if t.name == "W")
    assert w.status == "FAILED" and w.worst[0].index == (3, 0), str(report)
    assert w.kinks.met == 0 and not w.kink.any(), str(report)


# ------------------------------------------------------------------ rough is not a kink


def _steep_cases() -> dict[str, tuple]:
    """(loss, right gradient, point): smooth losses whose truncation at the default step
    exceeds the tolerance (a gradient tiny next to the curvature, log far below 1, exp
    far above it)."""
    p = np.random.default_rng(3).uniform(5e-4, 2e-3, 6)
    return {
        "cubic_near_0": (lambda v: float(np.sum(v**2 + v**3)), lambda v: 2 * v + 3 * v**2,
                         1e-7 * np.array([1.0, -2.0, 3.0, 0.5])),
        "neg_log_small_p": (lambda v: float(-np.sum(np.log(v))), lambda v: -1 / v, p),
        "exp_at_400": (lambda v: float(np.sum(np.exp(v))), np.exp,
                       400 + np.random.default_rng(4).uniform(0, 1, 5)),
    }


# -log(v) at v ~ 5e-4: the resolution probe, moving along a wrong gradient, reaches v < 0 (nan)
@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(_steep_cases()))
@pytest.mark.parametrize("factor", [-1.0, 1.0005, 2.0])
def test_a_wrong_gradient_of_a_steep_smooth_loss_is_not_excused_as_a_kink(name: str,
                                                                         factor: float) -> None:
    """The h and h/2 looks disagree by more than the tolerance (truncation), which once
    read as a kink and let the one-sided range accept anything inside it. A third look at
    h/4 sees the gap shrink 4x: curvature, judged by Richardson's extrapolation."""
    f, grad, x = _steep_cases()[name]
    report = gc.check_function(f, lambda v: factor * grad(v), x)
    assert report.status == "FAILED", str(report)
    assert report.tensors[0].kinks.met == 0, str(report)


@pytest.mark.parametrize("name", sorted(_steep_cases()))
def test_the_right_gradient_of_a_steep_smooth_loss_is_never_failed(name: str) -> None:
    f, grad, x = _steep_cases()[name]
    report = gc.check_function(f, grad, x)
    assert report.status != "FAILED", str(report)
    assert report.tensors[0].kinks.met == 0, str(report)


def test_a_steep_bowl_at_its_minimum_is_verified() -> None:
    """1e13 x^2 at 0: the gradient is 0 and the loss a step away is 367; its rounding is
    measured against the slope there (1e8), not against 0."""
    report = gc.check_function(lambda v: 1e13 * float(np.sum(v**2)), lambda v: 2e13 * v,
                               np.zeros(3))
    assert report.ok, str(report)


def test_a_tensor_the_loss_never_sees_beside_a_large_loss_is_verified() -> None:
    """Dense with x = 0 and W = 0 beside b = (300, 0, 0, 0): dL/dx and dL/dW are exactly 0
    and the loss does not move at all when they move. The rounding of |L| ~ 300 bounds
    their numeric derivative to ~1e-8: no scale of their own to hold that to, so the
    check's (b's gradients, order 1) is used, not the bare atol."""
    from reference_nets.layers import Dense

    layer = Dense.from_arrays(np.zeros((1, 4)), np.array([300.0, 0.0, 0.0, 0.0]))
    report = gc.check_layer(layer, np.zeros((2, 1)))
    assert report.ok, str(report)


@pytest.mark.parametrize("hidden_weight", [0.0, 4.84e-281])
def test_a_dead_hidden_layer_under_a_large_cost_is_verified(hidden_weight: float) -> None:
    """Net222 with Theta1 = [[1, 0, 0], 0], Theta2 = [[100, w, w], [w, w, w]], x = 0:
    J = 5000 and dJ/dTheta1 is 0, or 5e-279 (w = 4.8e-281, as the default hypothesis
    profile drew it): nothing next to Theta2's gradient (100), which sets the scale Theta1
    is held to."""
    from reference_nets.classic import Net222

    theta1 = np.zeros((2, 3))
    theta1[0, 0] = 1.0
    theta2 = np.full((2, 3), hidden_weight)
    theta2[0, 0] = 100.0
    net = Net222(theta1, theta2)
    X, Y = np.zeros((1, 2)), np.zeros((1, 2))
    report = gc.check_params(lambda: net.cost(X, Y), lambda: net.gradients(X, Y), net.params)
    assert report.ok, str(report)


def test_a_missing_gradient_the_loss_shows_is_never_excused_by_the_checks_scale() -> None:
    """The same Dense with x = 1e-3: dL/dW = x^T g is small but visible above the loss's
    rounding; a backward that leaves dW at 0 has a tensor scale of its own (the numeric
    values) and is not vouched for by b's."""
    from reference_nets.layers import Dense

    class NoDW(Dense):
        def backward(self, grad_y):
            dx = super().backward(grad_y)
            self.grads["W"] = np.zeros_like(self.grads["W"])
            return dx

    layer = NoDW.from_arrays(np.zeros((1, 4)), np.array([300.0, 0.0, 0.0, 0.0]))
    report = gc.check_layer(layer, np.full((2, 1), 1e-3))
    w = next(t for t in report.tensors if t.name == "W")
    assert w.status == "FAILED", str(report)


def test_a_linear_layer_whose_loss_terms_cancel_is_never_failed() -> None:
    """Dense with W = 0, b = (0, 0, 1) and x = 2.8e-8: moving W changes y by 1.7e-13, and
    y[:, 2] = 1 + 1.7e-13 is rounded by 1.1e-16 each time, a part in 1e3 of the change.
    L = sum(g y) can be far smaller than the terms whose roundings it carries (g of either
    sign cancels): the bound is eps sum |g y|, not eps |L|, and no rounding is read as a bug
    (found by the deep hypothesis profile)."""
    from reference_nets.layers import Dense

    layer = Dense.from_arrays(np.zeros((3, 3)), np.array([0.0, 0.0, 1.0]))
    report = gc.check_layer(layer, np.full((3, 3), 2.76319466e-08))
    assert report.status != "FAILED", str(report)


def test_a_loss_in_the_subnormal_range_is_never_failed() -> None:
    """L = 1e-316 sum(v x c) is subnormal in float64: its values are spaced 5e-324 apart
    whatever their size, not eps |L|, so a step of 6e-6 resolves the slope to about 1 %.
    The rounding floor counts that spacing: unverified with the reason, never FAILED."""
    c = np.array([1.0, -2.0, 3.0])
    report = gc.check_function(lambda v: 1e-316 * float(np.sum(v * c)), lambda v: 1e-316 * c,
                               np.array([0.5, 1.0, -1.5]))
    assert report.status != "FAILED", str(report)
    assert all(t.ok or t.unverified_reason for t in report.tensors), str(report)


def test_a_float32_layer_with_subnormal_weights_is_never_failed() -> None:
    """W = 1.2e-41 in float32 is subnormal: y = x W keeps 3 significant digits, so a move
    of x changes y by a few dozen spacings, not by eps |y|. check_layer bounds each
    output's rounding by its spacing there, and the engine takes that bound as it is (not
    the smaller eps |L|): the numeric derivative's 2 % noise is not read as a bug."""
    from reference_nets.layers import Dense

    layer = Dense.from_arrays(np.array([[1.1755e-41]], dtype=np.float32))
    report = gc.check_layer(layer, np.full((2, 1), 0.758366, dtype=np.float32))
    assert report.status != "FAILED", str(report)


def _tanh_layer_computed_in(dtype: type):
    """sum(tanh(x W)^2) with x and W cast to ``dtype`` inside, returned as a Python float,
    and its gradient in float64 from the same activations."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3))

    def f(v: np.ndarray) -> float:
        return float(np.sum(np.tanh(v.astype(dtype) @ w.astype(dtype)) ** 2))

    def grad(v: np.ndarray) -> np.ndarray:
        z = np.tanh(v.astype(dtype) @ w.astype(dtype)).astype(np.float64)
        return (2 * z * (1 - z ** 2)) @ w.T

    return f, grad, rng.standard_normal((4, 5))


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=lambda d: np.dtype(d).name)
def test_a_loss_computed_in_low_precision_inside_is_checked_at_that_precision(dtype) -> None:
    """Its values come back as float64 but it does not see moves finer than its dtype's
    resolution: measured (a probe of moves below and above it), said in a warning, and the
    check run again at that precision: never FAILED."""
    f, grad, x = _tanh_layer_computed_in(dtype)
    report = gc.check_function(f, grad, x)
    assert report.status != "FAILED", str(report)
    name = np.dtype(dtype).name
    assert any(f"finer than {name}'s resolution" in w for w in report.warnings), str(report)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("factor", [0.5, 0.75, 1.4, 2.0, 4.0, -1.0])
def test_a_wrong_gradient_is_never_excused_as_a_coarse_resolution(dtype, factor) -> None:
    """The probe reads a resolution off the loss's own response: a loss that moves, but
    not as its gradient says, has a wrong gradient. Whatever it concludes, a wrong gradient
    is never ok, and FAILED where the precision decides (float16's numbers, whose error
    bars are as wide as the bug, may leave it UNVERIFIED, as they leave the right one)."""
    f, grad, x = _tanh_layer_computed_in(dtype)
    report = gc.check_function(f, lambda v: factor * grad(v), x)
    assert not report.ok, str(report)
    if dtype is not np.float16:
        assert report.status == "FAILED", str(report)


class Glitching:
    """sum(sin(v) v) + (sum v)^2, plus 0.01 on 3% of the calls (a flaky cache, an unseeded
    dropout at a small rate); the base point happens to answer the same each time."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, v: np.ndarray) -> float:
        return float(np.sum(np.sin(v) * v) + np.sum(v) ** 2) + 1e-2 * (self.rng.random() < 0.03)


def test_a_loss_that_glitches_now_and_then_is_named_not_read_as_a_kink() -> None:
    """Trial 28 of a randomized search: the glitch hits the h/2 look of the one wrong
    element (off by +20), which once made it a kink settled by the hull. The engine repeats
    the look that stands out; the loss answers differently: nondeterministic."""
    x = np.random.default_rng(28).standard_normal(12)

    def wrong(v: np.ndarray) -> np.ndarray:
        d = np.sin(v) + v * np.cos(v) + 2 * np.sum(v)
        d[8] += 20.0
        return d

    report = gc.check_function(Glitching(10_028), wrong, x, seed=0)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["nondeterministic"], str(report)
    assert "answered differently" in str(report)


# ------------------------------------------------------------------ coordinates that are NaN


MASK = np.array([[1, 1, 0], [1, 0, 0]], bool)
PADDED = np.array([[0.5, -1.0, np.nan], [2.0, np.nan, np.nan]])


def _masked_square(v: np.ndarray) -> float:
    return float(np.sum(np.where(MASK, v, 0.0) ** 2))


def test_nan_coordinates_the_loss_ignores_are_unverified_not_a_loss_problem() -> None:
    """Padding stored as NaN: the loss is finite everywhere; the NaN coordinates cannot be
    moved by a finite step, so they are unverified (the report says which and what to do),
    and nothing blames the loss."""
    report = gc.check_function(_masked_square, lambda v: np.where(MASK, 2 * v, 0.0), PADDED)
    assert report.status == "UNVERIFIED" and not report.problems, str(report)
    x = report.tensors[0]
    assert x.unverified == 3 and "NaN or inf" in x.unverified_reason
    assert "x[0, 2]" in x.unverified_reason


def test_a_wrong_gradient_beside_nan_coordinates_still_fails() -> None:
    report = gc.check_function(_masked_square, lambda v: np.where(MASK, 3 * v, 0.0), PADDED)
    assert report.status == "FAILED", str(report)


# ------------------------------------------- losses whose arithmetic rounds above |L|


def _saturated_cross_entropy(z: np.ndarray) -> float:
    """-log p of class 0 from p = softmax(z) computed naively: at z = (40, 0), p rounds to
    1 in float64 and the loss to 0, though it is 4e-18."""
    p = np.exp(z - z.max()) / np.sum(np.exp(z - z.max()))
    return float(-np.log(p[0]))


def _saturated_cross_entropy_grad(z: np.ndarray) -> np.ndarray:
    p = np.exp(z - z.max()) / np.sum(np.exp(z - z.max()))
    return p - np.array([1.0, 0.0])


def test_a_loss_that_rounds_a_change_away_is_unverified_not_failed() -> None:
    """A saturated softmax: the loss stays 0 bit for bit at every step, where the (right)
    gradient 4e-18 says it moves; no evaluation shows it resolving such a change. Was
    FAILED (numeric 0 against 4e-18, with an error bar of 0)."""
    rep = gc.check_function(_saturated_cross_entropy, _saturated_cross_entropy_grad,
                            np.array([40.0, 0.0]))
    assert rep.status == "UNVERIFIED", str(rep)
    assert "bit for bit" in rep.tensors[0].unverified_reason


def test_a_leak_through_a_dead_unit_is_failed_though_the_loss_never_moves() -> None:
    """The loss stays put along the dead unit's weight, but it moves by less than the
    leaked gradient predicts along the other weight: a loss that resolves such changes, so
    the unmoved one is a wrong gradient."""
    def loss(w: np.ndarray) -> float:
        return float(3.0 * max(w[0], 0.0) + 0.01 * w[1])

    def leaky(w: np.ndarray) -> np.ndarray:
        return np.array([3.0, 0.01])  # ReLU' missing: w[0] = -1 is dead

    rep = gc.check_function(loss, leaky, np.array([-1.0, 0.5]))
    assert rep.status == "FAILED", str(rep)
    assert [m.index for m in rep.tensors[0].worst] == [(0,)]


def test_a_gradient_of_a_loss_that_never_moves_is_failed_when_no_rounding_hides_it() -> None:
    """A constant loss with gradient 1: a change of 1e-6 from 0 is no rounding of any
    intermediate near 1, though no evaluation ever moved the loss."""
    rep = gc.check_function(lambda w: 0.0, lambda w: np.ones_like(w), np.array([0.5, -2.0]))
    assert rep.status == "FAILED", str(rep)


def _rounded_square(step: float):
    """sum(w^2) rounded to multiples of ``step``: a loss that moves in steps far coarser
    than float64's at |L| (as -log p does for p near 1)."""
    def loss(w: np.ndarray) -> float:
        return float(np.round(np.sum(w**2) / step) * step)
    return loss


def test_a_loss_that_moves_in_coarse_steps_is_measured_with_them() -> None:
    """Steps of 1e-10 on a loss of about 0.9: the right gradient is never FAILED (it was:
    the steps move a central difference at the float64 step by up to 1.6e-5, 1e-4 of it
    relative). The resolution is measured (each value within half a step of 1e-10), the
    warning says so with that figure, and the steps are chosen for it: verified."""
    w = np.random.default_rng(0).standard_normal(6)
    rep = gc.check_function(_rounded_square(1e-10), lambda v: 2 * v, w)
    assert rep.status == "ok", str(rep)
    resolution = [n for n in rep.notes if n.kind == "resolution"]
    assert len(resolution) == 1 and "resolves its changes only to about" in resolution[0].text
    measured = float(resolution[0].text.split("about ")[1].split(" ")[0])
    assert 1e-11 <= measured <= 1e-10, resolution[0].text  # half a step at most, and seen


def test_a_wrong_gradient_of_a_loss_that_moves_in_coarse_steps_still_fails() -> None:
    """The steps widen the error bar by step / h, never enough to excuse a 1% bug."""
    w = np.random.default_rng(0).standard_normal(6)

    def wrong(v: np.ndarray) -> np.ndarray:
        g = 2 * v
        g[3] *= 1.01
        return g

    rep = gc.check_function(_rounded_square(1e-10), wrong, w)
    assert rep.status == "FAILED", str(rep)
    assert [m.index for m in rep.tensors[0].worst] == [(3,)]


class _ShiftedMaskReLU:
    """float32 ReLU whose backward masks with x > 2e-3 instead of x > 0."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.maximum(x, np.float32(0))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * (self.x > 2e-3)


def test_a_float32_relu_near_its_kink_is_verified_and_a_shifted_mask_is_not() -> None:
    """Inputs of 1e-3: float32's step 5e-3 reaches past the kink at h, h/2 and h/4; smaller
    steps settle the elements whose upstream gradient is small (they were UNVERIFIED). A
    mask shifted to 2e-3 drops exactly those gradients: never ok."""
    from reference_nets import layers

    x = np.array([[2.0] + [1e-3 * (1 + k / 64) for k in range(15)]], np.float32)
    assert gc.check_layer(layers.ReLU(), x).ok
    assert not gc.check_layer(_ShiftedMaskReLU(), x).ok


def test_a_float32_layer_returning_a_python_float_is_held_to_float32_rounding() -> None:
    """A float32 network whose cost head hands back float(...): the value went through
    float32, its float64 type notwithstanding. Was FAILED at a jittered point (an ulp of
    the cost, 77, read as a 0.5% error of a 0.09 gradient)."""
    import reference_nets as rn

    f32 = np.float32
    net = rn.Sequential(rn.Dense.from_arrays(np.zeros((1, 1), f32)), rn.ReLU(),
                        rn.Dense.from_arrays(np.zeros((1, 3), f32)), rn.Softmax(),
                        rn.Dense.from_arrays(-np.ones((3, 4), f32)), rn.LeakyReLU(0.1),
                        rn.QuadraticCost(np.full((2, 4), 3.0, f32)))
    rep = gc.check_layer(net, np.zeros((2, 1), f32))
    assert rep.status != "FAILED", str(rep)
    assert all(t.ok or t.unverified_reason for t in rep.tensors), str(rep)


def test_a_near_certain_softmax_is_verified_with_the_steps_its_loss_moves_in() -> None:
    """Logits (9.75, 0): -log p0 with p0 = 1 - 6e-5 moves in steps of p0's spacing, 1e-16,
    500 roundings of the loss itself; the element's mismatch sat between agreeing and
    failing (UNVERIFIED). Measured with those steps it is verified."""
    import reference_nets as rn

    rep = gc.check_layer(rn.SoftmaxCrossEntropy(np.array([0])), np.array([[9.75, 0.0]]))
    assert rep.ok, str(rep)
    assert any("moves in steps" in warning for warning in rep.warnings), str(rep)


def test_a_sum_whose_terms_round_alike_is_held_to_its_rounding_not_its_noise() -> None:
    """Dense with W = 0, b = (0, 0, 1e-3) and one input of 7e-8: every move of W leaves the
    terms g * 1e-3 of the loss as they were, so their rounding falls alike on every value
    and the second differences show no noise, while each first difference is off by an
    ulp of the sum: 3x the error bar the noise allowed (UNVERIFIED). The loss's own bound
    on its rounding is kept."""
    import reference_nets as rn

    x = np.zeros((3, 3))
    x[1, 0] = 7.20146319e-08
    layer = rn.Dense.from_arrays(np.zeros((3, 3)), np.array([0.0, 0.0, 0.001]))
    assert gc.check_layer(layer, x).ok


def test_an_element_whose_first_steps_straddle_a_kink_is_verified_below_them() -> None:
    """ReLU(w x) with w x = 1.5e-6, under a step of 6e-6: the first looks straddle the
    kink at 0 (they were read as curvature, too coarsely to vouch: UNVERIFIED, and only
    verified nearby). The ladder goes on halving the step while rounding allows: from h/8
    on the looks lie on one side of the kink, and agree there: verified at the point, no
    kink counted. A gradient twice too large is FAILED."""
    from reference_nets import relu_chain_cost, relu_chain_grad

    w = np.array([1.536265139164302e-06])

    def right() -> dict[str, np.ndarray]:
        return {"w": relu_chain_grad(w, 1.0, 0.0)}

    def doubled() -> dict[str, np.ndarray]:
        return {"w": 2 * relu_chain_grad(w, 1.0, 0.0)}

    rep = gc.check_params(lambda: relu_chain_cost(w, 1.0, 0.0), right, {"w": w})
    assert rep.ok and rep.tensors[0].kinks.met == 0 and not rep.warnings, str(rep)
    wrong = gc.check_params(lambda: relu_chain_cost(w, 1.0, 0.0), doubled, {"w": w})
    assert wrong.status == "FAILED", str(wrong)


def test_the_steps_probe_counts_each_coordinate_once() -> None:
    """Logits (-9, 2), label 1: -log p moves in steps of 1e-16. The probe drew its two
    coordinates with replacement, moved x[0, 0] once but predicted its change twice, so
    the loss never followed the prediction and no step was found (UNVERIFIED); drawn
    once each, the steps are found and the check is verified."""
    import reference_nets as rn

    rep = gc.check_layer(rn.SoftmaxCrossEntropy(np.array([1])), np.array([[-9.0, 2.0]]))
    assert rep.ok, str(rep)
    assert any("moves in steps" in warning for warning in rep.warnings), str(rep)
