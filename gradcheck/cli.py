"""The command line: ``python -m gradcheck`` (also installed as the ``gradcheck`` script).

Subcommands:

- ``check LAYER``: check a layer's backward pass, where LAYER is ``package.module:factory``
  (a callable returning a fresh layer; it may take ``rng=`` and ``dtype=``);
- ``flow`` and ``convention``: diagnostics from :mod:`gradcheck.diagnostics`.

Exit codes: 0 every gradient right, 1 a finding (a wrong gradient, a gradient of the
wrong shape, a misbehaving layer), 2 a usage error (bad path, bad shape, bad option).
The report goes to stdout (``--json``: ``report.to_dict()`` as JSON); progress goes to
stderr, and only when stderr is a terminal.

>>> main(["check", "gradcheck.examples.layers:Dense", "--shape", "8,4"])  # doctest: +ELLIPSIS
gradcheck: all 3 tensors ok  (layer gradcheck.examples.layers.Dense, input (8, 4) float64, ...)
...
0

A layer and input built by ``check --dtype D --seed S`` are exactly those of the pytest
plugin's generated item ``LAYER-D-seedS``, so a failing item is repeated on the command line.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

from gradcheck.diagnostics import register_commands as register_diagnostics_commands
from gradcheck.loading import (
    DTYPES,
    KINKS,
    MODES,
    LoadError,
    NoInputShape,
    load_target,
    parse_shape,
)

__all__ = ["build_parser", "main"]

PROG = "gradcheck"


def _shape(text: str) -> tuple[int, ...]:
    try:
        return parse_shape(text)
    except LoadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"invalid tolerance {text!r}: expected a number >= 0")
    return value


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected a whole number >= 0")
    return int(text)


class Progress:
    """``progress(done, total)`` for the checker: one self-overwriting line on a terminal.

    Redraws at most every ``interval`` seconds; :meth:`close` erases the line.

    >>> import io
    >>> stream = io.StringIO()
    >>> p = Progress(stream, interval=0.0)
    >>> p(5, 10); p.close()
    >>> "5/10" in stream.getvalue()
    True
    """

    def __init__(self, stream: TextIO, label: str = "checking", interval: float = 0.1) -> None:
        self.stream, self.label, self.interval = stream, label, interval
        self._last = float("-inf")
        self._width = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and done < total:
            return
        self._last = now
        percent = f" ({100 * done // total}%)" if total else ""
        text = f"{self.label}: {done}/{total} evaluations{percent}"
        self._width = max(self._width, len(text))
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()

    def close(self) -> None:
        """Erase the progress line (if one was drawn)."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """Print ``usage`` and ``prog: error: message`` to stderr the way argparse does; return 2."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of ``exc``'s traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" at {os.path.relpath(last.filename)}:{last.lineno} in {last.name}"


def run_check(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """The ``check`` subcommand: build the layer and input, check, print; return the exit code."""
    import gradcheck as gc

    parser = parser or build_parser()
    try:
        target = load_target(args.layer, search_path=os.getcwd())
    except LoadError as exc:
        return _usage_error(parser, f"argument LAYER: {exc}")
    try:
        shape = target.input_shape(args.shape)
    except NoInputShape:
        return _usage_error(
            parser,
            f"argument --shape: required, since '{target.spec}' makes a layer without an "
            "input_shape attribute (e.g. --shape 8,4)",
        )
    if args.dtype not in target.dtypes:
        return _usage_error(
            parser,
            f"argument --dtype: '{target.spec}' takes no dtype argument, so only "
            f"{', '.join(target.dtypes)} can be checked",
        )
    options: dict[str, Any] = {"mode": args.mode, "kinks": args.kinks, "seed": args.seed}
    if args.rtol is not None:
        options["rtol"] = args.rtol
    if args.atol is not None:
        options["atol"] = args.atol
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        layer, x = target.make_case(shape, args.dtype, args.seed)
        report = gc.check_layer(layer, x, progress=progress, **options)
    except gc.GradientShapeError as exc:  # the layer's backward gave wrong keys/shapes: a finding
        if args.json:
            print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}))
        else:
            print(f"gradcheck: {target.spec} FAILED: {exc}")
        return 1
    except gc.GradcheckUsageError as exc:
        return _usage_error(parser, str(exc))
    except Exception as exc:  # the user's layer raised: most often an input shape it rejects
        return _usage_error(
            parser,
            f"building or running '{target.spec}' on an input of shape {shape} {args.dtype} "
            f"raised {type(exc).__name__}{_where(exc)}: {exc} (is --shape right?)",
        )
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    if args.png:  # after the report: a missing plot extra must not cost the user the verdict
        try:
            report.plot(args.png)
        except ImportError as exc:
            return _usage_error(parser, f"argument --png: {exc}")
        except OSError as exc:
            return _usage_error(parser, f"argument --png: cannot write {args.png}: {exc}")
    return 0 if report.ok else 1


def _add_check(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check",
        help="check the backward pass of package.module:factory",
        description="Check a layer's hand-written backward pass against finite differences. "
        "Exit 0 every gradient right, 1 a wrong gradient, 2 usage error.",
        epilog="example: gradcheck check gradcheck.examples.layers:BuggyDense --shape 8,4",
    )
    check.add_argument(
        "layer",
        metavar="LAYER",
        help="package.module:factory; the factory returns a fresh layer and may take rng= "
        "and dtype= keyword arguments",
    )
    check.add_argument(
        "--shape",
        type=_shape,
        metavar="N,M,...",
        help="input shape, e.g. 8,4 (default: the layer's input_shape attribute)",
    )
    check.add_argument("--mode", choices=MODES, default="auto", help="coordinates checked (auto)")
    check.add_argument(
        "--kinks", choices=KINKS, default="subgradient", help="judging kinks (subgradient)"
    )
    check.add_argument(
        "--dtype", choices=DTYPES, default="float64", help="float32 needs a factory taking dtype"
    )
    check.add_argument(
        "--seed", type=_seed, default=0, help="seed of the layer, the input and the check (0)"
    )
    check.add_argument("--rtol", type=_tolerance, help="relative tolerance (default: from dtype)")
    check.add_argument("--atol", type=_tolerance, help="absolute tolerance (default: from dtype)")
    check.add_argument("--json", action="store_true", help="print report.to_dict() as JSON")
    check.add_argument("--png", metavar="PATH", help="also draw analytic, numeric and their "
                       "difference as heatmaps into PATH (needs the plot extra)")
    check.set_defaults(func=functools.partial(run_check, parser=check))


def build_parser() -> argparse.ArgumentParser:
    """The ``gradcheck`` argument parser with every subcommand registered.

    >>> build_parser().parse_args(["check", "m:f", "--shape", "8,4"]).shape
    (8, 4)
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Gradient checks for hand-written backpropagation.",
        epilog="exit codes: 0 ok, 1 a finding, 2 usage error",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_check(subparsers)
    register_diagnostics_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it).

    >>> main(["check", "gradcheck.examples.layers:Nope"])  # usage error, explained on stderr
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except BrokenPipeError:  # `gradcheck check ... | head`: stop quietly, as the Python docs advise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # sys.exit("message"), as Python itself would
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
