"""The ``flow`` and ``convention`` subcommands of ``python -m gradcheck``.

Exit codes: 0 nothing found; 1 a finding (flow: some verdict is not "healthy";
convention: the ReLU'(0) convention changes some parameter gradient); 2 a usage error
(bad arguments, an import that fails, an input shape the network rejects, matplotlib
missing for --png).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from gradcheck.diagnostics.chains import ACTIVATIONS, INITS, make_chain
from gradcheck.diagnostics.convention import convention_sensitivity
from gradcheck.diagnostics.flow import EXPLODING_ABOVE, VANISHING_BELOW, gradient_flow
from gradcheck.errors import GradcheckUsageError
from gradcheck.loading import load_target, parse_shape

T = TypeVar("T")

FLOW_DEFAULTS = {"depth": 30, "activation": "sigmoid", "width": 64, "batch": 32}
CONVENTION_DEFAULTS = {"depth": 3, "activation": "relu", "width": 16, "batch": 8}


def _seed(text: str) -> int:
    """argparse type: a non-negative integer (numpy seeds cannot be negative)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _error(args: argparse.Namespace, message: str) -> int:
    print(f"gradcheck {args.command_name}: error: {message}", file=sys.stderr)
    return 2


def _common_options(p: argparse.ArgumentParser, defaults: dict[str, Any]) -> Any:
    p.add_argument(
        "factory",
        nargs="?",
        help="package.module:factory returning your network (a Sequential or anything with "
        ".layers); without it, a reference chain is used",
    )
    p.add_argument(
        "--shape",
        help="input batch shape for FACTORY, e.g. 8,4 (standard normal draw; default: the "
        "factory's input_shape attribute)",
    )
    ref = p.add_argument_group("reference chain (when no FACTORY is given)")
    ref.add_argument(
        "--depth", type=int, help=f"Dense+activation pairs (default {defaults['depth']})"
    )
    ref.add_argument("--width", type=int, help=f"units per layer (default {defaults['width']})")
    ref.add_argument(
        "--init", choices=INITS, help="weight init (default: he for relu, xavier otherwise)"
    )
    ref.add_argument("--gain", type=float, help="multiplies the init's standard deviation (1.0)")
    ref.add_argument("--batch", type=int, help=f"batch size (default {defaults['batch']})")
    p.add_argument("--seed", type=_seed, default=0, help="seed of weights, batch, upstream (0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return ref


def register_commands(subparsers: Any) -> None:
    """Add ``flow`` and ``convention`` to the CLI's argparse ``subparsers``."""
    flow = subparsers.add_parser(
        "flow",
        help="per-layer gradient norms: vanishing / healthy / exploding",
        description="Per-layer norms of the upstream and parameter gradients, with a verdict "
        "from ||dL/dx|| / ||dL/d output||. Exit 0 healthy, 1 vanishing/exploding, 2 usage error.",
    )
    flow_ref = _common_options(flow, FLOW_DEFAULTS)
    flow_ref.add_argument(
        "--activation",
        help=f"reference chain activation(s), comma-separated: {', '.join(ACTIVATIONS)} "
        f"(default {FLOW_DEFAULTS['activation']}); several draw one picture",
    )
    flow.add_argument(
        "--png", metavar="PATH", help="write the picture here (needs matplotlib: the plot extra)"
    )
    flow.add_argument(
        "--vanishing-below",
        type=float,
        default=VANISHING_BELOW,
        metavar="R",
        help=f"verdict vanishing when ||dL/dx|| / ||dL/d out|| < R ({VANISHING_BELOW:g})",
    )
    flow.add_argument(
        "--exploding-above",
        type=float,
        default=EXPLODING_ABOVE,
        metavar="R",
        help=f"verdict exploding when the ratio > R ({EXPLODING_ABOVE:g})",
    )
    flow.set_defaults(func=flow_command, command_name="flow")

    conv = subparsers.add_parser(
        "convention",
        help="does ReLU'(0) = 0 vs 1 change the gradients? (float64 and float32)",
        description="Exact zeros at ReLU inputs and the parameter-gradient difference between "
        "ReLU'(0)=0 and ReLU'(0)=1. Exit 0 no parameter gradient changes, 1 some does, "
        "2 usage error.",
    )
    conv_ref = _common_options(conv, CONVENTION_DEFAULTS)
    conv_ref.add_argument(
        "--activation",
        help=f"reference chain activation (default {CONVENTION_DEFAULTS['activation']})",
    )
    conv.add_argument(
        "--zero-rows",
        type=int,
        default=0,
        metavar="K",
        help="set the first K samples of the batch to exactly 0.0 (default 0)",
    )
    conv.add_argument(
        "--dtypes",
        default="float64,float32",
        help="dtypes to run in, comma-separated (default float64,float32)",
    )
    conv.set_defaults(func=convention_command, command_name="convention")


def _networks(args: argparse.Namespace, defaults: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(label, net, x) for each network the arguments ask for."""
    rng = np.random.default_rng([args.seed, 1])
    ref_opts = ("depth", "width", "init", "gain", "batch", "activation")
    if args.factory:
        given = [o for o in ref_opts if getattr(args, o) is not None]
        if given:
            flags = ", ".join("--" + o for o in given)
            raise GradcheckUsageError(f"{flags}: only for the reference chain, not with FACTORY")
        target = load_target(args.factory, search_path=os.getcwd())
        shape = target.input_shape(parse_shape(args.shape) if args.shape else None)
        net = target.make_layer("float64", seed=args.seed)
        return [(target.spec, net, rng.standard_normal(shape))]
    if args.shape:
        raise GradcheckUsageError("--shape: only with FACTORY (the reference chain uses --batch)")
    depth = defaults["depth"] if args.depth is None else args.depth
    width = defaults["width"] if args.width is None else args.width
    batch = defaults["batch"] if args.batch is None else args.batch
    gain = 1.0 if args.gain is None else args.gain
    if batch < 1:
        raise GradcheckUsageError(f"--batch: expected a positive integer; got {batch}")
    out = []
    for act in (args.activation or defaults["activation"]).split(","):
        net = make_chain(depth, act.strip(), width, init=args.init, rng=args.seed, gain=gain)
        init = args.init or ("he" if act.strip() == "relu" else "xavier")
        label = f"{act.strip()} x{depth}, width {width}, {init} init"
        out.append((label, net, rng.standard_normal((batch, width))))
    return out


def _run_network(what: str, x: Any, diagnostic: Callable[..., T], *args: Any,
                 **kwargs: Any) -> T:
    """Run a diagnostic; a network that raises on this input is a usage error (exit 2)."""
    try:
        return diagnostic(*args, **kwargs)
    except GradcheckUsageError:
        raise
    except Exception as exc:
        raise GradcheckUsageError(
            f"running {what} on an input of shape {np.shape(x)} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def flow_command(args: argparse.Namespace) -> int:
    """``python -m gradcheck flow``: see :mod:`gradcheck.diagnostics.commands`."""
    try:
        if args.png:
            from gradcheck.heatmap import require_matplotlib

            try:
                require_matplotlib()
            except ImportError as exc:
                raise GradcheckUsageError(f"--png: {exc}") from exc
        nets = _networks(args, FLOW_DEFAULTS)
        reports = []
        for label, net, x in nets:
            reports.append(_run_network(
                label, x, gradient_flow, net, x, seed=args.seed,
                vanishing_below=args.vanishing_below, exploding_above=args.exploding_above,
                label=label))
    except GradcheckUsageError as exc:
        return _error(args, str(exc))
    png = None
    if args.png:
        from gradcheck.diagnostics.plotting import plot_flows

        title = None
        if not args.factory:
            r0 = reports[0]
            n_layers = len(r0.rows) // 2
            title = (
                f"gradient flow: {n_layers} x (Dense {r0.input_shape[-1]}x{r0.input_shape[-1]}"
                f" + activation), batch {r0.input_shape[0]}"
            )
        png = str(plot_flows(reports, args.png, title=title))
    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports], "png": png}, indent=2))
    else:
        print("\n\n".join(str(r) for r in reports))
        if png:
            print(f"\npicture: {png}")
    return 0 if all(r.ok for r in reports) else 1


def convention_command(args: argparse.Namespace) -> int:
    """``python -m gradcheck convention``: see :mod:`gradcheck.diagnostics.commands`."""
    try:
        if args.activation is not None and "," in args.activation:
            raise GradcheckUsageError("--activation: one activation for convention")
        dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
        [(label, net, x)] = _networks(args, CONVENTION_DEFAULTS)
        if args.zero_rows < 0 or args.zero_rows > len(x):
            raise GradcheckUsageError(
                f"--zero-rows: expected 0..{len(x)} (the batch size); got {args.zero_rows}"
            )
        x[: args.zero_rows] = 0.0
        report = _run_network(label, x, convention_sensitivity, net, x, seed=args.seed,
                              dtypes=dtypes)
    except GradcheckUsageError as exc:
        return _error(args, str(exc))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"network: {label}; {args.zero_rows} zero rows in the batch\n")
        print(report)
    return 1 if report.matters else 0
