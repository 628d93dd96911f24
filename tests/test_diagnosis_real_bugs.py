"""Bugs people really write, each in the style of the public numpy code it was found in, and
the likely cause (or the place) the diagnosis names for it through the public API.

Each test says the verdict it expects (FAILED), the kind, and the words that make the kind
specific; and, where it is cheap, that the correct version of the same code passes with no
diagnosis, so the rule is seen to fire on the bug and not on the layer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.diagnosis import kinds


def _only(rep: gc.Report, tensor: str) -> Any:
    assert rep.status == "FAILED", str(rep)
    found = [d for d in rep.diagnoses if d.tensor == tensor]
    assert len(found) == 1, str(rep)
    return found[0]


# --------------------------------------------------------------------------- an RNN


def rnn_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                b: np.ndarray) -> tuple[np.ndarray, Any]:
    N, T, _ = x.shape
    h = np.zeros((N, T, Wh.shape[0]))
    prev_h, cache = h0, []
    for t in range(T):
        next_h = np.tanh(x[:, t] @ Wx + prev_h @ Wh + b)
        cache.append((x[:, t], prev_h, next_h))
        h[:, t] = next_h
        prev_h = next_h
    return h, (cache, Wx, Wh)


def rnn_backward(dh: np.ndarray, cache: Any, carried: bool = False) -> tuple[np.ndarray, ...]:
    """``carried=False``: the bug: dx[:, t] from dh[:, t] alone, without dprev_h, while the
    weights' gradients use both."""
    steps, Wx, Wh = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        x_t, prev_h, next_h = steps[t]
        dtanh = (dh[:, t] + dprev_h) * (1 - next_h ** 2)
        dWx += x_t.T @ dtanh
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
        dx[:, t] = (dtanh if carried else dh[:, t] * (1 - next_h ** 2)) @ Wx.T
        dprev_h = dtanh @ Wh.T
    return dx, dprev_h, dWx, dWh, db


def _rnn_args(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    N, T, D, H = 3, 5, 4, 6
    return [rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            0.5 * rng.standard_normal((D, H)), 0.5 * rng.standard_normal((H, H)),
            0.1 * rng.standard_normal(H)]


def test_rnn_input_gradient_without_the_carried_term_is_a_recurrence() -> None:
    rep = gc.check_pair(rnn_forward, rnn_backward, *_rnn_args())
    d = _only(rep, "x")
    assert kinds(rep.diagnoses) == {"x": "recurrence"}, str(rep)
    assert "x[:, -1, :] (the last of 5 steps along axis 1) is right" in d.text
    assert "dh_next" in d.text
    assert d.where == "x[:, :-1, :] (steps 0..3 along axis 1)"
    good = gc.check_pair(rnn_forward, lambda dh, c: rnn_backward(dh, c, carried=True),
                         *_rnn_args())
    assert good.ok and good.diagnoses == [], str(good)


# --------------------------------------------------------------------------- upsampling


def upsample_forward(x: np.ndarray) -> tuple[np.ndarray, Any]:
    """2x nearest-neighbour upsampling of (N, C, H, W)."""
    return x.repeat(2, axis=2).repeat(2, axis=3), x.shape


def upsample_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    return dout[:, :, ::2, ::2]  # the bug: one element of each 2x2 block, not their sum


def upsample_backward_right(dout: np.ndarray, cache: Any) -> np.ndarray:
    N, C, H, W = cache
    return dout.reshape(N, C, H, 2, W, 2).sum(axis=(3, 5))


def test_upsample_backward_taking_a_strided_slice_is_a_block_member() -> None:
    x = np.random.default_rng(1).standard_normal((2, 2, 3, 3))
    rep = gc.check_pair(upsample_forward, upsample_backward, x)
    d = _only(rep, "x")
    assert d.kind == "block_member", str(rep)
    assert d.where == "dout[:, :, ::2, ::2]"
    assert "one element of each 2 x 2 block of the upstream gradient" in d.text
    assert "numeric is the sum of dout over each 2 x 2 block" in d.text
    good = gc.check_pair(upsample_forward, upsample_backward_right, x)
    assert good.ok, str(good)


class AvgPool2x2:
    """Average pooling whose backward puts each window's share on its top-left pixel only."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        N, C, H, W = x.shape
        self.shape = x.shape
        return x.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.zeros(self.shape)
        dx[:, :, ::2, ::2] = dout / 4  # the bug: spread to every pixel of the window
        return dx


def test_pooling_backward_into_one_pixel_per_window_is_a_block_member() -> None:
    rep = gc.check_layer(AvgPool2x2(), np.random.default_rng(2).standard_normal((2, 1, 4, 6)))
    d = _only(rep, "x")
    assert d.kind == "block_member", str(rep)
    assert d.where == "x[:, :, ::2, ::2]"
    assert "0 at the other" in d.text


# --------------------------------------------------------------------------- batch norm


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      bn_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    mode, eps = bn_param["mode"], bn_param.get("eps", 1e-5)
    if mode == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
    else:
        mu, var = bn_param["running_mean"], bn_param["running_var"]
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x, gamma, eps)


def batchnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """The training formula, whatever mode forward ran in: the bug in test mode."""
    x, gamma, eps = cache
    N = x.shape[0]
    inv_std = 1 / np.sqrt(x.var(axis=0) + eps)
    x_hat = (x - x.mean(axis=0)) * inv_std
    dx_hat = dout * gamma
    dx = inv_std / N * (N * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def _bn_args(mode: str) -> list[Any]:
    rng = np.random.default_rng(3)
    D = 4
    return [2 + rng.standard_normal((6, D)), rng.standard_normal(D), rng.standard_normal(D),
            {"mode": mode, "running_mean": np.full(D, 1.5), "running_var": np.full(D, 0.8)}]


def test_frozen_batchnorm_differentiated_with_batch_statistics_is_a_mode_mismatch() -> None:
    rep = gc.check_pair(batchnorm_forward, batchnorm_backward, *_bn_args("test"))
    d = _only(rep, "x")
    assert d.kind == "mode_mismatch", str(rep)
    assert d.text.startswith("analytic is the gradient of batch normalisation over axis 0 "
                             "with the batch's own mean and variance"), d.text
    assert "forward normalises with the running statistics" in d.text
    good = gc.check_pair(batchnorm_forward, batchnorm_backward, *_bn_args("train"))
    assert good.ok, str(good)


class BatchNormFrozenBackward:
    """The opposite mismatch: training-mode forward, backward with the statistics as
    constants (dx = dout * gamma / sigma)."""

    def __init__(self, d: int) -> None:
        self.params = {"gamma": np.linspace(0.5, 1.5, d), "beta": np.zeros(d)}
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inv_std = 1 / np.sqrt(x.var(axis=0) + 1e-5)
        self.x_hat = (x - x.mean(axis=0)) * self.inv_std
        return self.params["gamma"] * self.x_hat + self.params["beta"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"gamma": (dout * self.x_hat).sum(axis=0), "beta": dout.sum(axis=0)}
        return dout * self.params["gamma"] * self.inv_std


def test_training_batchnorm_differentiated_as_frozen_is_a_mode_mismatch() -> None:
    x = np.random.default_rng(4).standard_normal((8, 3))
    rep = gc.check_layer(BatchNormFrozenBackward(3), x)
    d = _only(rep, "x")
    assert d.kind == "mode_mismatch", str(rep)
    assert "treats them as constants" in d.text


# --------------------------------------------------------------------------- softmax


class Softmax:
    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.p = e / e.sum(axis=1, keepdims=True)
        return self.p

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.p * (1 - self.p)  # the bug: the Jacobian's diagonal only


def test_softmax_backward_with_the_diagonal_only_is_named() -> None:
    rep = gc.check_layer(Softmax(), np.random.default_rng(5).standard_normal((6, 5)))
    d = _only(rep, "x")
    assert d.kind == "diagonal_only", str(rep)
    assert "the diagonal of the softmax Jacobian alone" in d.text
    assert "s * (dout - (dout * s).sum(axis=1, keepdims=True))" in d.text


# --------------------------------------------------------------------------- word vectors


def embed_forward(W: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, Any]:
    return W[idx], (idx, W.shape)


def embed_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    idx, shape = cache
    dW = np.zeros(shape)
    dW[idx] += dout  # the bug: a repeated word counted once (np.add.at counts each)
    return dW


def test_embedding_gradient_with_fancy_index_plus_equals_names_the_repeated_rows() -> None:
    rng = np.random.default_rng(6)
    idx = np.array([[1, 4, 1, 7], [3, 4, 0, 9]])  # word 1 twice, word 4 twice
    rep = gc.check_pair(embed_forward, embed_backward, rng.standard_normal((10, 3)), idx)
    d = _only(rep, "W")
    assert d.kind == "repeated_index", str(rep)
    assert "exactly the 2 that idx names more than once (1 (2 times), 4 (2 times))" in d.text
    assert "np.add.at(W, idx, ...)" in d.text
    assert rep.index_arguments.keys() == {"idx"}


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def neg_sampling_loss(outside_vectors: np.ndarray, center_vec: np.ndarray, outside_idx: int,
                      neg_idx: np.ndarray) -> tuple[float, np.ndarray]:
    """Skip-gram negative-sampling loss for one (center, outside) pair, K negatives drawn
    with replacement; the gradient with respect to the outside vectors."""
    u_o = outside_vectors[outside_idx]
    u_k = outside_vectors[neg_idx]
    s_o, s_k = sigmoid(u_o @ center_vec), sigmoid(-u_k @ center_vec)
    loss = -np.log(s_o) - np.sum(np.log(s_k))
    grad = np.zeros_like(outside_vectors)
    grad[outside_idx] += (s_o - 1) * center_vec
    grad[neg_idx] += np.outer(1 - s_k, center_vec)  # the bug: a negative drawn twice
    return float(loss), grad


def test_negative_sampling_with_a_negative_drawn_twice_is_divided_by_its_count() -> None:
    rng = np.random.default_rng(7)
    neg_idx = np.array([2, 5, 2, 8, 5, 5, 6])
    rep = gc.check_loss(neg_sampling_loss, rng.standard_normal((10, 4)),
                        rng.standard_normal(4), 3, neg_idx)
    d = _only(rep, "outside_vectors")
    assert d.kind == "repeated_index", str(rep)
    assert "2 (2 times), 5 (3 times)" in d.text
    assert "there analytic = numeric / (times named)" in d.text


# --------------------------------------------------------------------------- cross-entropy


def cross_entropy(p: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of probabilities p against integer labels, log(p + 1e-7) guarded;
    the gradient ignores the guard."""
    n = p.shape[0]
    rows = np.arange(n)
    loss = -np.sum(np.log(p[rows, t] + 1e-7)) / n
    dp = np.zeros_like(p)
    dp[rows, t] = -1 / (p[rows, t] * n)
    return float(loss), dp


def test_cross_entropy_guarded_by_an_epsilon_backward_ignores_is_named() -> None:
    rng = np.random.default_rng(8)
    z = rng.standard_normal((6, 4))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    rep = gc.check_loss(cross_entropy, p, rng.integers(0, 4, 6))
    d = _only(rep, "p")
    assert d.kind == "epsilon", str(rep)
    assert d.factor == 1e-7
    assert "one eps = 1e-07" in d.text and "divide by p + 1e-07 in backward" in d.text


class SoftmaxWithLoss:
    """The softmax cross-entropy head of the classic textbook: log(y + 1e-7) in forward,
    (y - t) / batch in backward."""

    def __init__(self, t: np.ndarray) -> None:
        self.t = t

    def forward(self, x: np.ndarray) -> float:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(len(self.t))
        return float(-np.sum(np.log(self.y[rows, self.t] + 1e-7)) / len(self.t))

    def backward(self, dout: float = 1.0) -> np.ndarray:
        dx = self.y.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dout * dx / len(self.t)


@pytest.mark.parametrize("labels", ["inferred", "passed"])
def test_softmax_with_loss_guarded_by_an_epsilon_is_named(labels: str) -> None:
    rng = np.random.default_rng(9)
    t = rng.integers(0, 5, 6)
    x = 3 * rng.standard_normal((6, 5))
    if labels == "inferred":  # check_layer: the labels live in the layer
        rep = gc.check_layer(SoftmaxWithLoss(t), x)
    else:
        def softmax_loss(x: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
            layer = SoftmaxWithLoss(t)
            return layer.forward(x), layer.backward()
        rep = gc.check_loss(softmax_loss, x, t)
    d = _only(rep, "x")
    assert d.kind == "epsilon", str(rep)
    assert d.factor == 1e-7
    assert "softmax(x)[target]" in d.text


# ----------------------------------------------------------------------- wrong names a fuzz found

# Each layer below once got a likely cause that was false; the rule now needs the evidence
# the kind stands on, and the test says the kind is not claimed (and what is, where it holds).


class SigmoidOnItsInput:
    """Sigmoid whose backward uses the input where the output was meant: x (1 - x)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return 1 / (1 + np.exp(-x))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.x * (1 - self.x)  # should be y * (1 - y)


def test_sigmoid_backward_on_its_input_when_saturated_is_no_missing_mask() -> None:
    # |x| ~ 20: numeric ~0 everywhere, analytic hundreds; "exactly the elements with x < 40
    # ... the mask (x >= 40) is missing" held at every element and separated nothing
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(4, 6)) * rng.uniform(18, 22, (4, 6))
    rep = gc.check_layer(SigmoidOnItsInput(), x)
    assert rep.status == "FAILED", str(rep)
    assert kinds(rep.diagnoses).get("x") not in {"missing_mask", "inverted_mask"}, str(rep)
    assert all(d.where is None for d in rep.diagnoses), str(rep)


def test_batchnorm_of_a_batch_of_two_with_a_fixed_statistics_backward_is_no_missing_mask(
        ) -> None:
    # a batch of 2 normalises to +-1 whatever x is: numeric 0 at every element, and "the
    # mask (x >= 3)" held at none
    def bn_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[Any, Any]:
        x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
        return gamma * x_hat + beta, (x, gamma)

    def bn_backward_fixed(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
        x, gamma = cache
        x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
        return dout * gamma / np.sqrt(x.var(0) + 1e-5), (dout * x_hat).sum(0), dout.sum(0)

    rng = np.random.default_rng(0)
    rng.choice([-1.0, 1.0], size=(4, 6)) * rng.uniform(18, 22, (4, 6))  # the fuzz's draws
    x = rng.standard_normal((2, 4)).astype(np.float32)
    rep = gc.check_pair(bn_forward, bn_backward_fixed, x, np.ones(4, np.float32),
                        np.zeros(4, np.float32))
    assert rep.status == "FAILED", str(rep)
    assert kinds(rep.diagnoses).get("x") != "missing_mask", str(rep)
    assert all(d.where is None for d in rep.diagnoses), str(rep)


class SoftplusAsExp:
    """Softplus whose backward forgot the denominator: exp(x) where sigmoid(x) was meant."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.logaddexp(0.0, x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * np.exp(self.x)  # should be g * sigmoid(x)


def test_softplus_backward_as_exp_is_not_said_to_have_a_zero_numeric_gradient() -> None:
    # at x ~ +20 analytic ~1e9 inflates every error bar to ~18: numeric -0.8 was "0" there,
    # beside right elements of 1e-9 at x ~ -20
    rng = np.random.default_rng(1)
    x = rng.choice([-1.0, 1.0], size=(4, 6)) * rng.uniform(18, 22, (4, 6))
    rep = gc.check_layer(SoftplusAsExp(), x)
    assert rep.status == "FAILED", str(rep)
    assert kinds(rep.diagnoses).get("x") not in {"missing_mask", "inverted_mask"}, str(rep)
    assert "numeric is 0" not in str(rep)


def svm_loss_without_the_correct_class(x: np.ndarray, y: np.ndarray) -> tuple[float, Any]:
    """Multiclass hinge loss; backward forgets dx[i, y[i]] -= (positive margins of row i)."""
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    dx = (margins > 0).astype(x.dtype)  # missing: dx[np.arange(n), y] -= dx.sum(1)
    return float(margins.sum() / n), dx / n


def test_svm_without_the_correct_class_term_is_no_repeated_index() -> None:
    # y names a class per row, not rows accumulated into: the columns it names twice were
    # the wrong ones by chance (the one named once sat on a kink), and analytic is 0 there,
    # not numeric / 2. Where the wrong elements are, y says: x[i, y[i]]
    x = np.array([[-1., -1., -1., 0.], [-2., 2., -1., 0.], [0., -1., 0., -1.],
                  [-1., 0., -1., -1.], [-2., 1., -1., 1.]])
    y = np.array([1, 1, 2, 0, 0])
    rep = gc.check_loss(svm_loss_without_the_correct_class, x, y, seed=5)
    d = _only(rep, "x")
    assert d.kind == "isolated", str(rep)
    assert "each is the element y picks in its row, x[i, y[i]]" in d.text
    # a larger batch: too many wrong elements for "a few"; the place is the labels' column
    rng = np.random.default_rng(0)
    rep = gc.check_loss(svm_loss_without_the_correct_class, rng.standard_normal((20, 4)),
                        rng.integers(0, 4, 20))
    d = _only(rep, "x")
    assert (d.kind, d.where) == ("location", "x[i, y[i]]"), str(rep)
    assert "the element y picks in each row" in d.text


def test_mlp_without_its_relu_mask_names_no_factor_read_off_one_element() -> None:
    # float32, zero-initialised b1 and four zero input rows: 31 of b1's 32 elements are
    # kinks, and the one left had analytic = -20 x numeric by chance ("20 is axis 1 of x")
    rng = np.random.default_rng([0, 2, 3893])  # the fuzz's seed for this net
    x = rng.standard_normal((16, 20))
    x[:4] = 0.0
    W1 = rng.standard_normal((20, 32)) / np.sqrt(20)
    W2 = rng.standard_normal((32, 10)) / np.sqrt(32)
    y = rng.integers(0, 10, 16)

    class MLPWithoutReLUMask:
        def __init__(self) -> None:
            self.params = {"W1": W1.astype(np.float32), "b1": np.zeros(32, np.float32),
                           "W2": W2.astype(np.float32), "b2": np.zeros(10, np.float32)}

        def forward(self, x: np.ndarray) -> float:
            p = self.params
            self.x = x
            self.h = np.maximum(x @ p["W1"] + p["b1"], 0)
            s = self.h @ p["W2"] + p["b2"]
            s = s - s.max(axis=1, keepdims=True)
            self.logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
            return float(-self.logp[np.arange(len(y)), y].mean())

        def backward(self, g: float = 1.0) -> np.ndarray:
            ds = np.exp(self.logp)
            ds[np.arange(len(y)), y] -= 1
            ds = ds / len(y) * g
            dz1 = ds @ self.params["W2"].T  # missing: * (z1 > 0)
            self.grads = {"W1": self.x.T @ dz1, "b1": dz1.sum(0), "W2": self.h.T @ ds,
                          "b2": ds.sum(0)}
            return dz1 @ self.params["W1"].T

    rep = gc.check_layer(MLPWithoutReLUMask(), x.astype(np.float32), seed=0)
    assert rep.status == "FAILED", str(rep)
    b1 = next(t for t in rep.tensors if t.name == "b1")
    assert int((~b1.kink).sum()) == 1, str(rep)  # the situation the fuzz met
    assert kinds(rep.diagnoses).get("b1") not in {"scale", "sign", "zero"}, str(rep)
    assert "axis 1 of x" not in str(rep)


# --------------------------------------------------------------------------- every door


def test_a_new_kind_reaches_to_dict_the_command_line_and_pytest(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        pytester: pytest.Pytester) -> None:
    import json
    import sys
    import textwrap

    from gradcheck.cli import main

    rep = gc.check_pair(rnn_forward, rnn_backward, *_rnn_args())
    entry = json.loads(json.dumps(rep.to_dict(), allow_nan=False))["diagnoses"]
    assert [(d["tensor"], d["kind"], d["where"]) for d in entry] == [
        ("x", "recurrence", "x[:, :-1, :] (steps 0..3 along axis 1)")]
    assert "likely cause:\n  - x (recurrence): x[:, -1, :]" in str(rep)

    module = textwrap.dedent('''
        import numpy as np

        class Softmax:
            def forward(self, x):
                e = np.exp(x - x.max(axis=1, keepdims=True))
                self.p = e / e.sum(axis=1, keepdims=True)
                return self.p

            def backward(self, dout):
                return dout * self.p * (1 - self.p)

        def softmax():
            return Softmax()
    ''')
    (tmp_path / "softmax_layers.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "softmax_layers", raising=False)
    assert main(["check", "softmax_layers:softmax", "--shape", "6,5"]) == 1
    assert "  - x (diagonal_only): analytic = s (1 - s) x dout" in capsys.readouterr().out
    assert main(["check", "softmax_layers:softmax", "--shape", "6,5", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)["diagnoses"]
    assert [(d["tensor"], d["kind"]) for d in found] == [("x", "diagonal_only")]

    pytester.makepyfile(test_embedding=textwrap.dedent('''
        import numpy as np
        import gradcheck as gc

        def embed_forward(W, idx):
            return W[idx], (idx, W.shape)

        def embed_backward(dout, cache):
            idx, shape = cache
            dW = np.zeros(shape)
            dW[idx] += dout
            return dW

        def test_embedding():
            W = np.random.default_rng(0).standard_normal((6, 3))
            gc.assert_pair(embed_forward, embed_backward, W, np.array([0, 2, 2, 5]))
    '''))
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*likely cause:*", "*W (repeated_index): the wrong rows of W "
                                 "are exactly the 1 that idx names more than once (2 (2 times))*"])
