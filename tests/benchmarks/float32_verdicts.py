"""Verdict rates of the default check on correct and wrong float32 ReLU networks.

Prints, per case, how many seeds came back ok / UNVERIFIED / FAILED (and the reasons of any
verdict that is not the one wanted):

* Dense-ReLU-Dense + softmax cross-entropy (4-5-3, batch 3), through ``check_layer`` and
  through the pytest plugin's generated float32 items (one item per seed);
* the 64-128-10 MLP, batch 32, zero biases (He initialised), through ``check_layer``;
* the same networks with one element of one weight gradient doubled (a nonzero one, the
  weight and the element drawn per seed): never ok.

The networks are reference_nets layers; the wrong ones wrap the right backward.

    python tests/benchmarks/float32_verdicts.py --seeds 100          # ~15 min on 2 cores
    python tests/benchmarks/float32_verdicts.py --seeds 10 --quick   # the small net only
"""
from __future__ import annotations

import argparse
import collections
import itertools
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import gradcheck as gc
import reference_nets as rn

ROOT = Path(__file__).resolve().parents[2]


class Doubled:
    """A network whose backward doubles one element of one weight gradient."""

    def __init__(self, net: rn.Sequential, name: str, index: tuple[int, ...]) -> None:
        self.net, self.name, self.index = net, name, index
        self.params = net.params
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.net.forward(x)

    def backward(self, g: object) -> np.ndarray:
        dx = self.net.backward(g)
        self.grads = {k: np.array(v, copy=True) for k, v in self.net.grads.items()}
        self.grads[self.name][self.index] *= 2
        return dx


def mlp(seed: int, sizes: tuple[int, ...], batch: int) -> tuple[rn.Sequential, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        dense = rn.Dense(n_in, n_out, rng=rng, dtype=np.float32)
        dense.params["W"][:] = (rng.standard_normal((n_in, n_out))
                                * np.sqrt(2 / n_in)).astype(np.float32)
        dense.params["b"][:] = 0
        layers.append(dense)
        if i < len(sizes) - 2:
            layers.append(rn.ReLU())
    layers.append(rn.SoftmaxCrossEntropy(rng.integers(0, sizes[-1], batch)))
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    return rn.Sequential(*layers), x


def doubled(seed: int, sizes: tuple[int, ...], batch: int) -> tuple[Doubled, np.ndarray]:
    net, x = mlp(seed, sizes, batch)
    net.forward(x.copy())
    net.backward(1.0)
    rng = np.random.default_rng(10_000 + seed)
    weights = [k for k in net.params if k.endswith("W") and np.any(net.grads[k])]
    name = weights[rng.integers(len(weights))]
    nonzero = np.argwhere(net.grads[name] != 0)
    index = tuple(int(i) for i in nonzero[rng.integers(len(nonzero))])
    return Doubled(mlp(seed, sizes, batch)[0], name, index), x


def tally(label: str, want: str, check, seeds: range) -> None:
    started = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    for seed in seeds:
        report = check(seed)
        counts[str(report.status)] += 1
        if str(report.status) != want:
            for t in report.tensors:
                if not t.ok:
                    reasons[f"{t.status} {t.name}: {t.failure or t.reason}"] += 1
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{label:52s} want {want:6s}: {shown}  ({time.perf_counter() - started:.0f} s)",
          flush=True)
    for reason, count in reasons.most_common(5):
        print(f"    {count} x {reason}")


PLUGIN_FACTORY = '''
import numpy as np
import reference_nets as rn

input_shape = (3, 4)

def small_net(rng=None, dtype=np.float64):
    rng = np.random.default_rng(rng)
    return rn.Sequential(rn.Dense(4, 5, rng=rng, dtype=dtype), rn.ReLU(),
                         rn.Dense(5, 3, rng=rng, dtype=dtype),
                         rn.SoftmaxCrossEntropy(rng.integers(0, 3, 3)))
'''


def plugin_items(seeds: int) -> None:
    """The plugin's generated float32 items for the small net: one per seed."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "verdict_net.py").write_text(textwrap.dedent(PLUGIN_FACTORY))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([folder, str(ROOT)])}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "no:benchmark", "--rootdir", folder, "-c", os.devnull,
             "--gradcheck-layer=verdict_net:small_net", "--gradcheck-shape=3,4",
             "--gradcheck-dtypes=float32", f"--gradcheck-seeds={seeds}", folder],
            capture_output=True, text=True, cwd=folder, env=env, check=False)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    print(f"{'plugin items, D-R-D-CE float32':52s} want passed: {summary}  "
          f"({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="the small net only")
    args = parser.parse_args()
    seeds = range(args.seeds)
    small = ((4, 5, 3), 3)
    print(f"gradcheck float32 verdicts, {args.seeds} seeds each")
    tally("D-R-D-CE 4-5-3 b3, right", "ok",
          lambda s: gc.check_layer(*mlp(s, *small), seed=s), seeds)
    tally("D-R-D-CE 4-5-3 b3, one weight element doubled", "FAILED",
          lambda s: gc.check_layer(*doubled(s, *small), seed=s), seeds)
    plugin_items(args.seeds)
    if args.quick:
        return
    big = ((64, 128, 10), 32)
    tally("MLP 64-128-10 b32 zero biases, right", "ok",
          lambda s: gc.check_layer(*mlp(s, *big), seed=s), seeds)
    tally("MLP 64-128-10 b32, one weight element doubled", "FAILED",
          lambda s: gc.check_layer(*doubled(s, *big), seed=s), seeds)


if __name__ == "__main__":
    main()
