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
          "tie_dropped"}
# kinds that describe the whole tensor: never read off fast mode's located elements
WHOLE_TENSOR = STRONG - {"tie_counted", "tie_dropped"}

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
