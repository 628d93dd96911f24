"""A loss that draws random numbers: named as such, never read as kinks or as state, and
checked exactly with ``reset_random=True``.

The loss is word2vec's skip-gram with one negative sample drawn from a global generator
(numpy's legacy ``np.random`` or Python's ``random``) at every call, the way such losses
are written; its gradient reads the negative the last loss call drew.
"""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gradcheck as gc

VOCAB, DIM = 20, 4


def softplus(z):
    return np.logaddexp(0.0, z)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class SkipGram:
    """One (center, context) pair and one negative drawn per loss call by ``draw``;
    ``sign`` = -1 flips the center gradient (a wrong backward)."""

    def __init__(self, draw, sign=1.0, center=3, context=7):
        rng = np.random.default_rng(5)
        self.params = {"W_in": rng.standard_normal((VOCAB, DIM)),
                       "W_out": rng.standard_normal((VOCAB, DIM))}
        self.draw, self.sign, self.center, self.context = draw, sign, center, context
        self.negative = 0

    def loss(self):
        self.negative = self.draw()
        v = self.params["W_in"][self.center]
        u, n = self.params["W_out"][self.context], self.params["W_out"][self.negative]
        return float(softplus(-u @ v) + softplus(n @ v))

    def grads(self):
        v = self.params["W_in"][self.center]
        u, n = self.params["W_out"][self.context], self.params["W_out"][self.negative]
        pull, push = 1.0 - sigmoid(u @ v), sigmoid(n @ v)
        g_in, g_out = np.zeros((VOCAB, DIM)), np.zeros((VOCAB, DIM))
        g_in[self.center] = self.sign * (-pull * u + push * n)
        g_out[self.context] += -pull * v
        g_out[self.negative] += push * v
        return {"W_in": g_in, "W_out": g_out}


DRAWS = {
    "np.random": lambda: int(np.random.randint(VOCAB)),  # noqa: NPY002
    "random": lambda: random.randrange(VOCAB),
}


def _check(model, **options):
    return gc.check_params(model.loss, model.grads, model.params, **options)


@pytest.mark.parametrize("draw", DRAWS, ids=list(DRAWS))
@pytest.mark.parametrize("state", range(8))
def test_a_sampling_loss_is_named_nondeterministic_and_nothing_else(draw, state):
    """Property: without reset_random, at any state of the global generators, a loss that
    samples is FAILED with exactly one problem, 'nondeterministic', which names the global
    generators and suggests reset_random=True; no tensor verdict blames the gradient."""
    np.random.seed(state)  # noqa: NPY002
    random.seed(state)
    report = _check(SkipGram(DRAWS[draw]))
    assert report.status == gc.Status.FAILED
    assert [p.kind for p in report.problems] == ["nondeterministic"], report
    text = report.problems[0].text
    assert "global random generators" in text and "reset_random=True" in text, text
    assert all(t.mismatched == 0 for t in report.tensors), report
    assert "accumulat" not in str(report) and "keeps state" not in str(report), report


@pytest.mark.parametrize("draw", DRAWS, ids=list(DRAWS))
@pytest.mark.parametrize("state", range(8))
def test_reset_random_checks_a_sampling_loss_exactly(draw, state):
    """Property: with reset_random=True the correct gradient is ok and the one with the
    center gradient's sign flipped is FAILED at W_in's center row (a mismatch, not a kink),
    at any state of the global generators."""
    np.random.seed(state)  # noqa: NPY002
    random.seed(state)
    right = _check(SkipGram(DRAWS[draw]), reset_random=True, seed=state)
    assert right.ok, right
    assert right.tensors[0].kinks.met == 0, right
    wrong = _check(SkipGram(DRAWS[draw], sign=-1.0), reset_random=True, seed=state)
    assert wrong.status == gc.Status.FAILED, wrong
    [failed] = [t for t in wrong.tensors if not t.ok]
    assert failed.name == "W_in" and failed.failure == "MISMATCH", wrong
    assert set(np.argwhere(failed.failed)[:, 0]) == {3}, wrong


def test_reset_random_leaves_the_global_generators_as_it_found_them():
    np.random.seed(11)  # noqa: NPY002
    random.seed(11)
    before = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    _check(SkipGram(DRAWS["np.random"]), reset_random=True)
    _check(SkipGram(DRAWS["random"]), reset_random=True)
    after = np.random.get_state()[1], random.getstate()  # noqa: NPY002
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1]


def test_reset_random_with_an_executor_scans_in_this_process_and_says_so():
    """Threads share the global generators: the check calls the loss here, one call at a
    time, and notes that the executor was not used; the verdict is the exact one."""
    with ThreadPoolExecutor(2) as pool:
        report = _check(SkipGram(DRAWS["np.random"], sign=-1.0), reset_random=True,
                        executor=pool)
    assert report.status == gc.Status.FAILED, report
    assert report.tensors[0].failure == "MISMATCH", report
    assert any("executor was not used" in n.text for n in report.notes), report.notes


def test_a_loss_that_seeds_itself_needs_no_reset():
    """A loss that seeds the global generator itself answers the same at the same point:
    checked as any deterministic loss (its gradient right: ok; flipped: FAILED)."""
    def seeded():
        np.random.seed(0)  # noqa: NPY002
        return int(np.random.randint(VOCAB))  # noqa: NPY002

    assert _check(SkipGram(seeded)).ok
    wrong = _check(SkipGram(seeded, sign=-1.0))
    assert wrong.status == gc.Status.FAILED and not wrong.problems, wrong
