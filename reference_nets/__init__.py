"""reference_nets: small, correct numpy networks to learn from and to check against.

Layers (``Dense``, ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Softmax``), loss heads
(``QuadraticCost``, ``SoftmaxCrossEntropy``, ``BinaryCrossEntropy``), ``Sequential``, and
the networks of the classic backprop questions (``reference_nets.classic``).

>>> import numpy as np
>>> import reference_nets as rn
>>> net = rn.Sequential(rn.Dense(4, 8, rng=0), rn.ReLU(), rn.Dense(8, 3, rng=1),
...                     rn.SoftmaxCrossEntropy(labels=np.array([0, 2])))
>>> loss = net.forward(np.ones((2, 4)))
>>> dx = net.backward()
>>> sorted(net.grads)
['0.W', '0.b', '2.W', '2.b']
"""
from reference_nets.classic import (
    Net222,
    Network,
    TwoLayerNet,
    naive_relu_chain_grad,
    relu,
    relu_chain_cost,
    relu_chain_grad,
    relu_prime,
    sigmoid,
    sigmoid_prime,
)
from reference_nets.layers import (
    Array,
    Dense,
    LeakyReLU,
    ReLU,
    RngLike,
    Sigmoid,
    Softmax,
    Tanh,
    as_float_array,
    as_rng,
)
from reference_nets.losses import BinaryCrossEntropy, QuadraticCost, SoftmaxCrossEntropy
from reference_nets.network import Layer, Sequential

__all__ = [
    "Array",
    "BinaryCrossEntropy",
    "Dense",
    "Layer",
    "LeakyReLU",
    "Net222",
    "Network",
    "QuadraticCost",
    "ReLU",
    "RngLike",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "TwoLayerNet",
    "as_float_array",
    "as_rng",
    "naive_relu_chain_grad",
    "relu",
    "relu_chain_cost",
    "relu_chain_grad",
    "relu_prime",
    "sigmoid",
    "sigmoid_prime",
]
