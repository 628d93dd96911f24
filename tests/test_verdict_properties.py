"""Property tests of the verdicts of issue 10 (hypothesis): ties, low precision, constant
offsets, noise, drift and sensitivity, each with a correct and a wrong backward.

Properties (each test's name states one):
* ties on integer-valued inputs (max over an axis, 2x2 max-pool, top-k): a backward that gives
  a tied maximum's upstream to EVERY tied element, or to none of them, is FAILED under
  kinks="subgradient" and kinks="hull"; first / last argmax and an even split are ok;
* float16 / float32 / longdouble: a gross bug (sign-flipped bias, transposed dW, softmax
  cross-entropy without the one-hot, +0.4 on one element of dW) is never ok, and FAILED in
  float32; a correct layer is ok in float32 and float64, never FAILED in float16 or longdouble;
* a constant offset added to the loss never lets a wrong gradient through, and never makes a
  right gradient FAILED (too large to tell: UNVERIFIED, with a reason); a loss merely scaled
  (1e-30..1e30) is verified: right ok, wrong never ok;
* a loss with fresh noise at every call is never ok, named "nondeterministic", through every
  front door, with a right or a wrong gradient;
* a forward that starts changing its state during the check is never ok, named as a state
  change (or an in-place write), and never excused as a kink;
* float64, smooth and well scaled: one element off by >= 1e-6 relative is FAILED by default.

Layers come from tests/layer_bank.py (section "issue 10"). Sizes are tiny: a check costs 2 loss
evaluations per coordinate. The issue's literal examples are pinned with @example.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck as gc

import layer_bank as lb  # tests/ is on sys.path (pytest setting "pythonpath")

KINK_MODES = st.sampled_from(["subgradient", "hull"])
WRONG_TIES = ["all", "none"]  # every tied element gets the upstream; none of them does
SEEDS = st.integers(0, 2**16)


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _kinds(rep):
    return {p.kind for p in rep.problems}


def _failed(rep, name):
    return {t.name: t for t in rep.tensors}[name].status == "FAILED"


# ------------------------------------------------------------------------------ strategies


def int_valued(shape, lo=0, hi=3):
    """Integer-valued float64 arrays (pixels): ties are common."""
    return hnp.arrays(np.float64, shape, elements=st.integers(lo, hi).map(float))


@st.composite
def upstreams(draw, shape):
    """Upstream gradients with every element of magnitude in [0.5, 2]: a tie's error (the
    upstream counted more than once) is never hidden by a near-zero upstream."""
    magnitude = draw(hnp.arrays(np.float64, shape, elements=_floats(0.5, 2.0)))
    sign = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    return magnitude * sign


@st.composite
def rows_with_a_tied_max(draw):
    """(x, g): (rows, cols) integer-valued with one row whose maximum occurs at least twice,
    and an upstream for max over axis 1."""
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    x = draw(int_valued((rows, cols)))
    r = draw(st.integers(0, rows - 1))
    i, j = draw(st.lists(st.integers(0, cols - 1), min_size=2, max_size=2, unique=True))
    x[r, i] = x[r, j] = x[r].max() + draw(st.sampled_from([0.0, 1.0]))
    return x, draw(upstreams((rows, 1)))


@st.composite
def images_with_a_tied_window(draw):
    """(N, C, H, W) integer-valued pixels, H and W in {2, 4}, one 2x2 window whose maximum
    occurs at least twice."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.sampled_from([2, 4])), draw(st.sampled_from([2, 4]))
    x = draw(int_valued((n, c, h, w), 0, 2))
    ni, ci = draw(st.integers(0, n - 1)), draw(st.integers(0, c - 1))
    i, j = 2 * draw(st.integers(0, h // 2 - 1)), 2 * draw(st.integers(0, w // 2 - 1))
    window = x[ni, ci, i:i + 2, j:j + 2]  # a view: writes go to x
    a, b = draw(st.lists(st.integers(0, 3), min_size=2, max_size=2, unique=True))
    top = window.max()
    window.flat[a] = window.flat[b] = top
    return x, draw(upstreams((n, c, h // 2, w // 2)))


@st.composite
def rows_tied_at_the_kth_place(draw):
    """(x, k, g): integer-valued rows, one of which has more entries >= its k-th largest than k
    (a tie straddling the k-th place, the only tie at which (x >= kth) * g is wrong)."""
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(3, 6))
    k = draw(st.integers(1, cols - 1))
    x = draw(int_valued((rows, cols)))
    r = draw(st.integers(0, rows - 1))
    order = np.argsort(-x[r], kind="stable")
    x[r, order[k]] = x[r, order[k - 1]]
    assert lb.top_k_boundary_tied(x, k)
    return x, k, draw(upstreams((rows, 1)))


TIE_DTYPES = st.sampled_from([np.float64, np.float32, np.float16])  # pixels are exact in all


def _assert_tie_bug_caught(rep, dtype, what):
    """FAILED on the input; in float16 (the widest error bar) at least never ok."""
    note(str(rep))
    if dtype is np.float16:
        assert not rep.ok, f"{what} let through in float16:\n{rep}"
        return
    assert rep.status == "FAILED", f"{what} let through:\n{rep}"
    assert _failed(rep, "x"), str(rep)


def _assert_tie_convention_passes(rep, dtype, what):
    """ok; in float16 at least never FAILED."""
    note(str(rep))
    if dtype is np.float16:
        assert rep.status != "FAILED", f"false alarm on {what} in float16:\n{rep}"
    else:
        assert rep.ok, f"false alarm on {what}:\n{rep}"


ISSUE_MAX = (lb.ISSUE_MAX_X, lb.ISSUE_MAX_UPSTREAM)
# found by hypothesis: two rows tied at the same value with opposite upstreams; moving every
# element of that value together cancels the rows' errors, moving one row's tie does not
OPPOSITE_ROWS = (np.zeros((2, 2)), np.array([[-1.0], [1.0]]))


@pytest.mark.parametrize("wrong", WRONG_TIES)
@given(xg=rows_with_a_tied_max(), kinks=KINK_MODES, dtype=TIE_DTYPES)
@example(xg=ISSUE_MAX, kinks="subgradient", dtype=np.float64)
@example(xg=ISSUE_MAX, kinks="hull", dtype=np.float64)
@example(xg=ISSUE_MAX, kinks="subgradient", dtype=np.float16)
@example(xg=OPPOSITE_ROWS, kinks="subgradient", dtype=np.float64)
@example(xg=OPPOSITE_ROWS, kinks="hull", dtype=np.float32)
def test_tied_max_counted_twice_or_dropped_never_passes(wrong, xg, kinks, dtype):
    """Property: max over axis 1 whose backward gives the upstream to every tied maximum
    ((x == max) * g), or to none of them, is FAILED on the input, under both kink modes, in
    float64 and float32, and never ok in float16."""
    x, g = xg
    rep = gc.check_layer(lb.MaxAll(wrong), x.astype(dtype), upstream=g, kinks=kinks)
    _assert_tie_bug_caught(rep, dtype, f"tie {wrong!r}")


@given(xg=rows_with_a_tied_max(), kinks=KINK_MODES, tie=st.sampled_from(["first", "last", "split"]),
       dtype=TIE_DTYPES)
@example(xg=ISSUE_MAX, kinks="hull", tie="first", dtype=np.float64)
@example(xg=ISSUE_MAX, kinks="subgradient", tie="split", dtype=np.float64)
@example(xg=OPPOSITE_ROWS, kinks="hull", tie="last", dtype=np.float64)
def test_tied_max_with_a_valid_convention_passes(xg, kinks, tie, dtype):
    """Property: max over axis 1 routing a tie to the first or last maximum, or splitting it
    evenly, is ok under both kink modes (float64, float32; never FAILED in float16)."""
    x, g = xg
    rep = gc.check_layer(lb.MaxAll(tie), x.astype(dtype), upstream=g, kinks=kinks)
    _assert_tie_convention_passes(rep, dtype, f"tie convention {tie!r}")


@pytest.mark.parametrize("wrong", WRONG_TIES)
@given(xg=images_with_a_tied_window(), kinks=KINK_MODES, dtype=TIE_DTYPES)
# a black image: both windows tied, their upstreams cancel along the whole tie
@example(xg=(np.zeros((1, 1, 2, 4)), np.array([[[[-1.0, 1.0]]]])), kinks="subgradient",
         dtype=np.float64)
def test_maxpool_window_eq_max_counted_twice_or_dropped_never_passes(wrong, xg, kinks, dtype):
    """Property: the public 2x2 max-pool backward (window == window.max()) * dout, or one that
    routes nothing from a tied window, on pixels with a tied window, is FAILED on the input,
    under both kink modes, in float64 and float32, and never ok in float16."""
    x, g = xg
    rep = gc.check_layer(lb.MaxPool2x2(wrong), x.astype(dtype), upstream=g, kinks=kinks)
    _assert_tie_bug_caught(rep, dtype, f"max-pool tie {wrong!r}")


@given(xg=images_with_a_tied_window(), kinks=KINK_MODES,
       tie=st.sampled_from(["first", "last", "split"]), dtype=TIE_DTYPES)
def test_maxpool_with_a_valid_tie_convention_passes(xg, kinks, tie, dtype):
    """Property: 2x2 max-pool routing each window's tie to one maximum, or splitting it
    evenly, is ok under both kink modes (float64, float32; never FAILED in float16)."""
    x, g = xg
    rep = gc.check_layer(lb.MaxPool2x2(tie), x.astype(dtype), upstream=g, kinks=kinks)
    _assert_tie_convention_passes(rep, dtype, f"max-pool ties routed {tie!r}")


TOPK_ISSUE = (np.array([[3.0, 1.0, 2.0, 2.0, 0.0]]), 2, np.ones((1, 1)))
TOPK_OPPOSITE_ROWS = (np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]), 1,
                      np.array([[-1.0], [1.0]]))


@pytest.mark.parametrize("wrong", WRONG_TIES)
@given(xkg=rows_tied_at_the_kth_place(), kinks=KINK_MODES, dtype=TIE_DTYPES)
@example(xkg=TOPK_ISSUE, kinks="subgradient", dtype=np.float64)
@example(xkg=TOPK_ISSUE, kinks="hull", dtype=np.float64)
@example(xkg=TOPK_OPPOSITE_ROWS, kinks="subgradient", dtype=np.float64)
def test_topk_with_a_tie_at_the_kth_place_counted_for_all_or_none_never_passes(wrong, xkg,
                                                                              kinks, dtype):
    """Property: the sum of the top k with backward (x >= kth) * g, or one giving nothing to
    the entries tied for the k-th place, where more than k entries reach the k-th largest
    value, is FAILED on the input, under both kink modes, in float64 and float32, and never
    ok in float16."""
    x, k, g = xkg
    rep = gc.check_layer(lb.TopKSum(k, wrong), x.astype(dtype), upstream=g, kinks=kinks)
    _assert_tie_bug_caught(rep, dtype, f"top-k boundary tie {wrong!r}")


@given(xkg=rows_tied_at_the_kth_place(), kinks=KINK_MODES, tie=st.sampled_from(["first", "split"]),
       dtype=TIE_DTYPES)
@example(xkg=TOPK_ISSUE, kinks="hull", tie="split", dtype=np.float64)
@example(xkg=TOPK_OPPOSITE_ROWS, kinks="subgradient", tie="first", dtype=np.float64)
def test_topk_with_the_kth_place_shared_validly_passes(xkg, kinks, tie, dtype):
    """Property: the sum of the top k giving the places left at the k-th value to the first
    tied entries, or sharing them evenly, is ok under both kink modes (float64, float32;
    never FAILED in float16)."""
    x, k, g = xkg
    rep = gc.check_layer(lb.TopKSum(k, tie), x.astype(dtype), upstream=g, kinks=kinks)
    _assert_tie_convention_passes(rep, dtype, f"top-k k-th place shared {tie!r}")


# ------------------------------------------------------------------------------ dtypes

LOW = st.sampled_from([np.float16, np.float32, np.longdouble])


@given(name=st.sampled_from(sorted(lb.LOW_PRECISION_MUTANTS)), dtype=LOW, seed=SEEDS)
@example(name="dense_bias_sign_flipped", dtype=np.float16, seed=0)
@example(name="dense_dW_transposed_square", dtype=np.float16, seed=0)
@example(name="softmax_ce_without_one_hot", dtype=np.float16, seed=0)
@example(name="dense_dW_one_element_plus_0p4", dtype=np.float16, seed=0)
@example(name="dense_dW_one_element_plus_0p4", dtype=np.float16, seed=20)  # 7% of |n|
@example(name="dense_dW_one_element_plus_0p4", dtype=np.float16, seed=84)  # 5% of |n|
@example(name="softmax_ce_without_one_hot", dtype=np.float16, seed=7)  # scalar upstream 0.0012
@example(name="dense_dW_one_element_plus_0p4", dtype=np.float16, seed=1400)  # fine at h/4 only
def test_low_precision_wrong_gradient_is_never_ok(name, dtype, seed):
    """Property: a gross bug in a float16, float32 or longdouble layer is never ok, on any
    seed; in float32 (whose error bar is far below these errors) it is FAILED."""
    rep = gc.check_layer(*lb.LOW_PRECISION_MUTANTS[name](dtype, seed), seed=seed)
    note(str(rep))
    assert not rep.ok, f"{name} let through in {np.dtype(dtype).name}:\n{rep}"
    assert rep.status in ("FAILED", "UNVERIFIED"), rep.status
    if dtype is np.float32:
        assert rep.status == "FAILED", str(rep)
        assert any(_failed(rep, t) for t in lb.LOW_PRECISION_BAD[name]), str(rep)


@given(name=st.sampled_from(sorted(lb.LOW_PRECISION_CORRECT)),
       dtype=st.sampled_from([np.float16, np.float32, np.float64, np.longdouble]), seed=SEEDS)
@example(name="correct_dense_softmax_ce", dtype=np.float32, seed=3)
def test_correct_layer_is_ok_in_float32_and_float64_and_never_failed_in_float16(name, dtype,
                                                                                 seed):
    """Property: a correct layer is ok in float32 and float64; in float16 and longdouble it
    may be UNVERIFIED (with a reason) but is never FAILED."""
    rep = gc.check_layer(*lb.LOW_PRECISION_CORRECT[name](dtype, seed), seed=seed)
    note(str(rep))
    assert not rep.problems, str(rep)
    if dtype in (np.float32, np.float64):
        assert rep.ok, f"false alarm on {name} in {np.dtype(dtype).name}:\n{rep}"
    else:
        assert rep.status != "FAILED", f"false alarm on {name} in {np.dtype(dtype).name}:\n{rep}"
        for t in rep.tensors:
            assert t.status != "UNVERIFIED" or t.unverified_reason, str(rep)


# ------------------------------------------------------------------------------ offsets

SMOOTH_FUNCTIONS = {
    "sum_squares": (lambda v: np.sum(v**2), lambda v: 2 * v),
    "x_sin_x": (lambda v: np.sum(v * np.sin(v)), lambda v: np.sin(v) + v * np.cos(v)),
    "exp_half": (lambda v: np.sum(np.exp(v / 2)), lambda v: np.exp(v / 2) / 2),
}
OFFSETS = st.sampled_from([0.0, 1e6, 1e8, 1e10, 1e12, 1e14, 1e16, 1e20]) | st.builds(
    lambda m, e: m * 10.0**e, _floats(1.0, 9.99), st.integers(6, 22))
POINTS = hnp.arrays(np.float64, st.integers(1, 4), elements=_floats(-2.0, 2.0))


@given(fn=st.sampled_from(sorted(SMOOTH_FUNCTIONS)), offset=OFFSETS, x=POINTS,
       where=st.integers(0, 3), shift=_floats(0.5, 4.0), sign=st.sampled_from([-1.0, 1.0]))
@example(fn="sum_squares", offset=1e12, x=np.ones(4), where=0, shift=4.0, sign=1.0)
@example(fn="sum_squares", offset=1e20, x=np.ones(4), where=0, shift=4.0, sign=1.0)
def test_constant_offset_never_lets_a_wrong_gradient_pass(fn, offset, x, where, shift, sign):
    """Property: offset + f(x) with one gradient element moved by 0.5..4 is never ok, however
    large the offset (at 1e20 the loss does not even see the step)."""
    f, grad = SMOOTH_FUNCTIONS[fn]
    j = where % x.size

    def wrong(v):
        out = np.array(grad(v), dtype=np.float64)
        out[j] += sign * shift
        return out

    rep = gc.check_function(lambda v: offset + float(f(v)), wrong, x)
    note(str(rep))
    assert not rep.ok, f"wrong gradient let through at offset {offset:g}:\n{rep}"


@given(fn=st.sampled_from(sorted(SMOOTH_FUNCTIONS)), offset=OFFSETS, x=POINTS)
@example(fn="sum_squares", offset=1e12, x=np.ones(4))
def test_constant_offset_never_fails_a_right_gradient(fn, offset, x):
    """Property: offset + f(x) with the right gradient is never FAILED: where the offset
    makes the error bar too wide it is UNVERIFIED with a reason, otherwise ok."""
    f, grad = SMOOTH_FUNCTIONS[fn]
    rep = gc.check_function(lambda v: offset + float(f(v)), grad, x)
    note(str(rep))
    assert rep.status != "FAILED", f"false alarm at offset {offset:g}:\n{rep}"
    for t in rep.tensors:
        assert t.status != "UNVERIFIED" or t.unverified_reason, str(rep)


@given(fn=st.sampled_from(sorted(SMOOTH_FUNCTIONS)), exponent=st.integers(-30, 30), x=POINTS,
       where=st.integers(0, 3), shift=_floats(0.5, 4.0), sign=st.sampled_from([-1.0, 1.0]))
@example(fn="x_sin_x", exponent=-12, x=np.linspace(-1.0, 2.0, 4), where=0, shift=2.0, sign=1.0)
def test_loss_scale_never_lets_a_wrong_gradient_pass_nor_fails_a_right_one(fn, exponent, x, where,
                                                                          shift, sign):
    """Property: scale * f(x) for scale 1e-30..1e30 (no offset: float64 is as precise relative
    to the loss at any of these scales): the right gradient is ok, and one element moved by
    0.5..4 times the scale is never ok, however small the numbers."""
    f, grad = SMOOTH_FUNCTIONS[fn]
    scale = 10.0**exponent
    j = where % x.size

    def right(v):
        return scale * np.asarray(grad(v), dtype=np.float64)

    def wrong(v):
        out = right(v)
        out[j] += sign * shift * scale
        return out

    def loss(v):
        return scale * float(f(v))

    rep = gc.check_function(loss, wrong, x)
    note(str(rep))
    assert not rep.ok, f"wrong gradient let through at scale {scale:g}:\n{rep}"
    rep = gc.check_function(loss, right, x)
    note(str(rep))
    assert rep.ok, f"right gradient not ok at scale {scale:g}:\n{rep}"


# ------------------------------------------------------------------------------ noise

NOISE = st.sampled_from([1e-8, 1e-6, 1e-4, 1e-2, 1.0])
FRONT_DOORS = st.sampled_from(["check_params", "check_function", "check_layer"])


def _noisy_check(door, sigma, factor, noise_seed):
    """sum(w**2) (or a Dense layer) plus fresh noise of size sigma at every evaluation."""
    rng = np.random.default_rng(noise_seed)
    if door == "check_params":
        p = {"w": np.ones(8)}
        return gc.check_params(lambda: float(np.sum(p["w"] ** 2)) + sigma * rng.standard_normal(),
                               lambda: {"w": factor * p["w"]}, p)
    if door == "check_function":
        return gc.check_function(lambda v: float(np.sum(v**2)) + sigma * rng.standard_normal(),
                                 lambda v: factor * v, np.linspace(-1.0, 1.0, 5))
    layer = lb.NoisyDense(3, 2, seed=1, sigma=sigma, noise_seed=noise_seed)
    if factor != 2.0:
        layer = lb.OneElementOff(layer, "W", factor - 1.0)
    return gc.check_layer(layer, lb.sample((3, 3), 520))


@given(door=FRONT_DOORS, sigma=NOISE, factor=st.sampled_from([2.0, 6.0]), noise_seed=SEEDS)
@example(door="check_params", sigma=1e-2, factor=6.0, noise_seed=11)
@example(door="check_params", sigma=1e-2, factor=2.0, noise_seed=11)
def test_noisy_loss_is_never_ok_and_named_nondeterministic(door, sigma, factor, noise_seed):
    """Property: a loss with fresh noise at every evaluation is not ok and is named
    "nondeterministic" through check_params, check_function and check_layer alike, with the
    right gradient (factor 2 for sum(w**2)) or a wrong one."""
    rep = _noisy_check(door, sigma, factor, noise_seed)
    note(str(rep))
    assert not rep.ok and rep.status == "FAILED", f"noise let through ({door}):\n{rep}"
    assert "nondeterministic" in _kinds(rep), str(rep)


# ------------------------------------------------------------------------------ drift


@given(after=st.integers(3, 15), step=st.sampled_from([1e-6, 1e-3, 1e-1]),
       wrong_db=st.booleans(), kinks=KINK_MODES)
@example(after=3, step=1e-3, wrong_db=True, kinks="subgradient")
@example(after=3, step=1e-3, wrong_db=True, kinks="hull")
def test_param_moved_in_place_during_the_check_never_passes_nor_counts_as_a_kink(
        after, step, wrong_db, kinks):
    """Property: a forward that, from call after + 1 on, increments one of its params in
    place is never ok, is named as a state change or an in-place write, and no coordinate is
    excused as a kink; the param is restored."""
    layer = lb.DriftingDense(3, 2, seed=2, after=after, step=step, wrong_db=wrong_db)
    before = layer.params["b"].copy()
    rep = gc.check_layer(layer, lb.sample((3, 3), 521), kinks=kinks)
    note(str(rep))
    assert not rep.ok and rep.status == "FAILED", str(rep)
    assert _kinds(rep) & {"state_changed", "in_place"}, str(rep)
    assert sum(t.kinks.by_hull + t.kinks.by_jitter for t in rep.tensors) == 0, str(rep)
    assert layer.params["b"].tobytes() == before.tobytes()


@given(after=st.integers(5, 30), step=st.sampled_from([1e-6, 1e-3, 1e-1]),
       wrong_db=st.booleans(), kinks=KINK_MODES)
def test_hidden_state_drifting_during_the_scan_never_passes_nor_counts_as_a_kink(
        after, step, wrong_db, kinks):
    """Property: state outside the params (an output scale growing from call after + 1 on,
    within the scan) is never ok, is named as a state change, and no coordinate is excused
    as a kink."""
    layer = lb.HiddenDriftDense(3, 2, seed=3, after=after, step=step, wrong_db=wrong_db)
    rep = gc.check_layer(layer, lb.sample((3, 3), 522), kinks=kinks)
    note(str(rep))
    assert not rep.ok and rep.status == "FAILED", str(rep)
    assert _kinds(rep) & {"state_changed", "nondeterministic"}, str(rep)
    assert sum(t.kinks.by_hull + t.kinks.by_jitter for t in rep.tensors) == 0, str(rep)


# ------------------------------------------------------------------------------ sensitivity

SMOOTH_LAYERS = {
    "batchnorm": (lb.batchnorm_case, ("x", "gamma", "beta")),
    "dense_tanh": (lb.dense_tanh_case, ("x", "W1", "b1")),
}


@given(which=st.sampled_from(sorted(SMOOTH_LAYERS)), seed=st.integers(0, 2**10),
       target_pick=st.integers(0, 2), rel=_floats(1e-6, 1e-3), sign=st.sampled_from([-1.0, 1.0]))
@example(which="batchnorm", seed=0, target_pick=0, rel=1e-6, sign=1.0)
@example(which="dense_tanh", seed=2, target_pick=1, rel=1e-6, sign=1.0)
def test_float64_smooth_layer_with_one_element_off_by_a_millionth_is_failed(
        which, seed, target_pick, rel, sign):
    """Property: in float64, a smooth well-scaled layer (batch norm, Dense + tanh) whose
    largest gradient element in one tensor is off by >= 1e-6 relative is FAILED by default,
    on that tensor."""
    make, targets = SMOOTH_LAYERS[which]
    target = targets[target_pick]
    layer, x = make(seed)
    rep = gc.check_layer(lb.OneElementOff(layer, target, sign * rel), x, seed=seed)
    note(str(rep))
    assert rep.status == "FAILED", f"{target} off by {sign * rel:.1e} let through:\n{rep}"
    assert _failed(rep, target), str(rep)


@given(which=st.sampled_from(sorted(SMOOTH_LAYERS)), seed=st.integers(0, 2**10))
def test_float64_smooth_layer_correct_is_ok_at_the_tight_default(which, seed):
    """Property: the same layers with their correct backward are ok by default."""
    make, _ = SMOOTH_LAYERS[which]
    rep = gc.check_layer(*make(seed), seed=seed)
    note(str(rep))
    assert rep.ok, f"false alarm on correct {which}:\n{rep}"
