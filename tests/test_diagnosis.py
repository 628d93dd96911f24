"""Diagnosis: the kind of mistake named, on the right tensor, with its evidence.

Two halves:

* ``diagnose`` on hand-built reports: each kind from arrays whose pattern is known exactly,
  and the degenerate cases where a kind must not be claimed (a symmetric matrix, an all-zero
  numeric gradient, a random corruption, empty and 0-d tensors, no arrays at all);
* the classic hand-derivation mistakes as real layers, through every door: the API
  (``report.diagnoses``, ``str(report)``, ``to_dict()``), the command line (text and
  ``--json``) and the pytest plugin's failure text.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.diagnosis import Diagnosis, diagnose, kinds
from gradcheck.report import Report, TensorResult, TieFinding

# --------------------------------------------------------------------------- hand-built reports

RNG = np.random.default_rng(0)


def tensor(name: str, analytic: Any, numeric: Any, *, kink: Any = None, value: Any = None,
           mode: str = "full", lower_bound: bool = False, measured: Any = None,
           rtol: float = 1e-5, atol: float = 1e-8) -> TensorResult:
    """A TensorResult as the engine builds it: numeric with rounding noise, the error bar
    atol + rtol |n| + noise, an element failed where |a - n| exceeds it."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64) + 1e-11 * RNG.standard_normal(np.shape(numeric))
    if measured is not None:
        n = np.where(measured, n, np.nan)
    bar = atol + rtol * np.abs(n) + 1e-10
    with np.errstate(invalid="ignore"):
        failed = np.abs(a - n) > bar
    kink = np.zeros(a.shape, dtype=bool) if kink is None else np.asarray(kink)
    return TensorResult(
        name=name, shape=a.shape, dtype="float64", mode=mode, size=a.size,
        mismatched=int(failed.sum()), max_abs_err=0.0, max_rel_err=0.0,
        mismatched_is_lower_bound=lower_bound, measured=int(np.isfinite(n).sum()),
        status="FAILED" if failed.any() else "ok", analytic=a, numeric=n, error_bar=bar,
        kink=kink, failed=failed, value=np.zeros(0) if value is None else np.asarray(value))


def report(*tensors: TensorResult, input_name: str | None = "x",
           output_shape: tuple[int, ...] | None = None, kinks: str = "subgradient") -> Report:
    return Report(title="hand-built", tensors=list(tensors), problems=[], notes=[],
                  options={"kinks": kinks}, evaluations={}, input_name=input_name,
                  output_shape=output_shape)


def only(rep: Report) -> Diagnosis:
    found = diagnose(rep)
    assert len(found) == 1, found
    return found[0]


X = RNG.standard_normal((8, 4))
G = RNG.standard_normal((8, 4))
W = RNG.standard_normal((4, 4))
DW, DX = X.T @ G, G @ W.T


def test_scale_names_the_batch_size() -> None:
    d = only(report(tensor("x", DX, DX, value=X), tensor("W", DW / 8, DW), output_shape=(8, 4)))
    assert (d.tensor, d.kind, d.factor) == ("W", "scale", 0.125)
    assert "0.125" in d.text and "8 is the batch size (axis 0 of x)" in d.text
    assert d.count == 16


def test_axis_0_of_the_first_argument_is_the_batch_only_along_the_output() -> None:
    # check_loss(f, W, X, y): the first checked argument is a weight, the loss a scalar
    w = RNG.standard_normal((5, 3))
    d = only(report(tensor("W", 5 * w, w), input_name="W", output_shape=()))
    assert d.kind == "scale" and d.factor == 5.0
    assert "batch" not in d.text and "5 is axis 0 of W" in d.text


def test_axis_0_of_a_weight_is_never_called_the_batch_size() -> None:
    def softmax_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        s = X @ W
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d = p.copy()
        d[np.arange(len(y)), y] -= 1
        return float(-np.log(p[np.arange(len(y)), y]).mean()), X.T @ d  # forgot / N

    rng = np.random.default_rng(0)
    rep = gc.check_loss(softmax_loss, 0.1 * rng.standard_normal((5, 5)),
                        rng.standard_normal((5, 5)), rng.integers(0, 5, 5))
    d = only(rep)
    assert (d.kind, d.factor) == ("scale", 5.0), str(rep)
    assert "batch" not in d.text and "axis 0 of W" in d.text


def test_scale_reasons_are_single_facts_never_composites() -> None:
    x = RNG.standard_normal((8, 5))
    w = RNG.standard_normal((5, 3))
    for factor in (10.0, 4.0, 0.25, 16.0, 1 / 16, 2.5, 64.0):  # 2 x 5, 8/2, 2/8, 2 x 8, ...
        d = only(report(tensor("x", x, x, value=x), tensor("W", factor * w, w),
                        output_shape=(8, 3)))
        assert d.kind == "scale" and d.factor == pytest.approx(factor, rel=1e-9)
        assert d.text.endswith("one factor in every element: a constant multiplied in, or "
                               "missing, in backward"), d.text
    d = only(report(tensor("x", x, x, value=x), tensor("W", 40 * w, w), output_shape=(8, 3)))
    assert "40 is the number of elements of x (8 x 5)" in d.text


def test_a_batch_of_two_names_both_readings_of_a_factor_two() -> None:
    x = RNG.standard_normal((2, 5))
    w = RNG.standard_normal((5, 3))
    d = only(report(tensor("x", x, x, value=x), tensor("W", w / 2, w), output_shape=(2, 3)))
    assert (d.kind, d.factor) == ("scale", 0.5)
    assert "2 is the batch size (axis 0 of x)" in d.text and "d/dx x^2" in d.text


def test_scale_factor_two_and_unnamed_factor() -> None:
    assert only(report(tensor("W", 2 * DW, DW), input_name=None)).factor == 2.0
    d = only(report(tensor("W", 1.001 * DW, DW), input_name=None))
    assert d.kind == "scale" and d.factor == pytest.approx(1.001, rel=1e-6)


def test_sign() -> None:
    d = only(report(tensor("x", -DX, DX, value=X)))
    assert (d.tensor, d.kind, d.factor) == ("x", "sign", -1.0)
    assert "all 32 elements" in d.text


def test_one_element_sign_is_sign_not_scale_minus_one() -> None:
    assert only(report(tensor("s", np.array(-2.5), np.array(2.5)), input_name=None)).kind == "sign"


def test_transpose_on_a_square_matrix() -> None:
    d = only(report(tensor("W", DW.T, DW), input_name=None))
    assert d.kind == "transpose" and "4 diagonal elements" in d.text


def test_transpose_of_a_symmetric_matrix_is_not_claimed() -> None:
    sym = DW + DW.T
    sym_wrong = sym.copy()
    sym_wrong[0, 1] += 1.0  # failing, yet analytic = numeric.T would hold almost everywhere
    found = diagnose(report(tensor("W", sym_wrong, sym), input_name=None))
    assert "transpose" not in kinds(found).values()


def test_reversed_kernel_and_weight_decay_term() -> None:
    kernel = RNG.standard_normal(5)
    d = only(report(tensor("w", kernel[::-1], kernel), input_name=None))
    assert (d.kind, d.where) == ("reversed", "along axis 0")
    conv_w = RNG.standard_normal((2, 3, 3, 3))  # (filters, channels, kh, kw)
    d = only(report(tensor("w", conv_w[:, :, ::-1, ::-1], conv_w), input_name=None))
    assert (d.kind, d.where) == ("reversed", "along axes 2 and 3 (rotated by 180 degrees)")
    palindrome = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    wrong = palindrome.copy()
    wrong[2] = 5.0
    assert kinds(diagnose(report(tensor("w", wrong, palindrome), input_name=None))) != {
        "w": "reversed"}
    d = only(report(tensor("W", DW - 0.01 * W, DW, value=W), input_name=None))
    assert (d.kind, d.factor) == ("value_term", pytest.approx(-0.01))
    assert "weight decay" in d.text


def test_index_off_by_one_and_an_error_per_column() -> None:
    shifted = np.zeros_like(DX)
    shifted[1:] = DX[:-1]  # row i holds row i - 1; the first row 0
    d = only(report(tensor("x", shifted, DX, value=X)))
    assert (d.kind, d.where) == ("shifted", "axis 0, by +1")
    d = only(report(tensor("x", np.roll(DX, -1, axis=1), DX, value=X)))
    assert (d.kind, d.where) == ("shifted", "axis 1, by -1")
    per_column = np.array([0.5, -1.0, 0.0, 2.0])
    d = only(report(tensor("x", DX + per_column, DX, value=X)))
    assert (d.kind, d.where) == ("one_index", "axis 1")


def test_missing_mask_names_the_condition_on_x() -> None:
    d = only(report(tensor("x", G, G * (X > 0), value=X)))
    assert (d.kind, d.where) == ("missing_mask", "x < 0")
    assert d.count == int((X < 0).sum())


def test_missing_mask_of_a_clip_names_the_band() -> None:
    x = 2 * X
    d = only(report(tensor("x", G, G * (np.abs(x) < 1), value=x)))
    assert (d.kind, d.where) == ("missing_mask", "|x| > 1")


def test_missing_mask_on_a_parameter_lists_the_elements() -> None:
    n = DW.copy()
    n[:, 1] = 0.0
    d = only(report(tensor("W", DW, n), input_name=None))
    assert d.kind == "missing_mask" and d.where is None
    assert d.elements == [(i, 1) for i in range(4)]


def test_inverted_mask() -> None:
    d = only(report(tensor("x", G * (X < 0), G * (X > 0), value=X)))
    assert (d.kind, d.where) == ("inverted_mask", "x < 0")


def test_offset_one_element_per_row_is_the_one_hot() -> None:
    targets = np.array([0, 2, 1, 1, 0, 2, 2, 1])
    z = RNG.standard_normal((8, 3))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    d = only(report(tensor("x", p / 8, (p - np.eye(3)[targets]) / 8, value=z),
                    output_shape=()))
    assert d.kind == "offset" and d.constant == pytest.approx(1 / 8)
    assert d.elements == [(i, int(t)) for i, t in enumerate(targets)]
    assert "one element in each of the 8 rows" in d.text and "1/8" in d.text
    assert "one-hot" in d.text


def test_offset_on_one_column() -> None:
    a = DW.copy()
    a[:, 2] -= 0.3
    d = only(report(tensor("W", a, DW), input_name=None))
    assert d.kind == "offset" and d.where == "every element of column 2"
    assert "and 0 everywhere else" in d.text


def test_offset_on_every_element_says_so_once() -> None:
    d = only(report(tensor("W", DW + 0.5, DW), input_name=None))
    assert (d.kind, d.where, d.constant) == ("offset", "every element", pytest.approx(0.5))
    assert "everywhere else" not in d.text and "every element of the gradient" in d.text


def test_swapped_pair() -> None:
    d = diagnose(report(tensor("x", DW, DX[:4]), tensor("W", DX[:4], DW)))
    assert {(e.tensor, e.kind, e.other) for e in d} == {("x", "swapped", "W"),
                                                       ("W", "swapped", "x")}
    assert "swapped" in d[0].text


def test_one_sided_copy_is_swapped_too() -> None:
    d = only(report(tensor("x", DX[:4], DX[:4]), tensor("W", DX[:4], DW)))
    assert (d.tensor, d.kind, d.other) == ("W", "swapped", "x")


def test_zero_gradient() -> None:
    d = only(report(tensor("b", np.zeros(3), [1.0, -2.0, 0.5]), input_name=None))
    assert d.kind == "zero" and d.factor == 0.0


def test_region_scale_and_zero_follow_the_sign_of_x() -> None:
    leaky = np.where(X < 0, 0.01, 1.0) * G
    d = only(report(tensor("x", np.where(X < 0, 0.1, 1.0) * G, leaky, value=X)))
    assert (d.kind, d.where, d.factor) == ("scale", "x < 0", pytest.approx(10.0))
    d = only(report(tensor("x", np.where(X < 0, 0.0, 1.0) * G, leaky, value=X)))
    assert (d.kind, d.where) == ("zero", "x < 0")


def test_kink_convention_under_hull() -> None:
    x = X.copy()
    x.flat[::3] = 0.0
    on = x == 0
    numeric = np.where(x > 0, G, 0.0) + np.where(on, G / 2, 0.0)  # central difference at 0
    analytic = np.where(x > 0, G, 0.0) + np.where(on, 2 * G, 0.0)  # ReLU'(0) = 2
    d = only(report(tensor("x", analytic, numeric, kink=on, value=x), kinks="hull"))
    assert d.kind == "kink_convention" and "where x = 0" in d.text
    assert d.elements == [tuple(int(i) for i in ix) for ix in np.argwhere(on)][:50]
    assert d.text.startswith(f"all {int(on.sum())} mismatches sit on kinks")
    strict = only(report(tensor("x", analytic, numeric, kink=on, value=x), kinks="strict"))
    assert strict.kind == "at_kinks" and "points under kinks='strict'" in strict.text


def test_one_mismatch_on_a_kink_reads_as_one() -> None:
    x = X.copy()
    x.flat[4] = 0.0
    on = x == 0
    numeric = np.where(x > 0, G, 0.0) + np.where(on, G / 2, 0.0)
    analytic = np.where(x > 0, G, 0.0) + np.where(on, 2 * G, 0.0)
    d = only(report(tensor("x", analytic, numeric, kink=on, value=x), kinks="hull"))
    assert d.kind == "kink_convention"
    assert d.text.startswith("the one mismatch sits on a kink (x["), d.text


def test_isolated_lists_the_elements() -> None:
    a = DW.copy()
    a[1, 2] += 0.01
    d = only(report(tensor("W", a, DW), input_name=None))
    assert (d.kind, d.elements) == ("isolated", [(1, 2)])
    assert "W[1, 2]" in d.text and "1 of 16" in d.text


def test_fast_mode_diagnoses_from_the_localized_elements_or_says_full_would() -> None:
    big = RNG.standard_normal((40, 40))
    located = np.zeros(big.shape, dtype=bool)
    located[3, :8] = True
    wrong = big.copy()
    wrong[3, 4] += 1.0
    d = only(report(tensor("W", wrong, big, mode="fast", measured=located), input_name=None))
    assert (d.kind, d.elements) == ("isolated", [(3, 4)])
    d = only(report(tensor("W", wrong, big, mode="fast", measured=located, lower_bound=True),
                    input_name=None))
    assert d.kind == "needs_full" and "mode='full'" in d.text
    located[10:12] = True  # 8 + 80 measured, all with the sign flipped
    d = only(report(tensor("W", -big, big, mode="fast", measured=located, lower_bound=True),
                    input_name=None))
    assert d.kind == "needs_full" and "analytic = -numeric" in d.text


def test_fast_mode_reads_no_whole_tensor_pattern_off_the_located_elements() -> None:
    # one row sign-flipped, the rest right: the located elements are all in that row, so
    # they look exactly like a tensor whose every element is flipped
    big = RNG.standard_normal((40, 40))
    wrong = big.copy()
    wrong[0] *= -1
    located = np.zeros(big.shape, dtype=bool)
    located[0, :14] = True
    for analytic in (wrong, -big, big / 8):
        d = only(report(tensor("W", analytic, big, mode="fast", measured=located,
                               lower_bound=True), input_name=None))
        assert (d.kind, d.factor, d.where) == ("needs_full", None, None)
        assert "not a fair sample of W" in d.text and "mode='full' would diagnose" in d.text
    assert "analytic = 0.125 (= 1/8) x numeric" in d.text


def test_isolated_prints_zeros_plainly_and_once() -> None:
    n = DW.copy()
    n[2, 1] = 3e-12  # 0 within its error bar
    a = DW.copy()
    a[2, 1] = 0.7
    a[0, 3] = -0.0  # "analytic -0" would read as a sign
    d = only(report(tensor("W", a, n), input_name=None))
    assert d.kind == "isolated" and d.elements == [(0, 3), (2, 1)]
    assert "-0 " not in d.text and "W[0, 3]: analytic 0 vs numeric" in d.text
    assert d.text.count("analytic 0 ") == 1  # the pair says it; no note repeats it
    assert "W[2, 1]: analytic 0.7 vs numeric" in d.text
    assert "numeric 0 within its error bar" in d.text


def test_value_term_says_which_lambda_by_its_sign() -> None:
    # loss with (0.1/2) sum(W^2): backward owes +0.1 W; it adds -0.1 W (c = -0.2)
    d = only(report(tensor("W", DW - 0.2 * W, DW, value=W), input_name=None))
    assert (d.kind, d.factor) == ("value_term", pytest.approx(-0.2))
    assert "lacks a term 0.2 x W" in d.text
    assert "forgotten (lambda = 0.2)" in d.text and "wrong sign (lambda = 0.1)" in d.text
    d = only(report(tensor("W", DW + 0.1 * W, DW, value=W), input_name=None))
    assert (d.kind, d.factor) == ("value_term", pytest.approx(0.1))
    assert "a term 0.1 x W too many" in d.text and "lacks" not in d.text


def holds(condition: str, x: np.ndarray) -> np.ndarray:
    """Where a condition the diagnosis named ("x < 0.5", "|x| > 1") is true."""
    left, op, bound = condition.split(" ")
    values = np.abs(x) if left.startswith("|") else x
    return values < float(bound) if op == "<" else values > float(bound)


def test_inverted_mask_names_no_condition_that_other_elements_share() -> None:
    # routed to the argmin of windows of 4: a threshold between the argmins and the
    # argmaxes also holds at elements that are neither
    x = np.random.default_rng(2).standard_normal((8, 4))
    g = np.random.default_rng(3).standard_normal((8, 1)) + 3.0
    argmax = x == x.max(axis=1, keepdims=True)
    argmin = x == x.min(axis=1, keepdims=True)
    d = only(report(tensor("x", g * argmin, g * argmax, value=x)))
    assert d.kind == "inverted_mask"
    assert d.where is None  # here x < t at the argmins holds elsewhere too


def test_missing_mask_says_exactly_only_when_it_is_exact() -> None:
    # ReLU and a fixed dropout mask: backward keeps the dropout, forgets ReLU's mask;
    # elements with x < 0 that dropout zeroed are right
    keep = np.ones(X.shape, dtype=bool)
    keep.flat[np.flatnonzero(X < 0)[:2]] = False
    keep.flat[np.flatnonzero(X > 0)[0]] = False
    d = only(report(tensor("x", G * keep, G * keep * (X > 0), value=X)))
    assert d.kind == "missing_mask" and d.where is None
    assert "exactly" not in d.text and "numeric is 0 at 3 more, and analytic with it" in d.text
    assert d.count == int((keep & (X < 0)).sum())


def test_missing_upper_mask_of_a_clip_among_the_zeros_it_kept() -> None:
    x = 5 * np.random.default_rng(3).standard_normal((8, 5))  # 4 elements above 6
    g = np.random.default_rng(6).standard_normal((8, 5))
    d = only(report(tensor("x", g * (x > 0), g * (x > 0) * (x < 6), value=x)))
    assert d.kind == "missing_mask" and d.where is not None
    assert np.array_equal(holds(d.where, x), x > 6)  # exactly the clipped ones
    assert f"exactly the elements with {d.where}" in d.text


def test_a_threshold_that_singles_out_two_zeros_is_no_mask() -> None:
    x = RNG.standard_normal((8, 5))
    top2 = x >= np.sort(x.reshape(-1))[-2]  # the two largest x: a threshold x > t fits them
    right = np.where(x > 0, 1.0, 0.0)
    a = np.where(top2, 2.0, right)
    n = np.where(top2, 0.0, right)
    found = kinds(diagnose(report(tensor("x", a, n, value=x))))
    assert found.get("x") != "missing_mask", found


def test_a_condition_every_element_meets_is_no_mask() -> None:
    # every x below 0 and every element wrong: "exactly the elements with x < 0; every other
    # element is right" would describe a mask that separates nothing from nothing
    x = -np.abs(X) - 0.5
    found = diagnose(report(tensor("x", G, 0 * G, value=x)))
    assert kinds(found).get("x") not in {"missing_mask", "zero", "sign", "scale"}, found
    assert all(d.where is None or "x" not in d.where for d in found), found
    # one element on the other side, right and nonzero: now the threshold separates
    x.flat[5] = 1.0
    n = np.where(x > 0, G, 0.0)
    d = only(report(tensor("x", G, n, value=x)))
    assert (d.kind, d.where) == ("missing_mask", "x < 0")


def test_a_region_needs_right_elements_on_its_other_side() -> None:
    # analytic = 10 x numeric where x < 0; where x > 0 numeric is within its error bar of 0
    # (and analytic with it): no right element there bounds a threshold from the other side,
    # so any t below the wrong ones would do, and "where x < 0" would be a guess
    n = np.where(X < 0, G, 3e-8)
    a = np.where(X < 0, 10 * G, 3e-8)
    found = diagnose(report(tensor("x", a, n, value=X)))
    assert all(d.where is None for d in found), found
    # right and clearly nonzero where x > 0: the region is bounded, and named
    n = np.where(X < 0, G, 2 * G)
    a = np.where(X < 0, 10 * G, 2 * G)
    d = only(report(tensor("x", a, n, value=X)))
    assert (d.kind, d.where, d.factor) == ("scale", "x < 0", pytest.approx(10.0))


def test_numeric_is_not_called_zero_where_it_exceeds_the_right_values() -> None:
    # softplus backward written as exp(x) at |x| ~ 20: analytic ~1e9 where x > 0 inflates
    # every error bar to ~18, so numeric ~1 there is "0 within its bar"; beside right
    # elements of 1e-9 (x < 0) it is no zero, and no mask is missing
    x = np.where(X > 0, 20.0, -20.0) + 0.5 * X
    g = G
    n = g / (1 + np.exp(-x))
    a = g * np.exp(x)
    found = kinds(diagnose(report(tensor("x", a, n, value=x, atol=18.0))))
    assert found.get("x") not in {"missing_mask", "inverted_mask"}, found


def test_a_factor_is_not_read_off_one_element() -> None:
    # one element off the kinks, analytic = 8 x numeric there (8 the batch size): one ratio
    # is whatever it happens to be, and ~40 named factors hold one of them by chance
    kink = np.ones(DW.shape, dtype=bool)
    kink[1, 2] = False
    a = RNG.standard_normal(DW.shape)
    a[1, 2] = 8 * DW[1, 2]
    found = diagnose(report(tensor("x", DX, DX, value=X), tensor("W", a, DW, kink=kink),
                            output_shape=(8, 4)))
    assert kinds(found).get("W") not in {"scale", "sign", "zero"}, found
    # nor -1 off one element of many
    a[1, 2] = -DW[1, 2]
    found = diagnose(report(tensor("W", a, DW, kink=kink), input_name=None))
    assert kinds(found).get("W") not in {"scale", "sign", "zero"}, found
    # two elements with the one factor: it is named
    kink[3, 0] = False
    a[1, 2], a[3, 0] = 8 * DW[1, 2], 8 * DW[3, 0]
    d = only(report(tensor("x", DX, DX, value=X), tensor("W", a, DW, kink=kink),
                    output_shape=(8, 4)))
    assert (d.tensor, d.kind, d.factor) == ("W", "scale", 8.0)
    # a tensor of one element is all there is: -1 is read off it, a named factor never
    assert kinds(diagnose(report(tensor("s", np.array([-1.5]), np.array([1.5])),
                                 input_name=None))) == {"s": "sign"}
    assert kinds(diagnose(report(tensor("s", np.array([12.0]), np.array([1.5])),
                                 input_name=None))).get("s") != "scale"


def test_shift_with_an_edge_that_holds_other_values() -> None:
    edge_values = RNG.standard_normal(8)
    a = np.roll(DX, 1, axis=1)
    a[:, 0] = edge_values  # neither 0 nor the wrapped-around last column
    d = only(report(tensor("x", a, DX, value=X)))
    assert (d.kind, d.where) == ("shifted", "axis 1, by +1")
    assert "x[:, 0] holds other values, neither 0 nor wrapped around" in d.text


def test_a_wrong_edge_alone_is_no_shift() -> None:
    n = np.repeat(RNG.standard_normal((8, 1)), 4, axis=1)  # constant along axis 1
    a = n.copy()
    a[:, 0] = RNG.standard_normal(8)
    found = kinds(diagnose(report(tensor("x", a, n, value=X))))
    assert found.get("x") != "shifted", found


@pytest.mark.parametrize("axis, index, factor", [(1, 2, 0.0), (0, 3, 2.0), (0, 0, -1.0),
                                                 (1, 0, 0.3)])
def test_one_slice_wrong_the_rest_right(axis: int, index: int, factor: float) -> None:
    n = RNG.standard_normal((6, 5)) + 3.0  # clearly nonzero everywhere
    a = n.copy()
    np.moveaxis(a, axis, 0)[index] *= factor
    d = only(report(tensor("W", a, n), input_name=None))
    where = f"{('row', 'column')[axis]} {index}"
    assert (d.kind, d.where, d.factor) == ("slice", where, pytest.approx(factor))
    assert d.count == n.shape[1 - axis] and "every other element is right" in d.text


def test_noise_on_one_row_is_no_slice() -> None:
    n = RNG.standard_normal((6, 5)) + 3.0
    a = n.copy()
    a[2] += 0.3 * np.random.default_rng(8).standard_normal(5)
    assert kinds(diagnose(report(tensor("W", a, n), input_name=None))) == {"W": "isolated"}


def _tied_max_pair() -> tuple[Any, Any, np.ndarray]:
    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x.reshape(-1, 4).max(axis=1), x

    def backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
        windows = x.reshape(-1, 4)  # every tied maximum gets dout
        return ((windows == windows.max(axis=1, keepdims=True)) * dout[:, None]).reshape(x.shape)

    x = np.random.default_rng(0).standard_normal(16)
    x[:4] = 0.0  # one window tied at 0
    return forward, backward, x


@pytest.mark.parametrize("kinks", ["hull", "subgradient"])
def test_a_tied_maximum_counted_for_every_element(kinks: str) -> None:
    forward, backward, x = _tied_max_pair()
    rep = gc.check_pair(forward, backward, x, kinks=kinks)
    d = only(rep)
    assert d.kind == "tie_counted", str(rep)
    assert d.elements == [(0,), (1,), (2,), (3,)]
    assert "4 times the slope" in d.text and "must share it" in d.text
    assert "outside" not in d.text and "ReLU'(0)" not in d.text  # each is inside its hull


def test_the_tie_check_reads_the_report_it_is_given() -> None:
    x = np.array([0.0, 0.0, 1.0, -1.0])
    tied = np.array([True, True, False, False])
    analytic = np.array([1.0, 1.0, 0.0, 1.0])  # each tied element given the whole 1
    rep = report(tensor("x", analytic, [0.5, 0.5, 0.0, 1.0], kink=tied, value=x), kinks="hull")
    rep.ties = [TieFinding((("x", (0,)), ("x", (1,))), 0.0, 2.0, 1.0)]
    assert kinds(diagnose(rep)) == {"x": "tie_counted"}
    rep.ties = []  # no word of a tie: a convention outside the hull
    assert kinds(diagnose(rep)) == {"x": "kink_convention"}
    rep.ties = [TieFinding((("x", (0,)), ("x", (1,)), ("x", (2,))), 0.0, 2.0, 1.0)]
    assert kinds(diagnose(rep)) == {}  # the counts disagree: neither a tie nor a convention


def test_relu_without_its_upper_mask_through_the_engine() -> None:
    class ReLU6:
        def forward(self, x: np.ndarray) -> np.ndarray:
            self.x = x
            return np.clip(x, 0, 6)

        def backward(self, g: np.ndarray) -> np.ndarray:
            return g * (self.x > 0)  # forgot * (x < 6)

    x = 5 * np.random.default_rng(3).standard_normal((8, 5))
    d = only(gc.check_layer(ReLU6(), x))
    assert (d.kind, d.where) == ("missing_mask", "x > 6")


def test_a_delay_whose_backward_forgot_the_shift() -> None:
    class Delay:
        def forward(self, x: np.ndarray) -> np.ndarray:
            y = np.zeros_like(x)
            y[:, 1:] = x[:, :-1]
            return y

        def backward(self, g: np.ndarray) -> np.ndarray:
            return g  # should be g shifted back by one step

    d = only(gc.check_layer(Delay(), np.random.default_rng(3).standard_normal((4, 6))))
    assert (d.kind, d.where) == ("shifted", "axis 1, by +1")
    assert "x[:, 0] holds other values" in d.text


@pytest.mark.parametrize("corruption", ["noise", "random", "few_noise"])
def test_random_corruption_gets_no_strong_kind(corruption: str) -> None:
    rng = np.random.default_rng(1)
    if corruption == "noise":
        a = DX + 0.1 * rng.standard_normal(DX.shape)
    elif corruption == "random":
        a = rng.standard_normal(DX.shape)
    else:
        a = DX.copy()
        a.flat[[3, 17]] += rng.standard_normal(2)
    found = kinds(diagnose(report(tensor("x", a, DX, value=X))))
    assert set(found.values()) <= {"isolated"}, found
    if corruption == "few_noise":
        assert found == {"x": "isolated"}


def test_correct_tensors_get_nothing() -> None:
    assert diagnose(report(tensor("x", DX, DX, value=X), tensor("W", DW, DW))) == []


@pytest.mark.parametrize("analytic, numeric", [
    (np.zeros(0), np.zeros(0)),                     # empty
    (np.array(1.0), np.array(np.nan)),              # 0-d, not measured
    (np.ones((3, 3)), np.full((3, 3), np.nan)),     # nothing measured
    (np.ones((3, 3)), np.zeros((3, 3))),            # numeric all zero: no sign, no scale
    (np.full(4, np.inf), np.ones(4)),               # non-finite analytic
])
def test_degenerate_tensors_never_raise_and_claim_no_pattern(analytic: np.ndarray,
                                                             numeric: np.ndarray) -> None:
    t = tensor("t", analytic, numeric)
    t.status = "FAILED"
    found = kinds(diagnose(report(t, input_name=None)))
    assert not set(found.values()) & {"sign", "scale", "transpose", "offset", "swapped",
                                      "zero"}, found


def test_unverified_elements_are_left_out_and_said() -> None:
    a = DW.copy()
    a[1, 2] += 0.01
    a[3, 0] += 0.5  # disagrees, but the engine could not decide there
    t = tensor("W", a, DW)
    t.failed[3, 0] = False
    t.unverified = 1
    d = only(report(t, input_name=None))
    assert (d.kind, d.elements) == ("isolated", [(1, 2)])
    assert "could not be verified" in d.text and "all 15 others are right" not in d.text


def test_no_diagnosis_when_the_numeric_gradient_cannot_be_trusted() -> None:
    from gradcheck.report import Problem

    rep = report(tensor("W", -DW, DW), input_name=None)
    rep.problems = [Problem("nondeterministic", "forward is not deterministic")]
    assert diagnose(rep) == []


def test_a_report_without_arrays_gets_nothing() -> None:
    t = TensorResult(name="W", shape=(2, 2), dtype="float64", mode="full", size=4,
                     mismatched=4, max_abs_err=1.0, max_rel_err=1.0, status="FAILED")
    assert diagnose(report(t)) == []


def test_a_million_elements_are_diagnosed() -> None:
    big = np.random.default_rng(2).standard_normal(10**6)
    assert only(report(tensor("w", -big, big), input_name=None)).kind == "sign"


def test_to_dict_is_strict_json_with_every_key() -> None:
    d = Diagnosis("W", "offset", "text", constant=float("nan"), elements=[(1, 2)])
    entry = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert entry == {"tensor": "W", "kind": "offset", "text": "text", "factor": None,
                     "other": None, "constant": "nan", "where": None, "elements": [[1, 2]],
                     "count": 0}


# --------------------------------------------------------------------------- real layers

MISTAKES = textwrap.dedent('''
    """The classic hand-derivation mistakes, one factory each (what tests/test_diagnosis.py
    checks through the API, the command line and the pytest plugin)."""
    import numpy as np


    class Dense:
        def __init__(self, n_in=4, n_out=3, seed=1):
            rng = np.random.default_rng(seed)
            self.params = {"W": rng.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                           "b": 0.5 * rng.standard_normal(n_out)}
            self.grads = {}

        def forward(self, x):
            self.x = x
            return x @ self.params["W"] + self.params["b"]

        def backward(self, g):
            self.grads = {"W": self.x.T @ g, "b": g.sum(axis=0)}
            return g @ self.params["W"].T


    class MeanDW(Dense):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"] = self.grads["W"] / len(g)   # the loss sums over the batch
            return dx


    class SignDW(Dense):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"] = -self.grads["W"]
            return dx


    class TransposedDW(Dense):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"] = g.T @ self.x
            return dx


    class SwappedDxDW(Dense):
        def backward(self, g):
            dx = super().backward(g)
            dx, self.grads["W"] = self.grads["W"], dx   # x and W both (4, 4)
            return dx


    class OneWrongElement(Dense):
        def backward(self, g):
            dx = super().backward(g)
            self.grads["W"][17, 9] += 1e-3 * np.abs(self.grads["W"]).max()
            return dx


    class ReLUNoMask:
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, g):
            return g                                    # forgot * (x > 0)


    class ReLUGradAtZero2(ReLUNoMask):
        def backward(self, g):
            return g * np.where(self.x > 0, 1.0, np.where(self.x < 0, 0.0, 2.0))


    class SoftmaxCENoOneHot:
        targets = np.array([0, 2, 1, 1, 0, 2, 2, 1])

        def forward(self, z):
            e = np.exp(z - z.max(axis=1, keepdims=True))
            self.p = e / e.sum(axis=1, keepdims=True)
            return -np.mean(np.log(self.p[np.arange(len(z)), self.targets]))

        def backward(self, g):
            return g * self.p / len(self.p)             # forgot - onehot(targets)


    def mean_dW():
        return MeanDW(4, 3)


    def sign_dW():
        return SignDW(4, 3)


    def transposed_dW():
        return TransposedDW(4, 4)


    def swapped_dx_dW():
        return SwappedDxDW(4, 4)


    def one_wrong_element():
        return OneWrongElement(30, 20)


    def relu_no_mask():
        return ReLUNoMask()


    def relu_grad_at_zero_2():
        return ReLUGradAtZero2()


    def softmax_ce_no_onehot():
        return SoftmaxCENoOneHot()
''')

# factory, input shape, options, {tensor: kind}, words the text must hold
CASES = {
    "mean_dW": ((8, 4), {}, {"W": "scale"}, ["0.125", "8 is the batch size"]),
    "transposed_dW": ((8, 4), {}, {"W": "transpose"}, ["transposed", "diagonal"]),
    "relu_no_mask": ((8, 5), {}, {"x": "missing_mask"}, ["x < 0"]),
    "sign_dW": ((8, 4), {}, {"W": "sign"}, ["-numeric"]),
    "softmax_ce_no_onehot": ((8, 3), {}, {"x": "offset"}, ["one element in each of the 8 rows",
                                                           "columns 0, 2, 1, 1, 0, 2, 2, 1"]),
    "swapped_dx_dW": ((4, 4), {}, {"x": "swapped", "W": "swapped"}, ["swapped"]),
    "relu_grad_at_zero_2": ((8, 5), {"kinks": "hull"}, {"x": "kink_convention"},
                            ["outside every valid convention"]),
    "one_wrong_element": ((4, 30), {"mode": "full"}, {"W": "isolated"}, ["W[17, 9]"]),
}
CLI_OPTIONS = {"kinks": "--kinks", "mode": "--mode"}


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    path = tmp_path_factory.mktemp("layers") / "mistakes.py"
    path.write_text(MISTAKES)
    spec = importlib.util.spec_from_file_location("mistakes_for_diagnosis", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _input(shape: tuple[int, ...], zeros: bool) -> np.ndarray:
    x = np.random.default_rng(3).standard_normal(shape)
    if zeros:
        x.flat[::3] = 0.0  # on the kinks
    return x


@pytest.mark.parametrize("name", list(CASES))
def test_the_api_names_each_mistake_on_the_right_tensor(mistakes: ModuleType, name: str) -> None:
    shape, options, expected, words = CASES[name]
    layer = getattr(mistakes, name)()
    rep = gc.check_layer(layer, _input(shape, "kinks" in options), **options)
    text = str(rep)
    assert kinds(rep.diagnoses) == expected, text
    for d in rep.diagnoses:
        for word in words:
            assert word in d.text, d.text
    assert "likely cause" in text
    for d in rep.diagnoses:
        assert d.text in text
    entry = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert {d["tensor"]: d["kind"] for d in entry["diagnoses"]} == expected
    for t in rep.tensors:  # the full arrays are reachable
        assert t.analytic.shape == t.numeric.shape == t.shape


def test_the_transposed_gradient_is_named_on_the_mutant_bank_square_dense() -> None:
    from layer_bank import DenseTransposedDW, sample

    rep = gc.check_layer(DenseTransposedDW(4, 4, seed=1), sample((8, 4), 12))
    assert kinds(rep.diagnoses) == {"W": "transpose"}


@pytest.mark.parametrize("name", list(CASES))
def test_the_command_line_shows_the_diagnosis(mistakes: ModuleType, name: str,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from gradcheck.cli import main

    shape, options, expected, words = CASES[name]
    monkeypatch.chdir(Path(mistakes.__file__).parent)
    monkeypatch.setitem(sys.modules, "mistakes", mistakes)
    argv = ["check", f"mistakes:{name}", "--shape", ",".join(map(str, shape))]
    for key, value in options.items():
        argv += [CLI_OPTIONS[key], value]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "likely cause" in out
    for word in words:
        assert word in out, out
    assert main([*argv, "--json"]) == 1
    entry = json.loads(capsys.readouterr().out)
    assert {d["tensor"]: d["kind"] for d in entry["diagnoses"]} == expected


PLUGIN_TESTS = textwrap.dedent('''
    import numpy as np
    import pytest

    import mistakes

    CASES = {cases!r}


    @pytest.mark.parametrize("name", list(CASES))
    def test_mistake(gradcheck, name):
        shape, options = CASES[name]
        x = np.random.default_rng(3).standard_normal(shape)
        if "kinks" in options:
            x.flat[::3] = 0.0
        gradcheck.check_layer(getattr(mistakes, name)(), x, **options)
''')


def test_the_pytest_failure_text_shows_the_diagnosis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mistakes=MISTAKES)
    cases = {name: (shape, options) for name, (shape, options, _, _) in CASES.items()}
    pytester.makepyfile(test_mistakes=PLUGIN_TESTS.format(cases=cases))
    result = pytester.runpytest("-p", "no:benchmark")
    result.assert_outcomes(failed=len(CASES))
    text = result.stdout.str()
    assert text.count("likely cause:") >= len(CASES), text  # CI=true repeats them in the summary
    for _, _, expected, words in CASES.values():
        for tensor_name, kind in expected.items():
            assert f"  - {tensor_name} ({kind}): " in text
        for word in words:
            assert word in text


# --------------------------------------------------------------------------- the picture


def test_plot_draws_a_png_of_the_failing_tensors(mistakes: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rep = gc.check_layer(mistakes.transposed_dW(), _input((8, 4), False))
    path = rep.plot(tmp_path / "check.png")
    assert path == tmp_path / "check.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_handles_scalars_vectors_and_higher_ranks(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cube = RNG.standard_normal((2, 3, 4))
    rep = report(tensor("s", np.array(-1.0), np.array(1.0)), tensor("v", -DX[0], DX[0]),
                 tensor("c", 2 * cube, cube, measured=cube > -1), input_name=None)
    rep.diagnoses = diagnose(rep)
    assert rep.plot(tmp_path / "shapes.png").stat().st_size > 0


def test_command_line_png(mistakes: ModuleType, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from gradcheck.cli import main

    monkeypatch.chdir(Path(mistakes.__file__).parent)
    monkeypatch.setitem(sys.modules, "mistakes", mistakes)
    png = tmp_path / "relu.png"
    assert main(["check", "mistakes:relu_no_mask", "--shape", "8,5", "--png", str(png)]) == 1
    assert "likely cause:" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_to_dict_can_carry_the_full_arrays(mistakes: ModuleType) -> None:
    rep = gc.check_layer(mistakes.sign_dW(), _input((8, 4), False))
    entry = json.loads(json.dumps(rep.to_dict(arrays=True), allow_nan=False))
    W = next(t for t in entry["tensors"] if t["name"] == "W")
    assert np.allclose(np.array(W["analytic"]), -np.array(W["numeric"]))  # the sign error
    assert np.array(W["failed"]).all() and np.array(W["error_bar"]).shape == (4, 3)
    assert "analytic" not in rep.to_dict()["tensors"][0]


# --------------------------------------------------------------------------- fast mode, other doors


def test_fast_mode_says_what_the_located_elements_show_and_asks_for_full() -> None:
    from layer_bank import Dense, DenseSignDW, sample

    rep = gc.check_layer(DenseSignDW(100, 100, seed=1), sample((8, 100), 3), mode="fast")
    assert kinds(rep.diagnoses) == {"W": "needs_full"}, str(rep)
    assert "at every wrong one, analytic = -numeric" in rep.diagnoses[0].text

    class FirstRowFlipped(Dense):  # the located elements cannot tell it from DenseSignDW
        def backward(self, g: np.ndarray) -> np.ndarray:
            dx = super().backward(g)
            self.grads["W"] = self.grads["W"].copy()
            self.grads["W"][0] *= -1
            return dx

    rep = gc.check_layer(FirstRowFlipped(200, 300, seed=0), sample((16, 200), 0), seed=0)
    assert kinds(rep.diagnoses) == {"W": "needs_full"}, str(rep)  # auto: fast for W

    class Noisy(Dense):
        def backward(self, g: np.ndarray) -> np.ndarray:
            dx = super().backward(g)
            self.grads["W"] = self.grads["W"] + np.random.default_rng(0).standard_normal(
                self.grads["W"].shape)
            return dx

    rep = gc.check_layer(Noisy(100, 100, seed=1), sample((8, 100), 3), mode="fast")
    assert kinds(rep.diagnoses) == {"W": "needs_full"}, str(rep)
    assert "mode='full' would diagnose" in rep.diagnoses[0].text


def test_generated_plugin_item_shows_the_diagnosis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mistakes=MISTAKES)
    result = pytester.runpytest("--gradcheck-layer=mistakes:relu_no_mask",
                                "--gradcheck-shape=8,5", "--gradcheck-seeds=1",
                                "-p", "no:benchmark")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["likely cause:", "  - x (missing_mask): *x < 0*"])


def test_python_dash_m_gradcheck_json_carries_the_diagnosis(mistakes: ModuleType) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "gradcheck", "check", "mistakes:softmax_ce_no_onehot",
         "--shape", "8,3", "--json"],
        capture_output=True, text=True, cwd=Path(mistakes.__file__).parent, check=False)
    assert result.returncode == 1, result.stderr
    diagnoses = json.loads(result.stdout)["diagnoses"]
    assert [(d["tensor"], d["kind"]) for d in diagnoses] == [("x", "offset")]
    assert diagnoses[0]["elements"] == [[i, t] for i, t in enumerate([0, 2, 1, 1, 0, 2, 2, 1])]


def test_plot_without_matplotlib_names_the_extra(mistakes: ModuleType, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from gradcheck.cli import main

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    rep = gc.check_layer(mistakes.sign_dW(), _input((8, 4), False))
    with pytest.raises(ImportError, match=r"pip install matplotlib \(gradcheck.s plot extra\)"):
        rep.plot(tmp_path / "no.png")
    monkeypatch.chdir(Path(mistakes.__file__).parent)
    monkeypatch.setitem(sys.modules, "mistakes", mistakes)
    code = main(["check", "mistakes:sign_dW", "--shape", "8,4", "--png", str(tmp_path / "no.png")])
    out, err = capsys.readouterr()
    # the verdict's exit code (1: a wrong gradient) wins over the picture that could not be made
    assert code == 1 and "likely cause:" in out and "pip install matplotlib" in err
    assert not (tmp_path / "no.png").exists()


def test_a_check_warns_nothing_where_the_numbers_overflow_when_squared() -> None:
    """Error bars near 1e173 (exp at 400) overflow when squared in the diagnosis's weighted
    fits: the fit is refused, and numpy's overflow warning is none of the user's business."""
    x = 400 + np.random.default_rng(4).uniform(0, 1, 5)
    with warnings.catch_warnings(record=True) as caught:  # "error" would be caught inside
        warnings.simplefilter("always")
        rep = gc.check_function(lambda v: float(np.sum(np.exp(v))),
                                lambda v: 1.0005 * np.exp(v), x)
    assert rep.status == "FAILED", str(rep)
    assert [str(w.message) for w in caught] == []
