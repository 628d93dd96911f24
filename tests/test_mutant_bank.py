"""The mutant bank: deliberately wrong backward passes that the checker must catch and name.

Each mutant lives in ``tests/layer_bank.py`` (a factory with a one-line docstring saying what is
wrong).  Three kinds:

* wrong gradients: the report fails, and names the wrong tensor (status line and worst-element
  lines of ``str(report)``); tensors the bug cannot reach are reported ok;
* misbehaving layers: the report fails with the misbehaviour named in ``report.problems``;
* wrong gradient shapes / keys: ``gc.GradientShapeError`` (a ValueError) naming the key.

In every case nothing the user passed in is left changed (bit for bit).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import gradcheck as gc

import layer_bank as lb  # tests/ is on sys.path (pytest setting "pythonpath")
from report_checks import assert_report_consistent


def _snapshot(layer, x):
    params = getattr(layer, "params", None) or {}
    return x.tobytes(), {k: (v, v.tobytes()) for k, v in params.items()}


def _assert_untouched(layer, x, snap):
    x_bytes, params = snap
    assert x.tobytes() == x_bytes, "the checker left the input x changed"
    for k, (arr, raw) in params.items():
        assert layer.params[k] is arr, f"params[{k!r}] was replaced, not restored in place"
        assert arr.tobytes() == raw, f"params[{k!r}] not restored bit for bit"


def _status_line(text, name):
    """The report-table row of tensor ``name`` (first cell == name)."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return line
    raise AssertionError(f"no table row for tensor {name!r} in the report:\n{text}")


def _by_name(rep):
    return {t.name: t for t in rep.tensors}


def _assert_index_in_report(rep, text, name, index):
    t = _by_name(rep)[name]
    assert tuple(index) in [tuple(m.index) for m in t.worst], (
        f"{name}{list(index)} is not among the worst elements of {name}:\n{text}"
    )
    shown = f"{name}[{', '.join(map(str, index))}]"
    assert shown in text, f"{shown} not shown in the report:\n{text}"


@pytest.mark.parametrize("case", lb.as_params(lb.MUTANTS))
def test_mutant_is_caught_and_named(case):
    layer, x = case.make()
    snap = _snapshot(layer, x)
    rep = gc.check_layer(layer, x, **{"seed": 0, **case.opts})
    assert_report_consistent(rep)
    text = str(rep)

    assert not rep.ok, f"mutant {case.name} ({case.doc}) let through:\n{text}"
    assert not bool(rep)
    tensors = _by_name(rep)
    for name in case.bad:
        assert not tensors[name].ok, f"{name} not reported FAILED:\n{text}"
        assert tensors[name].mismatched > 0
        assert "FAILED" in _status_line(text, name), text
        assert re.search(rf"^\s+{re.escape(name)}\[", text, re.M), (
            f"no worst-element line for {name} in the report:\n{text}"
        )
    for name in case.good:
        assert tensors[name].ok, f"{name} is correct but was reported FAILED:\n{text}"
        assert "FAILED" not in _status_line(text, name), text
    if case.index is not None:
        _assert_index_in_report(rep, text, case.bad[0], case.index)
    _assert_untouched(layer, x, snap)

    with pytest.raises(gc.GradientMismatch) as err:
        rep.raise_if_failed()
    assert isinstance(err.value, AssertionError)
    for name in case.bad:
        assert f"{name}[" in str(err.value)


def test_one_wrong_element_of_60000_is_localised_not_scanned():
    """Fast mode finds the one wrong element by group testing: far fewer evaluations than a
    full scan (2 per coordinate), and only that element of W is reported mismatched."""
    layer, x = lb.dense_one_wrong_element_of_60000()
    rep = gc.check_layer(layer, x, seed=0, mode="fast")
    W = _by_name(rep)["W"]
    assert not W.ok
    assert W.shape == (300, 200)
    assert W.mode == "fast"
    assert W.mismatched == 1, str(rep)
    assert [tuple(m.index) for m in W.worst][:1] == [(123, 45)], str(rep)
    n_coords = sum(int(np.prod(t.shape)) for t in rep.tensors)
    assert rep.evaluations["loss"] < n_coords / 10, rep.evaluations


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_grad_at_zero_2_is_never_a_silent_pass(seed):
    """ReLU'(0) = 2 under the default kinks="subgradient": it may pass only with the
    unverifiable kinks listed as warnings: a kink the checker cannot verify is never a
    silent pass."""
    layer, x = lb.relu_grad_at_zero_2()
    rep = gc.check_layer(layer, x, seed=seed)
    assert_report_consistent(rep)
    if rep.ok:
        assert rep.warnings, str(rep)
        assert any(_names(w, "x") and "kink" in w for w in rep.warnings), str(rep)
    rep_hull = gc.check_layer(layer, x, seed=seed, kinks="hull")
    assert not rep_hull.ok, str(rep_hull)


@pytest.mark.parametrize("case", lb.as_params(lb.PROBLEM_MUTANTS))
def test_misbehaviour_is_named_in_problems(case):
    layer, x = case.make()
    x_before = x.copy()
    rep = gc.check_layer(layer, x, seed=0)
    text = str(rep)
    assert not rep.ok, f"{case.name} ({case.doc}) let through:\n{text}"
    assert rep.problems, f"{case.name}: report.problems is empty:\n{text}"
    hits = [p for p in rep.problems if re.search(case.problem, p.text)]
    assert hits, f"{case.name}: no problem matching {case.problem!r} in {rep.problems}"
    if case.key:
        assert any(_names(p.text, case.key) for p in hits), (
            f"{case.name}: no problem naming {case.key!r}: {hits}"
        )
    for p in rep.problems:
        assert p.text in text, f"problem {p!r} not shown in str(report)"
    assert x.tobytes() == x_before.tobytes(), "the user's x was left changed"


def _names(message, key):
    """True when ``message`` names ``key`` as a whole word (e.g. 'W', x[0, 1], but not 'Wx')."""
    return re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", message) is not None


@pytest.mark.parametrize("case", lb.as_params(lb.SHAPE_MUTANTS))
def test_wrong_gradient_shape_or_key_raises(case):
    layer, x = case.make()
    snap = _snapshot(layer, x)
    with pytest.raises(gc.GradientShapeError) as err:
        gc.check_layer(layer, x, seed=0)
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, gc.GradcheckUsageError)
    assert _names(str(err.value), case.key), (
        f"message does not name {case.key!r}: {err.value}"
    )
    _assert_untouched(layer, x, snap)


def test_bank_sizes_and_docs():
    assert len(lb.MUTANTS) >= 25
    for bank in (lb.MUTANTS, lb.PROBLEM_MUTANTS, lb.SHAPE_MUTANTS):
        for case in bank.values():
            assert case.doc and "\n" not in case.doc, case.name
