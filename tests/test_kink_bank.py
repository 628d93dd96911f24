"""The kink bank: correct layers evaluated exactly on their kinks must pass.

ReLU at 0 under conventions 0, 0.5, 1, 0.25, 0.9; leaky ReLU; |x| with sign(0) = 0; max-pool,
row max and elementwise max with exact ties; clipping at its corners; and many kinks crossed at
once (zero rows through a bias-free Dense + ReLU, dead units behind zero biases, an all-zero
batch); float32; batch 1 and width 1.  Each case lives in ``tests/layer_bank.py``.

With the default kinks="subgradient" every case passes and the report counts the kinks it met;
single-kink (elementwise) cases also pass under kinks="hull", which is exact for them.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc

import layer_bank as lb  # tests/ is on sys.path (pytest setting "pythonpath")
from report_checks import assert_report_consistent

CASES = list(lb.KINK_CASES.values())
HULL = {c.name: c for c in CASES if c.hull_ok}


def _params_bytes(layer):
    return {k: (v, v.tobytes()) for k, v in (getattr(layer, "params", None) or {}).items()}


def _kinks(rep, field="met"):
    return sum(getattr(t.kinks, field) for t in rep.tensors)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", lb.as_params(lb.KINK_CASES))
def test_correct_layer_on_kinks_passes(case, seed):
    layer, x = case.make()
    x_bytes, params = x.tobytes(), _params_bytes(layer)
    rep = gc.check_layer(layer, x, seed=seed, **case.opts)
    assert_report_consistent(rep)
    text = str(rep)

    assert rep.ok, f"false alarm on correct layer {case.name} ({case.doc}):\n{text}"
    assert bool(rep)
    assert not rep.problems, text
    rep.raise_if_failed()  # does not raise
    assert _kinks(rep) > 0, f"{case.name}: the report met no kink, yet kinks are crossed:\n{text}"
    for t in rep.tensors:
        k = t.kinks
        assert k.unverified == 0 and k.skipped == 0, f"{t.name}: {k}\n{text}"
        assert k.met == k.by_hull + k.by_jitter, f"{t.name}: {k}\n{text}"
    assert "kink" in text
    assert x.tobytes() == x_bytes, "the checker left x changed"
    for k, (arr, raw) in params.items():
        assert layer.params[k] is arr and arr.tobytes() == raw, f"params[{k!r}] not restored"


@pytest.mark.parametrize("case", lb.as_params(HULL))
def test_single_kink_layers_pass_under_hull(case):
    """For elementwise layers (one kink per coordinate) the hull test is exact: a valid
    convention lies inside [min(d-, d+), max(d-, d+)], so kinks="hull" passes too."""
    layer, x = case.make()
    rep = gc.check_layer(layer, x, seed=0, kinks="hull", **case.opts)
    assert_report_consistent(rep)
    assert rep.ok, f"{case.name} ({case.doc}) failed under kinks='hull':\n{rep}"
    assert _kinks(rep, "by_hull") > 0, str(rep)
    assert _kinks(rep, "by_jitter") == 0, str(rep)


def test_multikink_outside_hull_is_rechecked_at_a_jittered_point():
    """x = 0 through Dense(W = [[1, -2]]) + ReLU'(0) = 0 with upstream (1, -1): the one-sided
    slopes along x are 1 (right) and 2 (left), the chain rule with ReLU'(0) = 0 gives 0, outside
    the hull.  "subgradient" re-checks at a jittered point, passes, and says so in a warning;
    "hull" fails (a documented false alarm of the hull test with several kinks at once)."""
    layer, x = lb.multikink_outside_hull()
    rep = gc.check_layer(layer, x, seed=0, **lb.KINK_CASES["multikink_outside_hull"].opts)
    assert rep.ok, str(rep)
    tx = {t.name: t for t in rep.tensors}["x"]
    assert tx.kinks.met == 1 and tx.kinks.by_jitter == 1, str(rep)
    [note] = [n for n in rep.notes if n.kind == "kink_outside_hull"]
    assert note.tensor == "x" and "jittered point" in note.text, rep.warnings
    # check_layer sees the outputs: an elementwise map would have been judged by its exact
    # hull, so the note names the cause (several kinks in one step), and blames no code
    assert "no elementwise map" in note.text and "it is a bug" not in note.text, note.text

    rep_hull = gc.check_layer(layer, x, seed=0, kinks="hull",
                              upstream=np.array([[1.0, -1.0]]))
    assert not rep_hull.ok, str(rep_hull)
    worst = {t.name: t for t in rep_hull.tensors}["x"].worst
    assert worst and worst[0].analytic == 0.0, str(rep_hull)
    assert worst[0].numeric == pytest.approx(1.5, rel=1e-6), str(rep_hull)  # (1 + 2) / 2


@pytest.mark.parametrize("seed", [0, 1])
def test_hidden_kinks_with_a_flat_loss_are_no_false_alarm(seed):
    """ReLU(0.5) -> Dense(W = [[-1]]) -> ReLU(0.5) at x = 0: x moves the first ReLU's input
    and, through the negative weight, the second one's, both from their kink; the loss is 0 on
    both sides, so no kink shows in the one-sided differences, while the chain rule with the
    valid convention ReLU'(0) = 0.5 gives -0.25 g.  Correct code, with several kinks crossed
    at once; at any jittered point the analytic value is exact.  It must pass, and say in a
    warning that the point itself could not be verified."""
    layer, x = lb.hidden_kinks_relu_negdense_relu()
    rep = gc.check_layer(layer, x, seed=seed)
    assert rep.ok, str(rep)
    assert rep.warnings, str(rep)


@pytest.mark.parametrize("c", [0.0, 0.5, 1.0])
def test_relu_convention_strict_mode_flags_kinks(c):
    """kinks="strict" treats a kink as an ordinary point (torch's behaviour): the central
    difference at ReLU(0) is g/2, so only the convention 0.5 can agree with it there."""
    layer, x = lb.ReLU(grad_at_zero=c), lb.sample((1, 3), 0)
    x[0, 0] = 0.0
    rep = gc.check_layer(layer, x, seed=0, kinks="strict")
    assert rep.ok == (c == 0.5), str(rep)


def test_bank_size():
    assert len(lb.KINK_CASES) >= 25
    for case in CASES:
        assert case.doc and "\n" not in case.doc, case.name
