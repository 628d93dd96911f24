"""Property suite of the diagnosis: every kind found where it was injected, none claimed falsely.

* Patterns injected into random arrays (hand-built reports: cheap, so hypothesis runs many)
  and into random layers through the engine: the injected kind is found, on that tensor.
* Random corruptions (noise on many elements, random values) get none of the strong kinds.
* The banks of tests/layer_bank.py: a correct layer (the kink bank) gets no diagnosis; in the
  mutant bank every diagnosis is on a tensor the bug reaches, and where the bank's bug is one
  of the named kinds, that kind is the one found.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_diagnosis import holds, report, tensor

import gradcheck as gc
from gradcheck.diagnosis import diagnose, kinds

from layer_bank import (
    KINK_CASES,
    MUTANTS,
    TIE_BUGS,
    TIE_CONVENTIONS,
    Dense,
    ReLU,
    SoftmaxCrossEntropy,
    as_params,
)

STRONG = {"sign", "scale", "transpose", "reversed", "shifted", "missing_mask", "inverted_mask",
          "offset", "value_term", "one_index", "swapped", "zero", "slice", "tie_counted",
          "tie_dropped", "repeated_index", "recurrence", "block_member", "diagonal_only",
          "mode_mismatch", "epsilon"}
# kinds that describe the whole tensor, and where its wrong elements lie: never read off
# fast mode's located elements
WHOLE_TENSOR = STRONG - {"tie_counted", "tie_dropped"} | {"location"}

seeds = st.integers(0, 2**32 - 1)
sides = st.integers(2, 7)


def _normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal, kept away from 0 so every element is clearly nonzero."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape)
    return np.where(z >= 0, z + 0.1, z - 0.1)


# --------------------------------------------------------------------------- injected patterns


@given(seeds, sides, sides, st.sampled_from([-1.0, 2.0, 0.5, "batch", "1/batch", 1.5, -0.3]))
def test_sign_and_scale_are_found(seed: int, rows: int, cols: int, factor: Any) -> None:
    n = _normal(seed, (rows, cols))
    c = {"batch": float(rows), "1/batch": 1.0 / rows}.get(factor, factor)
    x = _normal(seed + 1, (rows, 3))
    found = diagnose(report(tensor("x", x, x, value=x), tensor("W", c * n, n),
                            output_shape=(rows, cols)))
    assert kinds(found) == {"W": "sign" if c == -1 else "scale"}
    assert found[0].factor == pytest.approx(c, rel=1e-6)
    if factor in ("batch", "1/batch") and rows != 2:
        assert f"{rows} is the batch size (axis 0 of x)" in found[0].text


@given(seeds, st.integers(2, 8))
def test_transpose_is_found(seed: int, size: int) -> None:
    n = _normal(seed, (size, size))
    assert kinds(diagnose(report(tensor("W", n.T, n), input_name=None))) == {"W": "transpose"}


@given(seeds, sides, sides, st.sampled_from([0, 1, "all"]))
def test_reversal_is_found(seed: int, rows: int, cols: int, axis: Any) -> None:
    n = _normal(seed, (rows, cols))
    flipped = np.flip(n, None if axis == "all" else axis)
    found = diagnose(report(tensor("w", flipped, n), input_name=None))
    if rows == cols and axis == "all" and np.allclose(flipped, n.T):
        return  # unreachable for continuous draws; kept as the reason "transpose" could win
    assert kinds(found) == {"w": "reversed"}


@given(seeds, sides, sides, st.sampled_from([-0.01, 0.5, -3.0]))
def test_a_term_in_the_value_is_found(seed: int, rows: int, cols: int, c: float) -> None:
    n = _normal(seed, (rows, cols))
    value = _normal(seed + 1, (rows, cols))
    found = diagnose(report(tensor("W", n + c * value, n, value=value), input_name=None))
    assert kinds(found) == {"W": "value_term"}
    assert found[0].factor == pytest.approx(c, rel=1e-4)


@given(seeds, st.integers(3, 7), st.integers(3, 7), st.sampled_from([0, 1]),
       st.sampled_from([1, -1]), st.sampled_from(["wraps around", "is 0", "holds other values"]))
def test_an_index_off_by_one_is_found(seed: int, rows: int, cols: int, axis: int, shift: int,
                                      edge: str) -> None:
    n = _normal(seed, (rows, cols))
    a = np.roll(n, shift, axis)
    left_over = np.moveaxis(a, axis, 0)[0 if shift == 1 else -1]  # a view into a
    if edge == "is 0":
        left_over[...] = 0.0
    elif edge == "holds other values":
        left_over[...] = _normal(seed + 1, left_over.shape)
    found = diagnose(report(tensor("w", a, n), input_name=None))
    if edge == "holds other values" and n.shape[axis] < 4:
        assert kinds(found).get("w") != "shifted"  # a third of w unexplained: too much
        return
    assert kinds(found) == {"w": "shifted"}
    assert found[0].where == f"axis {axis}, by {shift:+d}"
    assert edge in found[0].text


@given(seeds, sides, sides, st.sampled_from([0, 1]))
def test_an_error_along_one_index_is_found(seed: int, rows: int, cols: int, axis: int) -> None:
    n = _normal(seed, (rows, cols))
    per_index = _normal(seed + 1, (n.shape[axis],))
    a = n + np.expand_dims(per_index, 1 - axis)
    found = diagnose(report(tensor("w", a, n), input_name=None))
    if np.ptp(per_index) < 1e-3:
        # nearly one constant: neither an offset (not exactly one) nor told apart from one
        assert kinds(found).get("w") in {None, "one_index", "offset"}
        return
    if n.shape[axis] == 2 and n.shape[1 - axis] == 2:
        assert kinds(found)["w"] in {"one_index", "value_term", "offset"}
        return
    assert kinds(found) == {"w": "one_index"}


@given(seeds, sides, sides)
def test_missing_mask_is_found_with_its_condition(seed: int, rows: int, cols: int) -> None:
    x = _normal(seed, (rows, cols))
    g = _normal(seed + 1, (rows, cols))
    assume((x < 0).any() and (x > 0).any())
    found = diagnose(report(tensor("x", g, g * (x > 0), value=x)))
    if int((x < 0).sum()) == 1:  # one masked element: isolated says the same
        assert kinds(found)["x"] in {"missing_mask", "isolated"}
        return
    assert kinds(found) == {"x": "missing_mask"}
    assert found[0].where == "x < 0"


@given(seeds, sides, sides, st.floats(0.5, 2.0))
def test_a_missing_upper_mask_is_found_exactly(seed: int, rows: int, cols: int,
                                               top: float) -> None:
    x = 2 * _normal(seed, (rows, cols))
    g = _normal(seed + 1, (rows, cols))
    clipped = x > top
    assume(int(clipped.sum()) >= 3)  # fewer cannot be singled out by a threshold
    found = diagnose(report(tensor("x", g * (x > 0), g * (x > 0) * (x < top), value=x)))
    if clipped.all():  # no element on the other side: the condition separates nothing
        assert kinds(found).get("x") != "missing_mask"
        return
    assert kinds(found) == {"x": "missing_mask"}
    assert found[0].where is not None and np.array_equal(holds(found[0].where, x), clipped)


@given(seeds, st.integers(2, 6), st.sampled_from([3, 4]), st.booleans())
def test_a_named_routing_condition_holds_exactly(seed: int, windows: int, width: int,
                                                 to_argmin: bool) -> None:
    x = _normal(seed, (windows, width))
    g = 2.0 + np.random.default_rng([seed, 3]).random((windows, 1))
    argmax = x == x.max(axis=1, keepdims=True)
    routed = x == x.min(axis=1, keepdims=True) if to_argmin else ~argmax
    found = diagnose(report(tensor("x", g * routed, g * argmax, value=x)))
    assert kinds(found) == {"x": "inverted_mask"}
    if found[0].where is not None:
        assert np.array_equal(holds(found[0].where, x), routed), found[0].text


@given(seeds, st.integers(3, 7), st.integers(3, 7), st.sampled_from([0, 1]),
       st.sampled_from([0.0, -1.0, 2.0, 0.37]))
def test_one_wrong_slice_is_found(seed: int, rows: int, cols: int, axis: int,
                                  factor: float) -> None:
    n = _normal(seed, (rows, cols))
    index = seed % n.shape[axis]
    a = n.copy()
    np.moveaxis(a, axis, 0)[index] *= factor
    found = diagnose(report(tensor("w", a, n), input_name=None))
    assert kinds(found) == {"w": "slice"}
    assert found[0].where == f"{('row', 'column')[axis]} {index}"
    assert found[0].factor == pytest.approx(factor, abs=1e-9)


@given(seeds, st.integers(8, 20), st.integers(8, 20), st.integers(2, 40),
       st.sampled_from(["one row", "everywhere", "random"]),
       st.sampled_from([-1.0, 0.0, 0.125, "noise"]), st.booleans())
def test_fast_mode_claims_no_whole_tensor_kind(seed: int, rows: int, cols: int, located: int,
                                               region: str, mistake: Any,
                                               stopped: bool) -> None:
    rng = np.random.default_rng([seed, 5])
    n = _normal(seed, (rows, cols))
    wrong = {"one row": np.arange(n.size) < cols, "everywhere": np.ones(n.size, dtype=bool),
             "random": rng.random(n.size) < 0.3}[region].reshape(n.shape)
    bad = n + rng.standard_normal(n.shape) if mistake == "noise" else mistake * n
    a = np.where(wrong, bad, n)
    measured = np.zeros(n.size, dtype=bool)
    measured[:min(located, n.size - 1)] = True  # the first ones, as depth-first search finds
    found = diagnose(report(tensor("W", a, n, mode="fast", measured=measured.reshape(n.shape),
                                   lower_bound=stopped), input_name=None))
    assert not set(kinds(found).values()) & WHOLE_TENSOR, found
    for d in found:
        assert d.factor is None


@given(seeds, st.integers(2, 9), st.integers(2, 6))
def test_one_hot_offset_is_found(seed: int, batch: int, classes: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, classes))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    targets = rng.integers(0, classes, batch)
    g = rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0])
    found = diagnose(report(tensor("x", g * p / batch, g * (p - np.eye(classes)[targets]) / batch,
                                   value=z)))
    assert kinds(found) == {"x": "offset"}
    assert found[0].elements == [(i, int(t)) for i, t in enumerate(targets)]
    assert found[0].constant == pytest.approx(g / batch, rel=1e-6)


@given(seeds, sides, sides)
def test_swapped_is_found(seed: int, rows: int, cols: int) -> None:
    a, b = _normal(seed, (rows, cols)), _normal(seed + 1, (rows, cols))
    found = kinds(diagnose(report(tensor("x", b, a), tensor("W", a, b))))
    assert found == {"x": "swapped", "W": "swapped"}


@given(seeds, st.integers(5, 12), st.integers(5, 12), st.integers(1, 3))
def test_isolated_elements_are_listed(seed: int, rows: int, cols: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n = _normal(seed, (rows, cols))
    flat = np.sort(rng.choice(rows * cols, k, replace=False))
    a = n.copy()
    a.flat[flat] += rng.choice([-1.0, 1.0], k) * rng.uniform(0.01, 1.0, k)
    found = diagnose(report(tensor("W", a, n), input_name=None))
    assert kinds(found) == {"W": "isolated"}
    assert found[0].elements == [tuple(int(i) for i in np.unravel_index(f, (rows, cols)))
                                 for f in flat]


@given(seeds, sides, sides,
       st.sampled_from(["noise", "random", "half_noise", "shuffled", "row_noise"]))
def test_random_corruptions_get_no_strong_kind(seed: int, rows: int, cols: int,
                                               corruption: str) -> None:
    rng = np.random.default_rng([seed, 7])  # not n's own draws: n + 0.1 n is a scale
    n = _normal(seed, (rows, cols))
    if corruption == "noise":
        a = n + 0.1 * rng.standard_normal(n.shape)
    elif corruption == "random":
        a = rng.standard_normal(n.shape)
    elif corruption == "half_noise":
        a = n + (rng.random(n.shape) < 0.5) * rng.standard_normal(n.shape)
    elif corruption == "row_noise":
        a = n.copy()
        a[seed % rows] += rng.standard_normal(cols)
    else:
        a = rng.permutation(n.reshape(-1)).reshape(n.shape)
        structured = [np.flip(n, 0), np.flip(n, 1), np.flip(n)] + ([n.T] if rows == cols else [])
        structured += [np.roll(n, s, axis) for s in (1, -1) for axis in (0, 1)]
        if any(np.array_equal(a, s) for s in structured):
            return  # a permutation that is a transpose or a reversal: then that kind is right
    x = _normal(seed + 1, (rows, cols))
    u = _normal(seed + 2, (rows, cols))
    found = kinds(diagnose(report(tensor("x", a, n, value=x), tensor("W", u, u))))
    assert not set(found.values()) & STRONG, found


# --------------------------------------------------------------------------- through the engine


class _Mutant(Dense):
    """Dense whose backward applies ``mistake`` to dx or dW."""

    def __init__(self, n_in: int, n_out: int, seed: int, mistake: str) -> None:
        super().__init__(n_in, n_out, seed=seed)
        self.mistake = mistake

    def backward(self, g: np.ndarray) -> np.ndarray:
        dx = super().backward(g)
        dW = self.grads["W"]
        if self.mistake == "sign":
            dW = -dW
        elif self.mistake == "mean":
            dW = dW / len(g)
        elif self.mistake == "transpose":
            dW = g.T @ self.x
        elif self.mistake == "swap":
            dx, dW = dW, dx
        elif self.mistake == "one":
            dW = dW.copy()
            dW.flat[len(g) % dW.size] += 0.05 * np.abs(dW).max() + 0.01
        elif self.mistake == "noise":
            dW = dW + np.random.default_rng([len(g), 99]).standard_normal(dW.shape)
        elif self.mistake == "random":
            dW = np.random.default_rng([len(g), 99]).standard_normal(dW.shape)
        self.grads["W"] = dW
        return dx


EXPECTED = {"sign": {"W": "sign"}, "mean": {"W": "scale"}, "transpose": {"W": "transpose"},
            "swap": {"x": "swapped", "W": "swapped"}, "one": {"W": "isolated"}}


@given(seeds, st.integers(2, 5), st.integers(3, 6),
       st.sampled_from([*EXPECTED, "noise", "random"]))
def test_mistakes_injected_into_random_dense_layers(seed: int, n: int, batch: int,
                                                    mistake: str) -> None:
    square = mistake in ("transpose", "swap")
    n_out = n if square else n + 1
    if mistake == "swap":
        batch = n  # x and W both (n, n)
    if mistake == "one":
        n, n_out = n + 3, n_out + 3  # enough elements that one is "a few"
    x = np.random.default_rng([seed, 1]).standard_normal((batch, n))  # not the upstream's draws
    rep = gc.check_layer(_Mutant(n, n_out, seed, mistake), x)
    found = kinds(rep.diagnoses)
    if mistake in EXPECTED:
        assert found == EXPECTED[mistake], str(rep)
    else:
        assert not set(found.values()) & STRONG, str(rep)


class _ReLUNoMask(ReLU):
    def backward(self, g: np.ndarray) -> np.ndarray:
        return g


@given(seeds, sides, sides)
def test_missing_relu_mask_in_random_inputs(seed: int, rows: int, cols: int) -> None:
    x = np.random.default_rng([seed, 1]).standard_normal((rows, cols))
    if int((x < 0).sum()) < 2:
        return
    rep = gc.check_layer(_ReLUNoMask(), x)
    if not (x > 0).any():  # every element masked: no right one shows a mask, nor "x < 0"
        assert kinds(rep.diagnoses).get("x") != "missing_mask", str(rep)
        return
    assert kinds(rep.diagnoses) == {"x": "missing_mask"}, str(rep)
    assert rep.diagnoses[0].where == "x < 0"


class _NoOneHot(SoftmaxCrossEntropy):
    def backward(self, g: Any) -> np.ndarray:
        return g * self.p / len(self.t)


@given(seeds, st.integers(2, 8), st.integers(2, 5))
def test_softmax_ce_without_one_hot(seed: int, batch: int, classes: int) -> None:
    rng = np.random.default_rng([seed, 1])
    targets = rng.integers(0, classes, batch)
    rep = gc.check_layer(_NoOneHot(targets), rng.standard_normal((batch, classes)))
    assert kinds(rep.diagnoses) == {"x": "offset"}, str(rep)
    assert rep.diagnoses[0].elements == [(i, int(t)) for i, t in enumerate(targets)]


@given(seeds, st.sampled_from([2.0, -1.0, 1.5, -0.5]))
def test_relu_convention_outside_the_hull(seed: int, c: float) -> None:
    x = np.random.default_rng([seed, 1]).standard_normal((4, 5))
    x.flat[::3] = 0.0
    rep = gc.check_layer(ReLU(grad_at_zero=c), x, kinks="hull")
    assert kinds(rep.diagnoses) == {"x": "kink_convention"}, str(rep)


# --------------------------------------------------------------------------- the banks


# tie bugs of one tensor whose every mismatch the engine fails along the tie, with a slope
TIE_KINDS = {
    "max_axis1_counted_twice_issue_example": "tie_counted",
    "max_axis1_counted_twice_pixels": "tie_counted",
    "maxpool2x2_window_eq_max_pixels": "tie_counted",
    "maxpool2x2_window_eq_max_flat_window": "tie_counted",
    "topk_ge_kth_boundary_tie": "tie_counted",
    "topk_ge_kth_pixels": "tie_counted",
    "max_axis1_counted_twice_opposite_rows": "tie_counted",
    "maxpool2x2_window_eq_max_opposite_windows": "tie_counted",
    "max_axis1_tie_dropped_issue_example": "tie_dropped",
    "maxpool2x2_tie_dropped_pixels": "tie_dropped",
    "topk_boundary_tie_dropped": "tie_dropped",
}


@pytest.mark.parametrize("kinks", ["subgradient", "hull"])
@pytest.mark.parametrize("name", list(TIE_KINDS))
def test_tie_bugs_are_named_as_ties(name: str, kinks: str) -> None:
    layer, x = TIE_BUGS[name].make()
    rep = gc.check_layer(layer, x, kinks=kinks, **TIE_BUGS[name].opts)
    assert kinds(rep.diagnoses) == {"x": TIE_KINDS[name]}, str(rep)


@pytest.mark.parametrize("kinks", ["subgradient", "hull"])
@pytest.mark.parametrize("case", as_params(TIE_BUGS))
def test_a_tie_the_check_failed_is_never_called_a_convention(case: Any, kinks: str) -> None:
    """Every tie bug of the bank is failed as a tie, in either kinks mode, and a tensor
    with a failed tie is never diagnosed as a kink convention."""
    layer, x = case.make()
    rep = gc.check_layer(layer, x, kinks=kinks, **case.opts)
    assert rep.ties, str(rep)
    tied = {name for finding in rep.ties for name in finding.tensors}
    for d in rep.diagnoses:
        assert d.tensor not in tied or d.kind not in ("kink_convention", "at_kinks"), str(rep)


@pytest.mark.parametrize("kinks", ["subgradient", "hull"])
@pytest.mark.parametrize("case", as_params(TIE_CONVENTIONS))
def test_valid_tie_conventions_get_no_diagnosis(case: Any, kinks: str) -> None:
    layer, x = case.make()
    rep = gc.check_layer(layer, x, kinks=kinks, **case.opts)
    assert rep.diagnoses == [], str(rep)


@pytest.mark.parametrize("case", as_params(KINK_CASES))
def test_correct_layers_on_kinks_get_no_diagnosis(case: Any) -> None:
    modes = [case.opts] + ([{**case.opts, "kinks": "hull"}] if case.hull_ok else [])
    for opts in modes:
        layer, x = case.make()
        rep = gc.check_layer(layer, x, **opts)
        assert rep.diagnoses == [], str(rep)


# mutant-bank entries whose diagnosis is known: the named kind, or none where the bug has no
# named pattern (the others may get any diagnosis on a tensor the bug reaches, or none)
BANK_KINDS: dict[str, dict[str, str]] = {
    "dense_dW_sign": {"W": "sign"},
    "dense_db_sign": {"b": "sign"},
    "dense_dx_sign": {"x": "sign"},
    "abs_sign_flipped": {"x": "sign"},
    "relu_no_derivative": {"x": "missing_mask"},
    "relu_inverted_mask": {"x": "inverted_mask"},
    "dense_dW_transposed": {"W": "transpose"},
    "dense_dW_mean_over_batch": {"W": "scale"},
    "dense_db_mean_over_batch": {"b": "scale"},
    "softmax_ce_no_batch_mean": {"x": "scale"},
    "dense_dW_scaled_0p1_percent": {"W": "scale"},
    "quadratic_factor_2": {"x": "scale"},
    "dense_db_zeros": {"b": "zero"},
    "dense_dx_zeros": {"x": "zero"},
    "dense_one_wrong_element_of_600": {"W": "isolated"},
    "dense_one_wrong_element_of_60000": {"W": "isolated"},
    "leaky_wrong_slope": {"x": "scale"},
    "leaky_drops_slope": {"x": "zero"},
    "relu_grad_at_zero_2": {"x": "kink_convention"},
    "hardtanh_no_clip_grad": {"x": "missing_mask"},
    "chain_dW2_sign": {"W2": "sign"},
    "float32_dense_dW_sign": {"W": "sign"},
    "float32_dense_dW_mean": {"W": "scale"},
    "float32_relu_no_derivative": {"x": "missing_mask"},
    "square_missing_factor_2": {"x": "scale"},
    "square_missing_factor_2_near_zero": {"x": "scale"},
    "maxpool_routes_to_argmin": {"x": "inverted_mask"},
    # wrong everywhere, but no one factor, sign, mask or offset: nothing may be claimed
    "tanh_sign_in_derivative": {},
    "sigmoid_no_derivative": {},
    "sigmoid_wrong_derivative": {},
    "softplus_wrong_derivative": {},
    "softmax_diagonal_only": {"x": "diagonal_only"},
    "dense_dx_uses_W_not_WT": {},
}


@pytest.mark.parametrize("case", as_params(MUTANTS))
def test_mutant_bank_diagnoses_only_what_the_bug_reaches(case: Any) -> None:
    layer, x = case.make()
    rep = gc.check_layer(layer, x, **{"seed": 0, **case.opts})
    found = kinds(rep.diagnoses)
    assert set(found) <= set(case.bad), str(rep)
    if case.name in BANK_KINDS:
        assert found == BANK_KINDS[case.name], str(rep)


# ----------------------------------------------------------------- the structures of layers


@given(seeds, st.integers(1, 3), st.integers(3, 6), st.integers(2, 4), st.booleans())
def test_a_term_missing_at_every_step_but_the_end_is_a_recurrence(
        seed: int, batch: int, steps: int, features: int, backward: bool) -> None:
    """analytic = numeric less a carried term at every step but the last (the first, for a
    recurrence run backward): recurrence, with the steps it names, whenever the end step
    holds enough elements to be seen right."""
    n = _normal(seed, (batch, steps, features))
    carried = _normal(seed + 1, n.shape)
    end = 0 if backward else steps - 1
    carried[:, end] = 0.0
    found = diagnose(report(tensor("x", n - carried, n)))
    # the same pattern in a weight is no sequence: only the input has steps in time
    assert kinds(diagnose(report(tensor("W", n - carried, n), input_name=None))).get(
        "W") != "recurrence"
    if batch * features < 6 or batch * features * (steps - 1) < 16:
        assert kinds(found).get("x") != "recurrence"  # too few elements to tell
        return
    assert kinds(found) == {"x": "recurrence"}
    rest = "x[:, 1:, :]" if backward else "x[:, :-1, :]"
    assert found[0].where is not None and found[0].where.startswith(rest)


@given(seeds, st.integers(2, 3), st.integers(2, 3), st.sampled_from([2, 3]),
       st.integers(0, 8))
def test_a_gradient_given_to_one_member_per_block_is_a_block_member(
        seed: int, rows: int, cols: int, period: int, at: int) -> None:
    """A pooling backward that writes each window's gradient into one pixel of it (the same
    one in every window) and leaves the rest 0: block_member, naming that stride."""
    windows = _normal(seed, (rows, cols))
    n = np.repeat(np.repeat(windows, period, axis=0), period, axis=1) / period ** 2
    r, c = at // period % period, at % period
    a = np.zeros_like(n)
    a[r::period, c::period] = n[r::period, c::period]
    found = diagnose(report(tensor("x", a, n), input_name=None))
    assert kinds(found) == {"x": "block_member"}
    start = lambda i: str(i) if i else ""  # noqa: E731
    assert found[0].where == f"x[{start(r)}::{period}, {start(c)}::{period}]"


@given(seeds, st.integers(1, 6), st.integers(3, 6))
def test_the_diagonal_of_a_softmax_jacobian_is_named(seed: int, rows: int, classes: int) -> None:
    """analytic = s (1 - s) g where numeric = s (g - sum(g s)) per row: diagonal_only."""
    x = np.random.default_rng([seed, 2]).standard_normal((rows, classes))
    g = _normal(seed, x.shape)
    s = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    n = s * (g - (g * s).sum(axis=1, keepdims=True))
    found = diagnose(report(tensor("x", s * (1 - s) * g, n, value=x), output_shape=x.shape))
    if rows * (classes - 1) < 3:
        return
    assert kinds(found) == {"x": "diagonal_only"}


@given(seeds, st.integers(2, 8), st.integers(2, 5), st.sampled_from([1e-7, 1e-8, 1e-5]))
def test_an_eps_in_the_log_that_backward_ignores_is_named(seed: int, rows: int, classes: int,
                                                          eps: float) -> None:
    """-log(p + eps) differentiated as -log(p): epsilon, with that eps, wherever three
    elements or more show it and their p are not one value."""
    rng = np.random.default_rng([seed, 4])
    p = rng.uniform(1e-4, 1.0, (rows, classes))
    y = np.eye(classes)[rng.integers(0, classes, rows)]
    # float64 error bars as the engine measures them on a smooth loss (a part in 1e9)
    found = diagnose(report(tensor("p", -y / p, -y / (p + eps), value=p, rtol=1e-9, atol=1e-12),
                            input_name="p"))
    if rows < 3:  # two wrong elements: too few to fit eps and test it
        assert kinds(found).get("p") != "epsilon"
        return
    labelled = p[y == 1]
    if labelled.max() < 2 * labelled.min() and kinds(found) == {"p": "scale"}:
        return  # p nearly one value: (p + eps) / p is one factor too, and scale comes first
    assert kinds(found) == {"p": "epsilon"}
    assert found[0].factor == eps


@given(seeds, st.integers(4, 8), st.integers(1, 3), st.booleans())
def test_batchnorm_in_one_mode_differentiated_in_the_other(seed: int, batch: int,
                                                           features: int, frozen: bool) -> None:
    """A batch norm layer whose forward and backward disagree on the mode, in either
    direction: mode_mismatch on x; the layer that agrees with itself passes."""

    class BatchNorm:
        def __init__(self, forward_frozen: bool, backward_frozen: bool) -> None:
            self.forward_frozen, self.backward_frozen = forward_frozen, backward_frozen
            self.params: dict[str, np.ndarray] = {}

        def forward(self, x: np.ndarray) -> np.ndarray:
            self.x = x
            mu, var = (0.5, 2.0) if self.forward_frozen else (x.mean(0), x.var(0))
            return (x - mu) / np.sqrt(var + 1e-5)

        def backward(self, g: np.ndarray) -> np.ndarray:
            if self.backward_frozen:
                return g / np.sqrt(2.0 + 1e-5)
            inv = 1 / np.sqrt(self.x.var(0) + 1e-5)
            x_hat = (self.x - self.x.mean(0)) * inv
            return inv * (g - g.mean(0) - x_hat * (g * x_hat).mean(0))

    x = 1 + np.random.default_rng([seed, 6]).standard_normal((batch, features))
    rep = gc.check_layer(BatchNorm(frozen, not frozen), x)
    if features * (batch - 2) < 3:  # two unknowns per feature: too few elements left to test
        assert kinds(rep.diagnoses).get("x") != "mode_mismatch", str(rep)
        return
    assert kinds(rep.diagnoses) == {"x": "mode_mismatch"}, str(rep)
    assert gc.check_layer(BatchNorm(frozen, frozen), x).ok


@given(seeds, st.integers(4, 9), st.integers(1, 3), st.integers(2, 12))
def test_rows_an_index_names_twice_are_named_by_their_index(seed: int, vocabulary: int,
                                                            dim: int, count: int) -> None:
    """An embedding backward with grad[idx] += dout: wrong exactly at the repeated rows, and
    named so (repeated_index) whenever a row named once shows that singles are right."""

    def embed_forward(W: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, Any]:
        return W[idx], idx

    def embed_backward(dout: np.ndarray, idx: np.ndarray) -> np.ndarray:
        dW = np.zeros((vocabulary, dim))
        dW[idx] += dout
        return dW

    rng = np.random.default_rng([seed, 8])
    idx = rng.integers(0, vocabulary, count)
    rep = gc.check_pair(embed_forward, embed_backward, rng.standard_normal((vocabulary, dim)),
                        idx)
    times = np.bincount(idx, minlength=vocabulary)
    if not (times >= 2).any():
        assert rep.ok, str(rep)
        return
    if (times == 1).any():
        assert kinds(rep.diagnoses) == {"W": "repeated_index"}, str(rep)
    else:
        assert kinds(rep.diagnoses).get("W") != "repeated_index", str(rep)


@given(seeds, st.integers(3, 7), st.integers(3, 7), st.integers(0, 6), st.integers(0, 6))
def test_the_location_of_a_patternless_error_is_its_box(seed: int, rows: int, cols: int,
                                                        row: int, span: int) -> None:
    """Noise on rows row..row+span of a matrix, the rest right: no kind fits, and the
    location names exactly those rows (W[a:b]), with every other element right."""
    n = _normal(seed, (rows, cols))
    first = row % rows
    last = min(rows - 1, first + span)
    if first == 0 and last == rows - 1:
        return  # every row: no location to give
    a = n.copy()
    a[first:last + 1] += np.random.default_rng([seed, 9]).uniform(0.5, 1.0, (last - first + 1,
                                                                              cols))
    found = diagnose(report(tensor("W", a, n), input_name=None))
    if (last - first + 1) * cols <= 10 and (last - first + 1) * cols <= 0.25 * rows * cols:
        assert kinds(found) in ({"W": "isolated"}, {"W": "location"})
        return
    assert kinds(found) in ({"W": "location"}, {"W": "slice"})
    if kinds(found) == {"W": "location"}:
        start = "" if first == 0 else str(first)
        stop = "" if last == rows - 1 else ("-1" if last == rows - 2 else str(last + 1))
        expected = f"W[{first}]" if first == last else f"W[{start}:{stop}]"
        assert found[0].where == expected, found[0].text
