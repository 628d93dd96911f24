"""The networks of the classic "is my ReLU backprop right?" questions, with closed forms.

Each network writes its math in its docstring and has a closed-form gradient you can
compare your own derivation with; ``tests/test_classic_networks.py`` shows gradcheck
agreeing with every one of them (and catching the usual wrong derivation).

1. :func:`relu_chain_cost` / :func:`relu_chain_grad`: scalar chains
   ``C = 1/2 (y - ReLU(w1 ReLU(w2 ReLU(w3 x))))^2`` with 1, 2 or 3 weights, and
   :func:`naive_relu_chain_grad`, the wrong answer ``(y - ReLU(w1 x)) x``.
2. :class:`TwoLayerNet`: input -> Dense -> ReLU -> Dense -> softmax + cross-entropy.
3. :class:`Net222`: a 2-2-2 ReLU network with ``Theta`` matrices and
   ``J = sum_i 1/2 (a_i - y_i)^2``.
4. :class:`Network`: Nielsen's sigmoid network with quadratic cost; ``backprop(x, y)``
   returns ``(nabla_b, nabla_w)`` from BP1-BP4 in matrix form over a mini-batch.

ReLU'(0) is a convention: every function here takes ``grad_at_zero`` (default 0.0).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from reference_nets.layers import Array, Dense, ReLU, RngLike, as_rng
from reference_nets.losses import SoftmaxCrossEntropy
from reference_nets.network import Sequential

__all__ = [
    "Net222",
    "Network",
    "TwoLayerNet",
    "naive_relu_chain_grad",
    "relu",
    "relu_chain_cost",
    "relu_chain_grad",
    "relu_prime",
    "sigmoid",
    "sigmoid_prime",
]


def relu(z: ArrayLike) -> Array:
    """``max(z, 0)`` elementwise."""
    z = np.asarray(z, dtype=float)
    return np.maximum(z, 0.0)


def relu_prime(z: ArrayLike, grad_at_zero: float = 0.0) -> Array:
    """ReLU's derivative: 1 where z > 0, 0 where z < 0, ``grad_at_zero`` where z == 0."""
    z = np.asarray(z, dtype=float)
    return np.where(z > 0, 1.0, np.where(z == 0, grad_at_zero, 0.0))


def sigmoid(z: ArrayLike) -> Array:
    """``1 / (1 + exp(-z))`` elementwise, without overflow for large ``|z|``."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z: ArrayLike) -> Array:
    """``sigmoid(z) (1 - sigmoid(z))``."""
    s = sigmoid(z)
    return s * (1.0 - s)


# --------------------------------------------------------------------------------------
# 1. Scalar ReLU chains
# --------------------------------------------------------------------------------------


def _relu_chain_forward(w: Array, x: float) -> tuple[list[float], list[float]]:
    """Inputs ``u_k`` and pre-activations ``z_k`` of each weight, outermost (w1) first."""
    u, us, zs = float(x), [], []
    for wk in w[::-1]:  # w[-1] touches x first
        z = float(wk) * u
        us.append(u)
        zs.append(z)
        u = max(z, 0.0)
    return us[::-1], zs[::-1]


def relu_chain_cost(w: ArrayLike, x: float, y: float) -> float:
    """``C = 1/2 (y - a)^2`` for the scalar chain ``a = ReLU(w1 ReLU(w2 ... ReLU(wn x)))``.

    ``w = [w1, ..., wn]`` lists the weights from the output inwards: ``w1`` is the last
    weight applied, ``wn`` multiplies the input ``x``.

    >>> relu_chain_cost([2.0], x=1.5, y=1.0)    # 1/2 (1 - ReLU(3))^2
    2.0
    """
    w = np.asarray(w, dtype=float).ravel()
    _, zs = _relu_chain_forward(w, x)
    a = max(zs[0], 0.0)
    return 0.5 * (y - a) ** 2


def relu_chain_grad(w: ArrayLike, x: float, y: float, grad_at_zero: float = 0.0) -> Array:
    """Closed-form ``dC/dw`` for :func:`relu_chain_cost`, one entry per weight.

    Name the pieces from the input out: ``u3 = x``, ``z3 = w3 u3``, ``u2 = ReLU(z3)``,
    ``z2 = w2 u2``, ``u1 = ReLU(z2)``, ``z1 = w1 u1``, ``a = ReLU(z1)``. The chain rule,
    with ``r(z) = ReLU'(z)`` (``grad_at_zero`` at z == 0), gives::

        one weight     C = 1/2 (y - ReLU(w1 x))^2
                       dC/dw1 = (a - y) r(z1) x

        two weights    C = 1/2 (y - ReLU(w1 ReLU(w2 x)))^2
                       dC/dw1 = (a - y) r(z1) u1
                       dC/dw2 = (a - y) r(z1) w1 r(z2) x

        three weights  C = 1/2 (y - ReLU(w1 ReLU(w2 ReLU(w3 x))))^2
                       dC/dw1 = (a - y) r(z1) u1
                       dC/dw2 = (a - y) r(z1) w1 r(z2) u2
                       dC/dw3 = (a - y) r(z1) w1 r(z2) w2 r(z3) x

    i.e. ``delta_1 = (a - y) r(z1)``, ``delta_{k+1} = delta_k w_k r(z_{k+1})`` and
    ``dC/dw_k = delta_k u_k``. Note the sign: ``a - y``, not ``y - a``.

    >>> relu_chain_grad([2.0], x=1.5, y=1.0)    # (3 - 1) * 1 * 1.5
    array([3.])
    """
    w = np.asarray(w, dtype=float).ravel()
    us, zs = _relu_chain_forward(w, x)
    delta = (max(zs[0], 0.0) - y) * float(relu_prime(zs[0], grad_at_zero))
    grad = np.empty_like(w)
    for k in range(len(w)):
        if k:
            delta = delta * float(w[k - 1]) * float(relu_prime(zs[k], grad_at_zero))
        grad[k] = delta * us[k]
    return grad


def naive_relu_chain_grad(w: ArrayLike, x: float, y: float) -> Array:
    """The classic WRONG derivation for one weight: ``dC/dw1 = (y - ReLU(w1 x)) x``.

    Two mistakes: the sign (it should be ``a - y``) and the missing ReLU' factor
    (it should be multiplied by ``r(w1 x)``). Kept to show that gradcheck catches it.
    """
    w = np.asarray(w, dtype=float).ravel()
    if w.shape != (1,):
        raise ValueError(f"the naive derivation is for one weight, got {w.size}")
    return np.array([(y - max(float(w[0]) * x, 0.0)) * x])


# --------------------------------------------------------------------------------------
# 2. input -> Dense -> ReLU -> Dense -> softmax + cross-entropy
# --------------------------------------------------------------------------------------


class TwoLayerNet:
    """Two-layer softmax classifier over a mini-batch ``X`` of shape ``(N, D)``::

        Z = X W1 + b1          H = ReLU(Z)          S = H W2 + b2
        P = softmax(S) row-wise                     L = -1/N sum_i log P[i, y_i]

    Backward, all in matrix form (``Y`` is the one-hot matrix of the labels)::

        dS  = (P - Y) / N
        dW2 = H^T dS           db2 = sum_i dS[i]
        dH  = dS W2^T
        dZ  = dH * ReLU'(Z)    (ReLU'(0) = grad_at_zero)
        dW1 = X^T dZ           db1 = sum_i dZ[i]

    ``params`` holds ``W1, b1, W2, b2``; :meth:`gradients` returns the same keys.

    >>> net = TwoLayerNet(4, 5, 3, rng=0)
    >>> X, y = np.ones((2, 4)), np.array([0, 2])
    >>> sorted(net.gradients(X, y)) == sorted(net.params)
    True
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        n_out: int,
        rng: RngLike = None,
        grad_at_zero: float = 0.0,
    ) -> None:
        g = as_rng(rng)
        self.params: dict[str, Array] = {
            "W1": g.standard_normal((n_in, n_hidden)) * np.sqrt(2.0 / n_in),
            "b1": np.zeros(n_hidden),
            "W2": g.standard_normal((n_hidden, n_out)) * np.sqrt(2.0 / n_hidden),
            "b2": np.zeros(n_out),
        }
        self.grad_at_zero = grad_at_zero

    def _forward(self, X: ArrayLike) -> tuple[Array, Array, Array, Array]:
        p = self.params
        X = np.asarray(X, dtype=float)
        Z = X @ p["W1"] + p["b1"]
        H = relu(Z)
        S = H @ p["W2"] + p["b2"]
        return X, Z, H, S

    @staticmethod
    def _log_softmax(S: Array) -> Array:
        S = S - S.max(axis=1, keepdims=True)
        return S - np.log(np.exp(S).sum(axis=1, keepdims=True))

    def loss(self, X: ArrayLike, labels: ArrayLike) -> float:
        """Mean cross-entropy ``-1/N sum_i log softmax(S)[i, labels_i]``."""
        labels = np.asarray(labels)
        *_, S = self._forward(X)
        logp = self._log_softmax(S)
        return float(-logp[np.arange(len(labels)), labels].mean())

    def gradients(self, X: ArrayLike, labels: ArrayLike) -> dict[str, Array]:
        """The closed-form gradient (see the class docstring), keyed like ``params``."""
        labels = np.asarray(labels)
        X, Z, H, S = self._forward(X)
        n = len(labels)
        dS = np.exp(self._log_softmax(S))
        dS[np.arange(n), labels] -= 1.0
        dS /= n
        dH = dS @ self.params["W2"].T
        dZ = dH * relu_prime(Z, self.grad_at_zero)
        return {"W1": X.T @ dZ, "b1": dZ.sum(axis=0), "W2": H.T @ dS, "b2": dS.sum(axis=0)}

    def __repr__(self) -> str:
        shown = {k: v.tolist() for k, v in self.params.items()}
        return f"TwoLayerNet(params={shown}, grad_at_zero={self.grad_at_zero!r})"

    def to_sequential(self, labels: ArrayLike) -> Sequential:
        """The same network from reference layers, *sharing* this net's arrays.

        ``Sequential(Dense, ReLU, Dense, SoftmaxCrossEntropy(labels))`` whose ``"0.W"`` is
        ``params["W1"]`` (the same object), and so on.
        """
        p = self.params
        d1, d2 = Dense.from_arrays(p["W1"], p["b1"]), Dense.from_arrays(p["W2"], p["b2"])
        return Sequential(d1, ReLU(self.grad_at_zero), d2, SoftmaxCrossEntropy(labels))


# --------------------------------------------------------------------------------------
# 3. The 2-2-2 ReLU network with Theta matrices
# --------------------------------------------------------------------------------------


class Net222:
    """A 2-2-2 network in Andrew Ng's notation, with ReLU units and the quadratic cost.

    ``Theta1`` and ``Theta2`` are 2 x 3: column 0 multiplies the bias unit. For a
    mini-batch ``X`` of shape ``(m, 2)`` (rows are examples), ``g`` ReLU or identity at the
    output (``output="relu"`` or ``"linear"``)::

        a1 = [1, x]                 (m, 3)
        z2 = a1 Theta1^T            a2 = [1, ReLU(z2)]        (m, 3)
        z3 = a2 Theta2^T            a3 = g(z3)                (m, 2)
        J  = sum over examples and i of 1/2 (a3_i - y_i)^2     (no 1/m)

    Backpropagation (rows of ``delta`` are examples)::

        delta3 = (a3 - y) * g'(z3)
        delta2 = (delta3 Theta2[:, 1:]) * ReLU'(z2)       (drop the bias column)
        dJ/dTheta2 = delta3^T a2
        dJ/dTheta1 = delta2^T a1

    >>> net = Net222(np.array([[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]]),
    ...              np.array([[0.7, 0.8, 0.9], [-1.0, 1.1, 1.2]]))
    >>> net.gradients(np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]]))["Theta1"].shape
    (2, 3)
    """

    def __init__(
        self,
        theta1: ArrayLike | None = None,
        theta2: ArrayLike | None = None,
        rng: RngLike = None,
        output: str = "relu",
        grad_at_zero: float = 0.0,
    ) -> None:
        g = as_rng(rng)
        t1 = g.standard_normal((2, 3)) if theta1 is None else np.array(theta1, dtype=float)
        t2 = g.standard_normal((2, 3)) if theta2 is None else np.array(theta2, dtype=float)
        if t1.shape != (2, 3) or t2.shape != (2, 3):
            raise ValueError(f"Theta1 and Theta2 must be 2 x 3, got {t1.shape}, {t2.shape}")
        if output not in ("relu", "linear"):
            raise ValueError(f'output must be "relu" or "linear", got {output!r}')
        self.params: dict[str, Array] = {"Theta1": t1, "Theta2": t2}
        self.output = output
        self.grad_at_zero = grad_at_zero

    def __repr__(self) -> str:
        t1, t2 = (self.params[k].tolist() for k in ("Theta1", "Theta2"))
        return f"Net222({t1}, {t2}, output={self.output!r}, grad_at_zero={self.grad_at_zero!r})"

    def _forward(self, X: ArrayLike) -> tuple[Array, Array, Array, Array, Array]:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        ones = np.ones((X.shape[0], 1))
        a1 = np.hstack([ones, X])
        z2 = a1 @ self.params["Theta1"].T
        a2 = np.hstack([ones, relu(z2)])
        z3 = a2 @ self.params["Theta2"].T
        a3 = relu(z3) if self.output == "relu" else z3
        return a1, z2, a2, z3, a3

    def cost(self, X: ArrayLike, Y: ArrayLike) -> float:
        """``J = sum 1/2 (a3 - y)^2`` over the examples and both outputs."""
        a3 = self._forward(X)[-1]
        return float(0.5 * np.sum((a3 - np.atleast_2d(Y)) ** 2))

    def gradients(self, X: ArrayLike, Y: ArrayLike) -> dict[str, Array]:
        """``{"Theta1": dJ/dTheta1, "Theta2": dJ/dTheta2}`` (see the class docstring)."""
        a1, z2, a2, z3, a3 = self._forward(X)
        gprime = relu_prime(z3, self.grad_at_zero) if self.output == "relu" else 1.0
        delta3 = (a3 - np.atleast_2d(Y)) * gprime
        delta2 = (delta3 @ self.params["Theta2"][:, 1:]) * relu_prime(z2, self.grad_at_zero)
        return {"Theta1": delta2.T @ a1, "Theta2": delta3.T @ a2}


# --------------------------------------------------------------------------------------
# 4. Nielsen's sigmoid network, BP1-BP4 in matrix form
# --------------------------------------------------------------------------------------


class Network:
    """Nielsen's ``network.py`` sigmoid network; ``backprop`` handles a whole mini-batch.

    Columns are examples, as in the book: ``x`` is ``(n_in, m)``, ``y`` is ``(n_out, m)``.
    ``weights[l]`` is ``(sizes[l+1], sizes[l])``, ``biases[l]`` is ``(sizes[l+1], 1)``::

        z^l = w^l a^(l-1) + b^l,    a^l = sigmoid(z^l),    a^0 = x
        C   = sum over the mini-batch of 1/2 ||a^L - y||^2

    The four equations of backpropagation, each one matrix expression for all m examples::

        BP1  delta^L = (a^L - y) * sigmoid'(z^L)
        BP2  delta^l = ((w^(l+1))^T delta^(l+1)) * sigmoid'(z^l)
        BP3  dC/db^l = delta^l summed over the columns (examples)
        BP4  dC/dw^l = delta^l (a^(l-1))^T

    ``backprop(x, y)`` returns ``(nabla_b, nabla_w)``, lists shaped like ``biases`` and
    ``weights``: the gradient of the *summed* cost (Nielsen's ``update_mini_batch``
    divides by the batch size afterwards).

    >>> net = Network([3, 4, 2], rng=0)
    >>> nabla_b, nabla_w = net.backprop(np.ones((3, 5)), np.zeros((2, 5)))
    >>> [w.shape for w in nabla_w], [b.shape for b in nabla_b]
    ([(4, 3), (2, 4)], [(4, 1), (2, 1)])
    """

    def __init__(self, sizes: Sequence[int], rng: RngLike = None) -> None:
        g = as_rng(rng)
        self.sizes = list(sizes)
        self.num_layers = len(self.sizes)
        self.biases: list[Array] = [g.standard_normal((n, 1)) for n in self.sizes[1:]]
        self.weights: list[Array] = [
            g.standard_normal((n, m)) for m, n in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        ]

    def __repr__(self) -> str:
        w = [x.tolist() for x in self.weights]
        b = [x.tolist() for x in self.biases]
        return f"Network(sizes={self.sizes}, weights={w}, biases={b})"

    def feedforward(self, a: ArrayLike) -> Array:
        """The output ``a^L`` for input columns ``a``."""
        a = np.asarray(a, dtype=float)
        for b, w in zip(self.biases, self.weights, strict=True):
            a = sigmoid(w @ a + b)
        return a

    def cost(self, x: ArrayLike, y: ArrayLike) -> float:
        """``C = sum 1/2 ||a^L - y||^2`` over the columns of ``x``."""
        return float(0.5 * np.sum((self.feedforward(x) - np.asarray(y, dtype=float)) ** 2))

    def backprop(self, x: ArrayLike, y: ArrayLike) -> tuple[list[Array], list[Array]]:
        """``(nabla_b, nabla_w)``: the gradient of :meth:`cost` by BP1-BP4 (see the class)."""
        activation = np.asarray(x, dtype=float)
        activations, zs = [activation], []
        for b, w in zip(self.biases, self.weights, strict=True):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b: list[Array] = [np.empty(0)] * len(self.biases)
        nabla_w: list[Array] = [np.empty(0)] * len(self.weights)
        delta = (activations[-1] - np.asarray(y, dtype=float)) * sigmoid_prime(zs[-1])  # BP1
        for layer in range(1, self.num_layers):
            if layer > 1:
                delta = (self.weights[-layer + 1].T @ delta) * sigmoid_prime(zs[-layer])  # BP2
            nabla_b[-layer] = delta.sum(axis=1, keepdims=True)  # BP3
            nabla_w[-layer] = delta @ activations[-layer - 1].T  # BP4
        return nabla_b, nabla_w

    @property
    def params(self) -> dict[str, Array]:
        """``{"weights[0]": ..., "biases[0]": ...}``: the lists' own arrays, not copies."""
        out: dict[str, Array] = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"weights[{i}]"] = w
            out[f"biases[{i}]"] = b
        return out

    def gradients(self, x: ArrayLike, y: ArrayLike) -> dict[str, Array]:
        """:meth:`backprop` as a dict keyed like :attr:`params` (for ``gc.check_params``)."""
        nabla_b, nabla_w = self.backprop(x, y)
        out: dict[str, Array] = {}
        for i, (nw, nb) in enumerate(zip(nabla_w, nabla_b, strict=True)):
            out[f"weights[{i}]"] = nw
            out[f"biases[{i}]"] = nb
        return out
