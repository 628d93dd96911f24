# The README's quick-start script with one wrong element in dW (the line marked "the bug").
# python examples/quickstart_wrong_gradient.py prints the report the README shows.
# ruff: noqa: E501, I001  (line for line the README's block, whose layout is the README's)
import numpy as np
import gradcheck as gc

class Dense:
    def __init__(self, n_in, n_out, rng):
        self.params = {"W": rng.standard_normal((n_in, n_out)), "b": np.zeros(n_out)}
    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]
    def backward(self, g):
        self.grads = {"W": self.x.T @ g, "b": g.sum(axis=0)}
        self.grads["W"][1, 0] += 0.4  # the bug
        return g @ self.params["W"].T

def test_dense():  # in a test (pytest): assert_layer raises GradientMismatch with the report
    rng = np.random.default_rng(0)
    gc.assert_layer(Dense(4, 3, rng), rng.standard_normal((8, 4)))

report = gc.check_layer(Dense(4, 3, np.random.default_rng(0)), np.random.default_rng(1).standard_normal((8, 4)))
print(report)                   # check_* return the report: status "ok", "FAILED" or "UNVERIFIED"
