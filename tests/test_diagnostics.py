"""Tests of gradcheck.diagnostics: gradient flow, ReLU'(0) convention sensitivity, CLI."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck as gc
import reference_nets as rn
from gradcheck.diagnostics import (
    ConventionReport,
    FlowReport,
    convention_sensitivity,
    gradient_flow,
    make_chain,
    plot_flows,
    register_commands,
)
from gradcheck.diagnostics._common import trace_passes
from gradcheck.errors import GradcheckUsageError

DEPTH = 30


def batch(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def snapshot(net: Any) -> list[dict[str, Any]]:
    """Copies of everything a diagnostic could change in a reference net."""
    out = []
    for layer in net.layers:
        state = {
            "params": {k: (v, v.copy(), v.dtype) for k, v in layer.params.items()},
            "grads": {k: v.copy() for k, v in layer.grads.items()},
        }
        if hasattr(layer, "grad_at_zero"):
            state["grad_at_zero"] = layer.grad_at_zero
        if hasattr(layer, "dtype"):
            state["dtype"] = layer.dtype
        out.append(state)
    return out


def assert_unchanged(net: Any, before: list[dict[str, Any]]) -> None:
    for layer, state in zip(net.layers, before, strict=True):
        for k, (arr, copy, dtype) in state["params"].items():
            assert layer.params[k] is arr  # the very same array object ...
            assert arr.dtype == dtype
            np.testing.assert_array_equal(arr, copy)  # ... with the very same values
        assert layer.grads.keys() == state["grads"].keys()
        for k, g in state["grads"].items():
            np.testing.assert_array_equal(layer.grads[k], g)
        if "grad_at_zero" in state:
            assert layer.grad_at_zero == state["grad_at_zero"]
        if "dtype" in state:
            assert layer.dtype == state["dtype"]


# ---------------------------------------------------------------- gradient flow


def test_sigmoid_chain_obeys_the_quarter_per_layer_bound() -> None:
    """sigmoid' <= 1/4 and ||g W^T|| <= ||W||_2 ||g||: every Sigmoid shrinks the gradient by
    at least 4, every Dense grows it by at most ||W||_2, so over the chain
    ||dL/dx|| / ||dL/d out|| <= 0.25**30 * prod ||W_k||_2."""
    net = make_chain(DEPTH, activation="sigmoid", width=64, rng=0)
    rep = gradient_flow(net, batch((32, 64)))
    spectral = [np.linalg.norm(layer.params["W"], 2) for layer in net.layers[::2]]
    for row in rep.rows:
        if row.layer == "Sigmoid":
            assert row.factor <= 0.25 * (1 + 1e-12)
        else:
            assert row.factor <= spectral[row.index // 2] * (1 + 1e-12)
    bound = 0.25**DEPTH * float(np.prod(spectral))
    assert 0 < rep.ratio <= bound * (1 + 1e-9)
    assert rep.verdict == "vanishing" and not rep
    assert rep.ratio < 1e-15  # measured: 1.2e-19 (about 0.23 per Dense+Sigmoid pair)


def test_sigmoid_chain_with_unit_spectral_norm_weights_loses_4x_per_layer() -> None:
    net = make_chain(DEPTH, activation="sigmoid", width=64, rng=3)
    for dense in net.layers[::2]:
        dense.params["W"] /= np.linalg.norm(dense.params["W"], 2)
    rep = gradient_flow(net, batch((16, 64)))
    for k in range(DEPTH):  # Dense 2k then Sigmoid 2k+1: the pair's factor
        pair = rep.rows[2 * k].grad_in_norm / rep.rows[2 * k + 1].grad_out_norm
        assert pair <= 0.25 * (1 + 1e-12)
    assert rep.ratio <= 0.25**DEPTH * (1 + 1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_he_chain_keeps_its_norm_within_2x_over_30_layers(seed: int) -> None:
    net = make_chain(DEPTH, activation="relu", width=256, init="he", rng=seed)
    rep = gradient_flow(net, batch((32, 256), seed=seed + 10), seed=seed)
    assert 0.5 <= rep.ratio <= 2.0  # measured 0.61 .. 1.48 over seeds 0..29 (0.85 for seed 0)
    assert rep.verdict == "healthy" and rep
    assert rep.param_ratio is not None and 0.5 <= rep.param_ratio <= 2.0


def test_relu_with_xavier_vanishes_and_with_gain_2_explodes() -> None:
    x = batch((32, 128))
    xavier = gradient_flow(make_chain(DEPTH, "relu", 128, init="xavier", rng=0), x)
    assert xavier.verdict == "vanishing"  # about 2**-0.5 per layer: ~3e-5
    hot = gradient_flow(make_chain(DEPTH, "relu", 128, init="he", gain=2.0, rng=0), x)
    assert hot.verdict == "exploding"  # about 2 per layer: ~1e9


def test_flow_rows_norms_and_shapes() -> None:
    net = rn.Sequential(rn.Dense(4, 5, rng=0), rn.Tanh(), rn.Dense(5, 3, rng=1))
    x = batch((6, 4))
    g = batch((6, 3), seed=7)
    rep = gradient_flow(net, x, upstream=g)
    assert [r.layer for r in rep.rows] == ["Dense", "Tanh", "Dense"]
    assert [r.path for r in rep.rows] == ["0", "1", "2"]
    assert rep.rows[-1].output_shape == (6, 3)
    assert rep.rows[-1].grad_out_norm == pytest.approx(np.linalg.norm(g))
    assert rep.top_norm == rep.rows[-1].grad_out_norm
    # the same numbers by hand
    ref = rn.Sequential(rn.Dense(4, 5, rng=0), rn.Tanh(), rn.Dense(5, 3, rng=1))
    ref.forward(x)
    dx = ref.backward(g)
    assert rep.bottom_norm == pytest.approx(np.linalg.norm(dx), rel=1e-12)
    assert rep.rows[0].param_grad_norms["W"] == pytest.approx(
        np.linalg.norm(ref.grads["0.W"]), rel=1e-12
    )
    assert rep.ratio == pytest.approx(np.linalg.norm(dx) / np.linalg.norm(g), rel=1e-12)
    assert rep.upstream == "given"


class RecordingTanh:
    """tanh that keeps the upstream gradient its backward received."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.g = np.array(g, copy=True)
        return (1 - self.y**2) * g


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 5])
def test_random_upstream_is_the_one_check_layer_draws_for_the_seed(seed: int, dtype: str) -> None:
    x = batch((4, 3)).astype(dtype)
    checked = RecordingTanh()
    gc.check_layer(checked, x, seed=seed)
    trace = trace_passes([RecordingTanh()], x, None, seed)
    assert trace.upstream == f"random normal (seed {seed})"
    assert trace.grad_out[0].dtype == checked.g.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(trace.grad_out[0], checked.g)


def test_flow_with_a_loss_head_measures_from_the_head_input() -> None:
    x = batch((8, 4))
    net = rn.Sequential(
        rn.Dense(4, 6, rng=0),
        rn.Sigmoid(),
        rn.Dense(6, 3, rng=1),
        rn.QuadraticCost(np.ones((8, 3))),
    )
    rep = gradient_flow(net, x)
    assert rep.loss_head and rep.upstream.startswith("loss head")
    assert rep.top_norm == rep.rows[-1].grad_in_norm == rep.rows[-2].grad_out_norm
    assert rep.ratio == pytest.approx(rep.bottom_norm / rep.top_norm)


def test_flow_leaves_the_network_unchanged() -> None:
    net = make_chain(3, activation="relu", width=8, rng=0)
    net.forward(batch((4, 8)))
    net.backward(np.ones((4, 8)))
    before = snapshot(net)
    x = batch((5, 8))
    x_copy = x.copy()
    gradient_flow(net, x)
    assert_unchanged(net, before)
    np.testing.assert_array_equal(x, x_copy)


def test_flow_table_and_dict() -> None:
    rep = gradient_flow(make_chain(2, "tanh", 4, rng=0), batch((3, 4)), label="tiny")
    text = str(rep)
    assert "gradient flow: tiny" in text
    assert "verdict: HEALTHY" in text and "Tanh" in text and "W " in text
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["verdict"] == "healthy" and len(d["rows"]) == 4
    assert d["thresholds"] == {"vanishing_below": 1e-2, "exploding_above": 1e2}


def test_flow_non_finite_is_reported_not_raised() -> None:
    net = make_chain(2, "relu", 4, rng=0)
    net.layers[0].params["W"][0, 0] = np.nan
    rep = gradient_flow(net, np.ones((2, 4)))
    assert rep.verdict == "undefined"
    assert json.loads(json.dumps(rep.to_dict(), allow_nan=False))["ratio"] == "nan"


def test_flow_nested_sequential_is_flattened() -> None:
    inner = rn.Sequential(rn.Dense(3, 3, rng=0), rn.ReLU())
    net = rn.Sequential(rn.Dense(2, 3, rng=1), inner, rn.Dense(3, 1, rng=2))
    rep = gradient_flow(net, batch((4, 2)))
    assert [r.path for r in rep.rows] == ["0", "1.0", "1.1", "2"]


def test_flow_usage_errors() -> None:
    with pytest.raises(GradcheckUsageError, match="net"):
        gradient_flow(object(), np.ones((2, 2)))
    with pytest.raises(GradcheckUsageError, match="upstream"):
        gradient_flow(make_chain(1, "relu", 3, rng=0), np.ones((2, 3)), upstream=np.ones((3, 3)))
    with pytest.raises(GradcheckUsageError, match="upstream has non-finite values"):
        gradient_flow(make_chain(1, "relu", 3, rng=0), np.ones((2, 3)),
                      upstream=np.full((2, 3), np.nan))
    with pytest.raises(GradcheckUsageError, match="seed"):
        gradient_flow(make_chain(1, "relu", 3, rng=0), np.ones((2, 3)), seed=-1)
    with pytest.raises(GradcheckUsageError, match="vanishing_below"):
        gradient_flow(make_chain(1, "relu", 3, rng=0), np.ones((2, 3)), vanishing_below=2.0)
    with pytest.raises(GradcheckUsageError, match="activation"):
        make_chain(3, activation="swish")
    with pytest.raises(GradcheckUsageError, match="init"):
        make_chain(3, init="lecun")
    with pytest.raises(GradcheckUsageError, match="depth"):
        make_chain(0)


def test_make_chain_layout_and_init() -> None:
    net = make_chain(4, activation="relu", width=512, init="he", rng=0)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "ReLU"] * 4
    w = net.layers[0].params["W"]
    assert w.shape == (512, 512)
    assert np.std(w) == pytest.approx(np.sqrt(2 / 512), rel=0.02)
    assert not net.layers[0].params["b"].any()
    xavier = make_chain(1, activation="tanh", width=512, rng=0).layers[0].params["W"]
    assert np.std(xavier) == pytest.approx(np.sqrt(1 / 512), rel=0.02)
    same = make_chain(4, activation="relu", width=512, init="he", rng=0).layers[0].params["W"]
    np.testing.assert_array_equal(w, same)


def test_plot_without_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    rep = gradient_flow(make_chain(2, "relu", 4, rng=0), batch((3, 4)))
    with pytest.raises(ImportError, match=r"pip install matplotlib \(gradcheck's plot extra\)"):
        rep.plot(tmp_path / "flow.png")
    assert not (tmp_path / "flow.png").exists()


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rep = gradient_flow(make_chain(5, "sigmoid", 16, rng=0), batch((8, 16)), label="sigmoid")
    out = rep.plot(tmp_path / "sub" / "one.png")
    assert out == tmp_path / "sub" / "one.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="labels"):
        plot_flows([rep], tmp_path / "two.png", labels=["a", "b"])


# ---------------------------------------------------------------- ReLU'(0) convention


def test_no_exact_zero_means_no_difference_at_all() -> None:
    net = make_chain(3, activation="relu", width=16, rng=0)
    rep = convention_sensitivity(net, batch((8, 16)))
    assert isinstance(rep, ConventionReport)
    assert rep.dtypes == ("float64", "float32")
    assert rep.total_zeros("float64") == rep.total_zeros("float32") == 0
    assert len(rep.diffs) == 2 * 6  # 3 Dense x (W, b) x 2 dtypes
    for d in [*rep.diffs, *rep.input_diffs]:
        assert d.max_abs_diff == 0.0 and d.rel_diff == 0.0 and d.differing == 0
        assert d.norm0 > 0
    assert not rep.matters and not rep.input_matters
    assert "does not matter" in str(rep) and "no ReLU input is exactly zero" in str(rep)


def test_zero_rows_through_a_bias_free_dense_make_the_convention_matter() -> None:
    net = rn.Sequential(
        rn.Dense(4, 6, rng=0, bias=False), rn.ReLU(), rn.Dense(6, 3, rng=1), rn.ReLU(),
        rn.Dense(3, 2, rng=2),
    )  # fmt: skip
    x = batch((5, 4))
    x[:2] = 0.0  # two zero samples: every unit of the first ReLU sits on its kink
    rep = convention_sensitivity(net, x)
    for dt in ("float64", "float32"):
        zeros = {z.path: z for z in rep.zeros if z.dtype == dt}
        assert zeros["1"].zeros == 2 * 6 and zeros["1"].size == 5 * 6
        assert rep.total_zeros(dt) >= 12
        # the zero rows reach the second ReLU at exactly 0 too (2.b starts at zero), so
        # ReLU'(0) = 1 lets their gradient into 2.b
        assert any(d.differing for d in rep.diffs if d.dtype == dt)
    assert rep.matters and rep.max_rel_diff > 0
    d = rep.diff("2.b")
    assert d.max_abs_diff > 0 and 0 < d.rel_diff <= 2
    assert rep.diff("0.W").max_abs_diff == 0.0  # dW = x^T g: zero rows add nothing to 0.W
    assert rep.input_matters  # but dL/dx of the zero rows does change
    assert "MATTERS" in str(rep)


def test_zero_biases_behind_zero_rows_matter_too() -> None:
    net = make_chain(2, activation="relu", width=8, rng=0)  # biases start at exactly zero
    x = batch((4, 8))
    x[0] = 0.0
    rep = convention_sensitivity(net, x)
    assert rep.total_zeros("float64") == 2 * 8  # both ReLUs: the zero row stays zero
    assert rep.diff("0.b").differing > 0 and rep.diff("0.b", "float32").differing > 0


def test_convention_runs_really_in_float32_and_leave_the_net_unchanged() -> None:
    net = rn.Sequential(rn.Dense(4, 6, rng=0, bias=False), rn.ReLU(grad_at_zero=0.5),
                        rn.Dense(6, 2, rng=1))  # fmt: skip
    x = batch((3, 4))
    x[0] = 0.0
    net.forward(x)
    net.backward(np.ones((3, 2)))
    before = snapshot(net)
    x_copy = x.copy()
    rep = convention_sensitivity(net, x)
    assert_unchanged(net, before)
    np.testing.assert_array_equal(x, x_copy)
    assert {d.grad_dtype for d in rep.diffs if d.dtype == "float32"} == {"float32"}
    assert {d.grad_dtype for d in rep.diffs if d.dtype == "float64"} == {"float64"}
    assert rep.warnings == []


def test_convention_report_dict_and_no_relu() -> None:
    rep = convention_sensitivity(make_chain(2, "tanh", 4, rng=0), batch((3, 4)), dtypes=["float64"])
    assert rep.relu_layers == [] and not rep.matters
    assert "no ReLU layer" in str(rep)
    x = np.zeros((2, 4))
    d = convention_sensitivity(make_chain(1, "relu", 4, rng=0), x, dtypes=["float64"]).to_dict()
    json.dumps(d, allow_nan=False)
    assert d["total_zeros"] == {"float64": 8}
    with pytest.raises(GradcheckUsageError, match="dtypes"):
        convention_sensitivity(make_chain(1, "relu", 4, rng=0), x, dtypes=["int32"])


# ---------------------------------------------------------------- command line


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="gradcheck")
    register_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    rc = args.func(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_flow_reference_chains(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(["flow", "--depth", "30", "--activation", "sigmoid"], capsys)
    assert rc == 1 and "verdict: VANISHING" in out
    rc, out, _ = cli(["flow", "--activation", "relu", "--width", "256", "--json"], capsys)
    assert rc == 0
    data = json.loads(out)
    assert data["png"] is None and data["reports"][0]["verdict"] == "healthy"
    assert len(data["reports"][0]["rows"]) == 60


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"diag_user_net_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import reference_nets as rn

            def build(rng=None):
                return rn.Sequential(rn.Dense(4, 8, rng=rng, bias=False), rn.ReLU(),
                                     rn.Dense(8, 2, rng=rng))

            def build_biased(rng=None):  # zero-initialised biases
                return rn.Sequential(rn.Dense(4, 8, rng=rng), rn.ReLU(), rn.Dense(8, 2, rng=rng))
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_cli_flow_and_convention_on_a_user_factory(
    user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = cli(["flow", f"{user_module}:build", "--shape", "8,4"], capsys)
    assert rc == 0 and f"{user_module}:build" in out and "input (8, 4)" in out
    rc, out, _ = cli(["convention", f"{user_module}:build", "--shape", "8,4"], capsys)
    assert rc == 0 and "does not matter" in out
    # bias-free first Dense: zero rows put the ReLU on its kink, but dW = x^T g gets nothing
    # from zero rows, so only dL/dx changes: not a finding for this network on its own
    rc, out, _ = cli(
        ["convention", f"{user_module}:build", "--shape", "8,4", "--zero-rows", "3"], capsys
    )
    assert rc == 0 and "24 / 64" in out and "only dL/dx" in out
    rc, out, _ = cli(
        ["convention", f"{user_module}:build_biased", "--shape=8,4", "--zero-rows=3", "--json"],
        capsys,
    )
    assert rc == 1
    data = json.loads(out)
    assert data["matters"] and data["total_zeros"] == {"float64": 24, "float32": 24}


def test_cli_convention_reference_default(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(["convention"], capsys)
    assert rc == 0 and "relu x3, width 16" in out
    rc, out, _ = cli(["convention", "--zero-rows", "2"], capsys)
    assert rc == 1 and "MATTERS" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["flow", "nosuchmodule_xyz:f", "--shape", "2,2"], "cannot import"),
        (["flow", "reference_nets:ReLU", "--shape", "8,x"], "invalid shape"),
        (["flow", "reference_nets:ReLU", "--shape", "2,2", "--depth", "3"], "--depth"),
        (["flow", "--shape", "2,2"], "--shape"),
        (["flow", "--activation", "swish"], "activation"),
        (["convention", "--zero-rows", "99"], "--zero-rows"),
        (["convention", "--activation", "relu,tanh"], "--activation"),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = cli(argv, capsys)
    assert rc == 2 and out == ""
    assert err.startswith(f"gradcheck {argv[0]}: error:") and message in err


def test_cli_shape_the_network_rejects_is_a_usage_error(
    user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = cli(["flow", f"{user_module}:build", "--shape", "8,5"], capsys)
    assert rc == 2 and "shape (8, 5)" in err


def test_cli_png_without_matplotlib_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "f.png"
    rc, out, err = cli(["flow", "--depth", "3", "--png", str(png)], capsys)
    assert rc == 2 and out == "" and "pip install matplotlib (gradcheck's plot extra)" in err
    assert not png.exists()


def test_cli_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "f.png"
    argv = ["flow", "--depth", "5", "--activation", "sigmoid,relu", "--png", str(png)]
    rc, out, _ = cli(argv, capsys)
    assert rc == 1 and f"picture: {png}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_flow_report_type_is_exported() -> None:
    assert isinstance(gradient_flow(make_chain(1, "relu", 2, rng=0), np.ones((1, 2))), FlowReport)


def test_gradcheck_cli_main_has_flow_and_convention(capsys: pytest.CaptureFixture[str]) -> None:
    cli_module = pytest.importorskip("gradcheck.cli")
    assert cli_module.main(["flow", "--depth", "30", "--activation", "sigmoid"]) == 1
    assert "verdict: VANISHING" in capsys.readouterr().out
    assert cli_module.main(["convention", "--zero-rows", "2"]) == 1
    assert "MATTERS" in capsys.readouterr().out
    assert cli_module.main(["convention", "--seed", "-1"]) == 2
