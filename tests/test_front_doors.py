"""The front doors: check_pair / check_loss on layers written in the style of the best-known
course's assignments (forward returns (out, cache), backward(dout, cache) returns the
gradients), the assert_* functions, and the typed keyword-only options.

Every layer below is checked in one line and passes; a wrong variant of each (a classic
mistake) fails. Arrays are small: a check costs two evaluations per element.
"""
from __future__ import annotations

import inspect
import io
import pydoc
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import GradcheckArgumentError, GradcheckUsageError, GradientShapeError
from gradcheck.options import OPTION_NAMES

RNG = np.random.default_rng(20261123)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


# ----------------------------------------------------------------------------- the layers
# Written the way the course's layers.py / rnn_layers.py are, including their habits:
# caches as tuples, dict params mutated by forward, np.random.seed in dropout.


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def affine_backward_wrong(dout, cache):  # db averaged instead of summed over the batch
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, db / dout.shape[0]


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def relu_backward_wrong(dout, cache):  # the mask taken from dout instead of from x
    return dout * (dout > 0)


def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean = bn_param.get("running_mean", np.zeros(x.shape[1]))
    running_var = bn_param.get("running_var", np.zeros(x.shape[1]))
    mu, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    out = gamma * xhat + beta
    bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu  # mutated
    bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    return out, (xhat, gamma, var, eps)


def batchnorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    n = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (
        n * np.sqrt(var + eps))
    return dx, dgamma, dbeta


def batchnorm_backward_wrong(dout, cache):  # forgets that mean and variance depend on x
    xhat, gamma, var, eps = cache
    return dout * gamma / np.sqrt(var + eps), (dout * xhat).sum(axis=0), dout.sum(axis=0)


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, _, h, wd = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = 1 + (h + 2 * pad - hh) // stride, 1 + (wd + 2 * pad - ww) // stride
    out = np.zeros((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache, *, crop=True):
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            dw += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
            dxp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww] += np.tensordot(
                dout[:, :, i, j], w, axes=([1], [0]))
    db = dout.sum(axis=(0, 2, 3))
    start = pad if crop else 0
    return dxp[:, :, start:start + x.shape[2], start:start + x.shape[3]], dw, db


def conv_backward_wrong(dout, cache):  # dx cut from the padded array without removing the pad
    return conv_backward_naive(dout, cache, crop=False)


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, h, w = x.shape
    out = np.zeros((n, c, 1 + (h - ph) // s, 1 + (w - pw) // s))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache, *, average=False):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            if average:
                share = np.full(window.shape, 1 / (ph * pw))
            else:
                share = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += share * dout[:, :, i:i + 1, j:j + 1]
    return dx


def max_pool_backward_wrong(dout, cache):  # spreads the gradient over the window
    return max_pool_backward_naive(dout, cache, average=True)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    a = x @ Wx + prev_h @ Wh + b
    h = prev_h.shape[1]
    i, f, o, g = sigmoid(a[:, :h]), sigmoid(a[:, h:2 * h]), sigmoid(a[:, 2 * h:3 * h]), \
        np.tanh(a[:, 3 * h:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache, *, through_c=True):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_h * o * (1 - tc ** 2) + (dnext_c if through_c else 0)
    da = np.hstack([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o),
                    dc * i * (1 - g ** 2)])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_step_backward_wrong(dnext_h, dnext_c, cache):  # drops the gradient from next_c
    return lstm_step_backward(dnext_h, dnext_c, cache, through_c=False)


def word_embedding_forward(x, W):
    return W[x], (x, W.shape)


def word_embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape)
    np.add.at(dW, x, dout)
    return dW


def word_embedding_backward_wrong(dout, cache):  # fancy-index += loses repeated words
    x, shape = cache
    dW = np.zeros(shape)
    dW[x] += dout
    return dW


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])  # noqa: NPY002 - the course does this
    mask = None
    out = x
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p  # noqa: NPY002
        out = x * mask
    return out, (dropout_param, mask)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout


def dropout_backward_wrong(dout, cache):  # the mask without its 1/p scale
    _, mask = cache
    return dout * (mask > 0)


def softmax_loss(x, y, *, per_batch=True):
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_p[np.arange(n), y].sum() / n
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return loss, dx / n if per_batch else dx


def softmax_loss_wrong(x, y):  # forgets to divide the gradient by the batch size
    return softmax_loss(x, y, per_batch=False)


def svm_loss(x, y, *, count_margins=True):
    n = x.shape[0]
    correct = x[np.arange(n), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    positive = (margins > 0).astype(float)
    dx = positive.copy()
    if count_margins:
        dx[np.arange(n), y] -= positive.sum(axis=1)
    return loss, dx / n


def svm_loss_wrong(x, y):  # the correct class's gradient is left out
    return svm_loss(x, y, count_margins=False)


def temporal_softmax_loss(x, y, mask, *, use_mask=True):
    n, t, v = x.shape
    flat, yf, mf = x.reshape(n * t, v), y.reshape(n * t), mask.reshape(n * t)
    probs = np.exp(flat - flat.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.sum(mf * np.log(probs[np.arange(n * t), yf])) / n
    dx = probs.copy()
    dx[np.arange(n * t), yf] -= 1
    dx /= n
    if use_mask:
        dx *= mf[:, None]
    return loss, dx.reshape(n, t, v)


def temporal_softmax_loss_wrong(x, y, mask):  # the gradient ignores the mask
    return temporal_softmax_loss(x, y, mask, use_mask=False)


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    h, prev, caches = np.zeros((x.shape[0], x.shape[1], h0.shape[1])), h0, []
    for t in range(x.shape[1]):
        prev, cache = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h[:, t] = prev
        caches.append(cache)
    return h, caches


def rnn_backward(dh, caches, *, carry=True):
    x0, _, Wx, Wh, _ = caches[0]
    n, t_steps, _ = dh.shape
    dx = np.zeros((n, t_steps, x0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[1])
    dprev = np.zeros((n, Wh.shape[0]))
    for t in reversed(range(t_steps)):
        upstream = dh[:, t] + (dprev if carry else 0)
        dx[:, t], dprev, dwx, dwh, dbt = rnn_step_backward(upstream, caches[t])
        dWx += dwx
        dWh += dwh
        db += dbt
    return dx, dprev, dWx, dWh, db


def rnn_backward_wrong(dh, caches):  # the gradient from later steps is not carried back
    return rnn_backward(dh, caches, carry=False)


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    eps = gn_param.get("eps", 1e-5)
    n, c, h, w = x.shape
    grouped = x.reshape(n, G, c // G, h, w)
    mu = grouped.mean(axis=(2, 3, 4), keepdims=True)
    var = grouped.var(axis=(2, 3, 4), keepdims=True)
    xhat = ((grouped - mu) / np.sqrt(var + eps)).reshape(x.shape)
    return gamma * xhat + beta, (xhat, gamma, var, eps, G)


def spatial_groupnorm_backward(dout, cache, *, full=True):
    xhat, gamma, var, eps, G = cache
    n, c, h, w = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(n, G, c // G, h, w)
    xg = xhat.reshape(n, G, c // G, h, w)
    m = (c // G) * h * w
    dx = dxhat
    if full:
        dx = (m * dxhat - dxhat.sum(axis=(2, 3, 4), keepdims=True)
              - xg * (dxhat * xg).sum(axis=(2, 3, 4), keepdims=True)) / m
    return (dx / np.sqrt(var + eps)).reshape(dout.shape), dgamma, dbeta


def spatial_groupnorm_backward_wrong(dout, cache):  # as if mean and variance were constants
    return spatial_groupnorm_backward(dout, cache, full=False)


def leaky_relu_forward(x, alpha):
    return np.where(x > 0, x, alpha * x), (x, alpha)


def leaky_relu_backward(dout, cache):
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, alpha)


def leaky_relu_backward_wrong(dout, cache):  # alpha forgotten on the negative side
    x, _ = cache
    return dout * (x > 0)


# ----------------------------------------------------------------------------- cases

N, D, M = 3, 4, 5

PAIRS = {
    "affine": (affine_forward, affine_backward, affine_backward_wrong,
               lambda: (randn(N, 2, 2), randn(D, M), randn(M))),
    "relu": (relu_forward, relu_backward, relu_backward_wrong, lambda: (randn(N, D),)),
    "batchnorm": (batchnorm_forward, batchnorm_backward, batchnorm_backward_wrong,
                  lambda: (randn(N + 1, D), randn(D), randn(D), {"mode": "train"})),
    "conv": (conv_forward_naive, conv_backward_naive, conv_backward_wrong,
             lambda: (randn(2, 2, 4, 4), randn(2, 2, 3, 3), randn(2), {"stride": 1, "pad": 1})),
    "max_pool": (max_pool_forward_naive, max_pool_backward_naive, max_pool_backward_wrong,
                 lambda: (randn(2, 2, 4, 4),
                          {"pool_height": 2, "pool_width": 2, "stride": 2})),
    "lstm_step": (lstm_step_forward, lstm_step_backward, lstm_step_backward_wrong,
                  lambda: (randn(N, D), randn(N, 2), randn(N, 2), randn(D, 8), randn(2, 8),
                           randn(8))),
    "word_embedding": (word_embedding_forward, word_embedding_backward,
                       word_embedding_backward_wrong,
                       lambda: (np.array([[0, 3, 3], [1, 0, 3]]), randn(5, D))),
    "dropout": (dropout_forward, dropout_backward, dropout_backward_wrong,
                lambda: (randn(N, D), {"p": 0.6, "mode": "train", "seed": 123})),
    "rnn_step": (rnn_step_forward, rnn_step_backward,
                 lambda d, c: (*rnn_step_backward(d, c)[:4], -rnn_step_backward(d, c)[4]),
                 lambda: (randn(N, D), randn(N, 2), randn(D, 2), randn(2, 2), randn(2))),
    "rnn_over_time": (rnn_forward, rnn_backward, rnn_backward_wrong,
                      lambda: (randn(2, 3, D), randn(2, 2), randn(D, 2), randn(2, 2),
                               randn(2))),
    "spatial_groupnorm": (spatial_groupnorm_forward, spatial_groupnorm_backward,
                          spatial_groupnorm_backward_wrong,
                          lambda: (randn(2, 4, 2, 2), randn(1, 4, 1, 1), randn(1, 4, 1, 1), 2,
                                   {})),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward, leaky_relu_backward_wrong,
                   lambda: (randn(N, D), 0.1)),
}

LOSSES = {
    "softmax": (softmax_loss, softmax_loss_wrong, lambda: (randn(N, M), np.array([0, 4, 2]))),
    "svm": (svm_loss, svm_loss_wrong, lambda: (randn(N, M), np.array([1, 4, 2]))),
    "temporal_softmax": (temporal_softmax_loss, temporal_softmax_loss_wrong,
                         lambda: (randn(2, 3, 4), np.array([[0, 3, 1], [2, 2, 0]]),
                                  np.array([[True, True, False], [True, False, False]]))),
}


@pytest.mark.parametrize("name", PAIRS)
def test_each_pair_is_one_line_and_passes(name: str) -> None:
    forward, backward, _, make = PAIRS[name]
    args = make()
    before = [a.copy() if isinstance(a, np.ndarray) else dict(a) if isinstance(a, dict) else a
              for a in args]
    report = gc.check_pair(forward, backward, *args)
    assert report.ok, str(report)
    for arg, old in zip(args, before, strict=True):  # the caller's arguments are untouched
        if isinstance(arg, np.ndarray):
            assert np.array_equal(arg, old)
        else:
            assert arg == old


@pytest.mark.parametrize("name", PAIRS)
def test_a_wrong_backward_of_each_pair_fails(name: str) -> None:
    forward, _, wrong, make = PAIRS[name]
    report = gc.check_pair(forward, wrong, *make())
    assert report.status == "FAILED", str(report)
    with pytest.raises(gc.GradientMismatch):
        gc.assert_pair(forward, wrong, *make())


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_is_one_line_and_passes(name: str) -> None:
    fn, _, make = LOSSES[name]
    report = gc.assert_loss(fn, *make())
    assert report.ok and [t.name for t in report.tensors] == ["x"]


@pytest.mark.parametrize("name", LOSSES)
def test_a_wrong_gradient_of_each_loss_fails(name: str) -> None:
    _, wrong, make = LOSSES[name]
    assert gc.check_loss(wrong, *make()).status == "FAILED"


def test_tensors_are_named_from_forward_and_the_report_repeats_the_call() -> None:
    x, w, b = randn(N, D), randn(D, M), randn(M)
    report = gc.check_pair(affine_forward, affine_backward, x, w, b, seed=4)
    assert [t.name for t in report.tensors] == ["x", "w", "b"]
    assert report.input_name == "x" and report.output_shape == (N, M)
    assert report.repeat.startswith("check_pair(affine_forward, affine_backward, x, w, b, seed=4")
    assert "affine_forward" in report.title and "w (4, 5) float64" in report.title


def test_lstm_tensors_and_two_upstreams() -> None:
    args = PAIRS["lstm_step"][3]()
    report = gc.check_pair(lstm_step_forward, lstm_step_backward, *args)
    assert [t.name for t in report.tensors] == ["x", "prev_h", "prev_c", "Wx", "Wh", "b"]
    # the upstream of next_c matters: with it zero the wrong backward would pass
    zero_c = (randn(N, 2), np.zeros((N, 2)))
    assert gc.check_pair(lstm_step_forward, lstm_step_backward_wrong, *args,
                         upstream=zero_c).ok
    assert not gc.check_pair(lstm_step_forward, lstm_step_backward_wrong, *args).ok


def test_the_bn_param_forward_mutates_is_fresh_for_every_call() -> None:
    x, gamma, beta = randn(4, D), randn(D), randn(D)
    bn_param = {"mode": "train", "running_mean": np.ones(D)}
    report = gc.check_pair(batchnorm_forward, batchnorm_backward, x, gamma, beta, bn_param)
    assert report.ok, str(report)
    assert set(bn_param) == {"mode", "running_mean"} and np.array_equal(bn_param["running_mean"],
                                                                         np.ones(D))


def test_dropout_without_a_seed_is_named_not_deterministic() -> None:
    report = gc.check_pair(dropout_forward, dropout_backward, randn(N, D),
                           {"p": 0.5, "mode": "train"})
    assert not report.ok
    assert any(p.kind == "nondeterministic" for p in report.problems)


def test_integer_indices_pass_through_and_are_not_checked() -> None:
    x, W = np.array([[0, 3, 3], [1, 0, 3]]), randn(5, D)
    report = gc.check_pair(word_embedding_forward, word_embedding_backward, x, W)
    assert [t.name for t in report.tensors] == ["W"] and report.input_name == "W"


# ----------------------------------------------------------------------------- clear errors


def test_backward_with_too_few_gradients_says_how_many_and_for_what() -> None:
    def short(dout, cache):
        return affine_backward(dout, cache)[:2]

    with pytest.raises(GradientShapeError, match=r"returned 2 gradients, expected 3: one per "
                       r"float array argument of affine_forward\(x, w, b\), in order: dx, dw, db"):
        gc.check_pair(affine_forward, short, randn(N, D), randn(D, M), randn(M))


def test_an_integer_input_is_named_when_the_count_is_off() -> None:
    with pytest.raises(GradientShapeError, match=r"expected 2.*x \(int64 array \(3, 4\)\).*"
                       r"astype\(np.float64\)"):
        gc.check_pair(affine_forward, affine_backward, np.ones((N, D), dtype=np.int64),
                      randn(D, M), randn(M))


def test_swapped_gradients_are_pointed_out() -> None:
    def swapped(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dw, dx, db

    with pytest.raises(GradientShapeError, match=r"gradient 1 of 3 \(dx\) with shape \(4, 4\), "
                       r"expected \(4, 4\)|are the gradients in forward's argument order"):
        gc.check_pair(affine_forward, swapped, randn(D, D + 1), randn(D + 1, D), randn(D))
    with pytest.raises(GradientShapeError, match="the shape of 'w'"):
        gc.check_pair(affine_forward, swapped, randn(N, D), randn(D, N), randn(N))


def test_one_float_argument_takes_one_array_or_a_1_tuple() -> None:
    assert gc.check_pair(relu_forward, lambda d, c: (relu_backward(d, c),), randn(N, D)).ok
    with pytest.raises(GradientShapeError, match="returned 2 gradients, expected 1"):
        gc.check_pair(relu_forward, lambda d, c: (relu_backward(d, c), None), randn(N, D))


def test_forward_without_a_cache_is_a_usage_error() -> None:
    with pytest.raises(GradcheckUsageError, match=r"returned an array of shape \(3, 4\): "
                       r"check_pair needs forward to return \(out, cache\)"):
        gc.check_pair(lambda x: np.maximum(x, 0), relu_backward, randn(N, D))
    with pytest.raises(GradcheckUsageError, match=r"returned a float: check_loss needs fn to "
                       r"return \(loss, dx\)"):
        gc.check_loss(lambda x: float(np.sum(x)), randn(3))


def test_no_float_argument_is_a_usage_error() -> None:
    with pytest.raises(GradcheckUsageError, match=r"no float numpy array.*x: list"):
        gc.check_pair(relu_forward, relu_backward, [[1.0, -1.0]])


def test_backward_returning_none_names_the_gradient() -> None:
    with pytest.raises(GradientShapeError, match=r"None as gradient 3 of 3 \(db\)"):
        gc.check_pair(affine_forward, lambda d, c: (*affine_backward(d, c)[:2], None),
                      randn(N, D), randn(D, M), randn(M))


@pytest.mark.parametrize("backward, with_w, named", [
    (lambda d, c: None, False, r"None \(a missing return\?\) as the gradient dx"),
    (lambda d, c: "dx", False, r"a str as the gradient dx"),
    (lambda d, c: ("dx", c.T @ d), True, r"a str as gradient 1 of 2 \(dx\)"),
], ids=["bare None", "str", "str in a tuple"])
def test_a_gradient_that_is_not_an_array_is_named_for_what_it_is(backward, with_w, named
                                                                 ) -> None:
    """A bare None is a missing return; a str is a str, alone or inside the tuple."""
    if with_w:
        with pytest.raises(GradientShapeError, match=named):
            gc.check_pair(lambda x, w: (x @ w, x), backward, randn(N, D), randn(D, M))
    else:
        with pytest.raises(GradientShapeError, match=named):
            gc.check_pair(lambda x: (np.maximum(x, 0), x), backward, randn(N, D))


def test_upstream_can_be_given_and_is_checked() -> None:
    x = randn(N, D)
    g = randn(N, D)
    report = gc.check_pair(relu_forward, relu_backward, x, upstream=g)
    assert report.ok
    with pytest.raises(GradcheckUsageError, match=r"upstream has shape \(2,\) but "
                       r"relu_forward\(x\) has shape \(3, 4\)"):
        gc.check_pair(relu_forward, relu_backward, x, upstream=np.ones(2))
    with pytest.raises(GradcheckUsageError, match="pass upstream as a tuple of 2 arrays"):
        gc.check_pair(lstm_step_forward, lstm_step_backward, *PAIRS["lstm_step"][3](),
                      upstream=randn(N, 2))


# ----------------------------------------------------------------------------- assert_*


class Square:
    def forward(self, x):
        self.x = x
        return x ** 2

    def backward(self, g):
        return 2 * self.x * g


def test_assert_functions_return_the_ok_report_and_raise_with_its_text() -> None:
    x = randn(2, 3)
    assert gc.assert_layer(Square(), x).ok
    assert gc.assert_function(lambda v: float(np.sum(v ** 3)), lambda v: 3 * v ** 2, x).ok
    params = {"w": x.copy()}
    assert gc.assert_params(lambda: float(np.sum(params["w"] ** 2)),
                            lambda: {"w": 2 * params["w"]}, params).ok
    with pytest.raises(gc.GradientMismatch, match=r"(?s)gradcheck: FAILED.*repeat with: "
                       r"check_function\(f, grad, x"):
        gc.assert_function(lambda v: float(np.sum(v ** 3)), lambda v: 2 * v ** 2, x)


def test_an_unverified_report_raises_too() -> None:
    def f(v):  # a huge constant offset: the loss's rounding hides its changes
        return 1e13 + float(np.sum(v ** 2))

    report = gc.check_function(f, lambda v: 2 * v, randn(3))
    assert report.status == "UNVERIFIED", str(report)
    with pytest.raises(gc.GradientMismatch, match="UNVERIFIED"):
        gc.assert_function(f, lambda v: 2 * v, randn(3))


# ----------------------------------------------------------------------------- options

DOORS = [gc.check_layer, gc.check_function, gc.check_params, gc.check_pair, gc.check_loss,
         gc.assert_layer, gc.assert_function, gc.assert_params, gc.assert_pair, gc.assert_loss]


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.__name__)
def test_every_door_takes_every_option_keyword_only(door) -> None:
    parameters = inspect.signature(door).parameters
    for name in OPTION_NAMES:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert str(parameters["mode"].annotation) in ("Mode", "typing.Literal['auto', 'full', 'fast']")


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.__name__)
def test_every_door_has_the_defaults_of_the_one_options_object(door) -> None:
    defaults = gc.Options()
    parameters = inspect.signature(door).parameters
    for name in OPTION_NAMES:
        assert parameters[name].default == getattr(defaults, name), name


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.__name__)
def test_help_of_every_door_lists_every_option_with_its_meaning(door) -> None:
    text = pydoc.render_doc(door, renderer=pydoc.plaintext)
    for name in OPTION_NAMES:
        assert f"{name}:" in text, name  # in the signature
    for meaning in ("- rtol, atol:", "- mode:", "- kinks:", "- seed:", "- executor:",
                    "- progress:"):
        assert meaning in text, meaning  # in the options paragraph
    assert "Options (keyword-only" in text


def test_help_of_check_layer_shows_the_allowed_values() -> None:
    text = pydoc.render_doc(gc.check_layer, renderer=pydoc.plaintext)
    assert "upstream:" in text
    assert "'auto', 'full', 'fast'" in text and "'subgradient', 'hull', 'strict', 'skip'" in text


def test_a_raised_mismatch_carries_the_report() -> None:
    class WrongSquare(Square):
        def backward(self, g):
            return 3 * self.x * g

    with pytest.raises(gc.GradientMismatch) as caught:
        gc.assert_layer(WrongSquare(), np.array([[1.0, -2.0]]), upstream=np.ones((1, 2)))
    report = caught.value.report
    assert report is not None and not report.ok and str(caught.value) == str(report)
    with pytest.raises(gc.GradientMismatch) as again:
        report.raise_if_failed()
    assert again.value.report is report


@pytest.mark.parametrize("door, args", [
    (gc.check_layer, (Square(), np.ones(3))),
    (gc.check_function, (np.sum, np.ones_like, np.ones(3))),
    (gc.check_pair, (relu_forward, relu_backward, np.ones(3))),
    (gc.check_loss, (softmax_loss, np.ones((1, 3)), np.array([0]))),
    (gc.check_params, (lambda: 0.0, lambda: {"w": np.zeros(2)}, {"w": np.ones(2)})),
    (gc.assert_layer, (Square(), np.ones(3))),
    (gc.assert_params, (lambda: 0.0, lambda: {"w": np.zeros(2)}, {"w": np.ones(2)})),
], ids=lambda v: getattr(v, "__name__", ""))
def test_a_misspelled_option_names_the_door_and_the_nearest_option(door, args) -> None:
    with pytest.raises(GradcheckArgumentError,
                       match=rf"^{door.__name__}\(\) got an unexpected option 'rtl' "
                             r"\(did you mean 'rtol'\?\)"):
        door(*args, rtl=1e-3)
    with pytest.raises(TypeError):  # also what Python raises for such a call
        door(*args, seeed=1)


def test_an_option_passed_by_position_says_options_are_keyword_only() -> None:
    with pytest.raises(GradcheckArgumentError, match=r"takes 2 positional arguments \(layer, x\)"
                       r" but 3 were given: options are keyword-only, e\.g\. "
                       r"check_layer\(layer, x, rtol=\.\.\.\)"):
        gc.check_layer(Square(), np.ones(3), 1e-3)  # type: ignore[misc]


def test_mypy_flags_a_misspelled_option_and_a_wrong_mode(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    source = tmp_path / "uses_gradcheck.py"
    source.write_text(textwrap.dedent("""
        import numpy as np
        import gradcheck as gc

        class Square:
            def forward(self, x: np.ndarray) -> np.ndarray:
                return x ** 2
            def backward(self, g: np.ndarray) -> np.ndarray:
                return g

        gc.check_layer(Square(), np.ones(3), rtl=1e-3)
        gc.check_pair(print, print, np.ones(3), mode="slow")
        gc.check_layer(object(), np.ones(3))

        from gradcheck.plugin import Checker
        Checker().check_pair(print, print, np.ones(3), atl=1e-3)
        gc.check_pair(print, print, np.ones(3), fixed=3)
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental",
                             "--ignore-missing-imports", "--follow-imports=silent", str(source)],
                            capture_output=True, text=True, check=False,
                            cwd=Path(gc.__file__).parent.parent)
    out = result.stdout
    assert 'Unexpected keyword argument "rtl" for "check_layer"' in out, out
    assert '"mode" to "check_pair" has incompatible type "Literal[\'slow\']"' in out, out
    assert '"check_layer" has incompatible type "object"; expected "Layer"' in out, out
    assert 'Unexpected keyword argument "atl"; did you mean "atol"?' in out, out  # the fixture
    assert '"fixed" to "check_pair" has incompatible type "int"' in out, out


# ----------------------------------------------------------------------------- progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_true_draws_a_bar_on_a_terminal_and_erases_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert gc.check_pair(affine_forward, affine_backward, randn(N, D), randn(D, M), randn(M),
                         progress=True).ok
    shown = terminal.getvalue()
    assert "\rchecking [" in shown and "(100%)" in shown
    assert shown.endswith("\r")  # erased: what follows starts on a clean line


def test_progress_true_is_silent_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gc.check_loss(softmax_loss, randn(N, M), np.array([0, 1, 2]), progress=True).ok
    assert capsys.readouterr().err == ""


def test_a_progress_callback_counts_every_tensor_to_the_end() -> None:
    calls: list[tuple[int, int]] = []
    gc.check_pair(affine_forward, affine_backward, randn(N, D), randn(D, M), randn(M),
                  mode="full", progress=lambda done, total: calls.append((done, total)))
    assert calls, "never called"
    done, total = calls[-1]
    assert done == total == N * D + D * M + M


def test_an_argument_of_forward_given_by_keyword_is_pointed_out() -> None:
    with pytest.raises(GradcheckArgumentError, match=r"check_pair\(\) got an unexpected option "
                       r"'conv_param' \('conv_param' is a parameter of conv_forward_naive\(\): "
                       r"pass the arguments of the function under test by position"):
        gc.check_pair(conv_forward_naive, conv_backward_naive, randn(1, 1, 3, 3),
                      randn(1, 1, 2, 2), randn(1), conv_param={"stride": 1, "pad": 0})


def test_the_upstream_is_never_the_users_own_default_rng_stream() -> None:
    """A user who builds x with default_rng(0) (the seed's default) must not get an
    upstream equal to x: a ReLU backward that returns x * mask instead of g * mask would
    then pass. The check's generator is seeded apart from default_rng(seed)."""

    class ReluUsingX:
        def forward(self, x: np.ndarray) -> np.ndarray:
            self.x = x
            return np.maximum(x, 0)

        def backward(self, g: np.ndarray) -> np.ndarray:
            return self.x * (self.x > 0)

    for seed in (0, 1, 7):
        x = np.random.default_rng(seed).standard_normal((5, 6))
        assert gc.check_layer(ReluUsingX(), x, seed=seed).status == "FAILED"
