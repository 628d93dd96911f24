"""mode="fast": random directions, one joint direction per dtype, group testing, and the
memory a check needs.

The banks of layer_bank run in fast mode too: a wrong backward is never ok, a correct one
(kinks, ties, float32, float16) is never FAILED. Counts of loss evaluations are exact.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gradcheck as gc
import reference_nets as rn
from gradcheck.engine import fast

from layer_bank import (
    KINK_CASES,
    LOW_PRECISION_CORRECT,
    LOW_PRECISION_MUTANTS,
    MUTANTS,
    SENSITIVITY_MUTANTS,
    TIE_BUGS,
    TIE_CONVENTIONS,
    Case,
)

SEEDS = (0, 1, 2)


def _options(case: Case) -> dict:
    return {k: v for k, v in case.opts.items() if k not in ("mode", "seed")}


@pytest.mark.parametrize("case", [*MUTANTS.values(), *SENSITIVITY_MUTANTS.values(),
                                  *TIE_BUGS.values()], ids=repr)
def test_a_wrong_backward_is_never_ok_in_fast_mode(case: Case) -> None:
    """Every mutant, tie bug and 1e-6 sensitivity mutant of the banks, checked in fast
    mode on three seeds: never ok (found and located, or at worst unverified)."""
    for seed in SEEDS:
        report = gc.check_layer(*case.make(), mode="fast", seed=seed, **_options(case))
        assert not report.ok, f"seed {seed}: {case.doc}\n{report}"


@pytest.mark.parametrize("case", [*KINK_CASES.values(), *TIE_CONVENTIONS.values()], ids=repr)
def test_a_correct_kinked_layer_is_never_failed_in_fast_mode(case: Case) -> None:
    """Correct layers on kinks and ties (ReLU'(0) conventions, zero rows, first argmax,
    even splits): no FAILED tensor and no problem in fast mode."""
    for seed in SEEDS:
        report = gc.check_layer(*case.make(), mode="fast", seed=seed, **_options(case))
        assert not report.problems, str(report)
        assert all(t.status != "FAILED" for t in report.tensors), f"seed {seed}\n{report}"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.longdouble], ids=str)
@pytest.mark.parametrize("name", sorted(LOW_PRECISION_MUTANTS))
def test_a_low_precision_wrong_backward_is_never_ok_in_fast_mode(name: str, dtype: type) -> None:
    for seed in range(4):
        layer, x = LOW_PRECISION_MUTANTS[name](dtype, seed)
        report = gc.check_layer(layer, x, mode="fast", seed=seed)
        assert not report.ok, f"{name} {dtype} seed {seed}\n{report}"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.longdouble], ids=str)
@pytest.mark.parametrize("name", sorted(LOW_PRECISION_CORRECT))
def test_a_low_precision_correct_layer_is_never_failed_in_fast_mode(name: str, dtype: type
                                                                   ) -> None:
    for seed in range(4):
        layer, x = LOW_PRECISION_CORRECT[name](dtype, seed)
        report = gc.check_layer(layer, x, mode="fast", seed=seed)
        assert all(t.status != "FAILED" for t in report.tensors), str(report)


# ---------------------------------------------------------------------------- counts


class WrongElement(rn.Dense):
    """reference_nets.Dense with dW[index] off by ``share`` x max|dW|."""

    def __init__(self, n_in: int, n_out: int, index: tuple[int, int], share: float) -> None:
        super().__init__(n_in, n_out, rng=0)
        self.index, self.share = index, share

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_y)
        dw = self.grads["W"]
        dw[self.index] += self.share * np.abs(dw).max()
        return dx


def test_one_element_off_by_one_percent_among_a_million_is_found_and_located() -> None:
    """Dense(1000, 1000): 1,001,000 parameters and 8,000 inputs. One element of dW off by
    1 % of max|dW| is named with its index, with O(log n) evaluations per level."""
    layer = WrongElement(1000, 1000, (123, 456), 0.01)
    x = np.random.default_rng(2).standard_normal((8, 1000))
    report = gc.check_layer(layer, x, mode="fast")
    w = next(t for t in report.tensors if t.name == "W")
    assert w.status == "FAILED" and w.worst[0].index == (123, 456), str(report)
    assert [t.status for t in report.tensors if t.name != "W"] == ["ok", "ok"]
    levels = int(np.ceil(np.log2(w.size / fast.LEAF_SIZE)))
    # 3 at the point; the joint direction (4); x and b alone (2 each, linear); then per
    # level two halves of at most 4 each, and the leaf of LEAF_SIZE measured with its
    # second look (4 per element at most)
    assert report.evaluations["loss"] <= 3 + 4 + 2 * 2 + 8 * levels + 4 * fast.LEAF_SIZE
    assert report.evaluations["grads"] <= 4


def test_a_wrong_tensor_leaves_the_right_ones_verified() -> None:
    """The joint direction disagrees; each tensor is then tested alone: the right ones
    (x, b) are verified, not failed nor left unverified on the wrong one's account (what
    that costs, 2 evaluations each, is bounded in the test above)."""
    layer = WrongElement(200, 100, (3, 4), 0.5)
    report = gc.check_layer(layer, np.random.default_rng(1).standard_normal((8, 200)),
                            mode="fast")
    statuses = {t.name: t.status for t in report.tensors}
    assert statuses == {"x": "ok", "W": "FAILED", "b": "ok"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.longdouble], ids=str)
def test_fast_mode_restores_every_param_bit_for_bit(dtype: type) -> None:
    """Contiguous, Fortran-ordered and strided params, moved in place chunk by chunk, come
    back bit for bit."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((300, 400)).astype(dtype)
    params = {"c": base.copy(), "f": np.asfortranarray(base.copy()),
              "s": base.copy()[:, ::2]}
    saved = {k: v.copy() for k, v in params.items()}

    def loss() -> float:
        return float(sum(np.sum(np.sin(p.astype(np.float64))) for p in params.values()))

    def grads() -> dict[str, np.ndarray]:
        return {k: np.cos(v.astype(np.float64)).astype(dtype) for k, v in params.items()}

    report = gc.check_params(loss, grads, params, mode="fast")
    assert all(t.mode == "fast" for t in report.tensors)
    assert report.ok or dtype is np.float32, str(report)
    for name, array in params.items():
        assert array.tobytes() == saved[name].tobytes(), name


# ---------------------------------------------------------------------------- memory


def test_fast_mode_extra_peak_memory_is_below_three_times_the_checked_tensors() -> None:
    """A fast check of Dense(1000, 1000) allocates at most 3x the bytes of the tensors it
    checks (x, W, b) on top of what the layer holds: the saved copy of the point (1x), the
    analytic gradient (1x), and chunk-sized buffers; the report keeps no more. Measured by
    tracemalloc, which sees numpy's allocations (a count of bytes, not of seconds)."""
    layer = rn.Dense(1000, 1000, rng=0)
    x = np.random.default_rng(2).standard_normal((8, 1000))
    assert gc.check_layer(layer, x, mode="fast").ok  # the layer's own buffers exist now
    checked = x.nbytes + sum(p.nbytes for p in layer.params.values())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        report = gc.check_layer(layer, x, mode="fast")
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert report.ok
    assert peak <= 3 * checked, f"extra peak {peak / checked:.2f}x the checked tensors"


def test_fast_mode_reports_progress_over_every_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress counts the coordinates of every tensor, fast ones included, and fires on
    evaluations too (a slow forward still reports); the last call is (total, total)."""
    from gradcheck.engine import calls

    monkeypatch.setattr(calls, "PROGRESS_INTERVAL", 0.0)  # every chance to report is taken
    seen: list[tuple[int, int]] = []
    layer = rn.Dense(100, 60, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 100))
    report = gc.check_layer(layer, x, mode="fast", progress=lambda d, t: seen.append((d, t)))
    total = x.size + sum(p.size for p in layer.params.values())
    assert report.ok
    assert len(seen) >= report.evaluations["loss"] - 2  # from the first planned evaluation on
    assert seen[-1] == (total, total)
    assert all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
