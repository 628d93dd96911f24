"""The command line: ``python -m gradcheck`` (also installed as the ``gradcheck`` script).

Subcommands:

- ``check LAYER``: check a layer's backward pass, where LAYER is ``package.module:factory``
  (a callable returning a fresh layer; it may take ``rng=`` and ``dtype=``);
- ``bench LAYER``: time the layer's forward and backward per dtype, per sublayer of a
  network, against its matrix products where they are known (:mod:`gradcheck.bench`);
- ``flow`` and ``convention``: diagnostics from :mod:`gradcheck.diagnostics`.

Exit codes: 0 every gradient right, 1 a finding (a wrong gradient, a gradient of the
wrong shape, or an UNVERIFIED report: the differences could not decide), 2 a usage error
(bad path, bad shape, bad option; a module that fails to import, a layer that breaks the
protocol: one line on stderr, no traceback), 130 Ctrl-C
(also while Python is still importing). The report goes to stdout (``--json``:
``report.to_dict()`` as JSON, and whatever the user's module prints goes to stderr);
progress goes to stderr, and only when stderr is a terminal and the check takes more
than a second. A ``--png`` that cannot be written is said on stderr; the exit code stays
the verdict's (2 only when the gradients were right).

>>> main(["check", "gradcheck.examples.layers:Dense", "--shape", "8,4"])  # doctest: +ELLIPSIS
gradcheck: all 3 tensors ok  (layer gradcheck.examples.layers.Dense, input (8, 4) float64, ...)
...
0

A layer and input built by ``check --dtype D --seed S`` are exactly those of the pytest
plugin's generated item ``LAYER-D-seedS``, so a failing item is repeated on the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

# Only light modules here (numpy, the engine and the diagnostics load inside main()), so
# that a Ctrl-C during the slow imports meets main()'s handler: one line, exit 130.
from gradcheck.loading import (
    DTYPES,
    InputTooLarge,
    LayerTarget,
    LoadError,
    NoInputShape,
    check_input_size,
    explain_failure,
    load_target,
    make_input,
    parse_shape,
    parse_spec,
    repeat_command,
)
from gradcheck.options import FLAGS, MAX_INPUT_ELEMENTS, add_check_options
from gradcheck.progress import ProgressBar

__all__ = ["build_parser", "main"]

PROG = "gradcheck"
#: Seconds a check runs before the progress bar appears (on a terminal only).
PROGRESS_DELAY = 1.0
#: Inputs with more elements than this get a note on stderr that the check may take a while.
NOTE_ELEMENTS = 100_000
#: Exit code after Ctrl-C, as shells report a process ended by SIGINT (128 + 2).
INTERRUPTED = 130


def _shape(text: str) -> tuple[int, ...]:
    try:
        return parse_shape(text)
    except LoadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """Print ``usage`` and ``prog: error: message`` to stderr the way argparse does; return 2."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def _error(message: str) -> int:
    """One line on stderr for a problem in the user's code or data, not in the arguments;
    return 2 (1 is kept for "a wrong gradient")."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _prints_to_stderr(json_out: bool) -> Iterator[None]:
    """Under ``--json`` stdout carries the JSON alone: what the user's module prints (on
    import, in forward) goes to stderr while their code runs."""
    with contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext():
        yield


def check_command(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
                  ) -> int:
    """The ``check`` subcommand: build the layer and input, check, print; return the exit code."""
    import gradcheck as gc

    parser = parser or build_parser()
    options: dict[str, Any] = {name: getattr(args, name) for name in FLAGS}
    finding: gc.GradientShapeError | None = None
    with _prints_to_stderr(args.json):
        case = _layer_target(args, parser)
        if isinstance(case, int):
            return case
        target, shape = case
        try:
            layer = target.make_layer(args.dtype, args.seed)
        except LoadError as exc:  # it returned None
            return _error(str(exc))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the factory raised or exited
            return _error(explain_failure(exc, f"building '{target.spec}'"))
        try:
            x = make_input(shape, args.dtype, args.seed)
        except (ValueError, MemoryError) as exc:  # numpy refuses a shape that --force let by
            return _error(f"{target.spec}: cannot build an input of shape {shape} "
                          f"{args.dtype}: {type(exc).__name__}: {exc}")
        progress = ProgressBar(sys.stderr, delay=PROGRESS_DELAY) if sys.stderr.isatty() else None
        try:
            report = gc.check_layer(layer, x, progress=progress, **options)
        except gc.GradientShapeError as exc:  # backward gave wrong keys/shapes: a finding
            finding = exc
        except gc.GradcheckUsageError as exc:  # the layer broke the protocol (forward gave None)
            return _error(f"{target.spec}: {exc}")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's layer raised: often a shape it rejects
            hint = " (is --shape right?)" if isinstance(exc, ValueError | IndexError) else ""
            return _error(explain_failure(exc, f"running '{target.spec}' on an input of shape "
                                               f"{shape} {args.dtype}") + hint)
        finally:
            if progress is not None:
                progress.close()
    if finding is not None:
        if args.json:
            print(json.dumps({"ok": False, "error": type(finding).__name__,
                              "message": str(finding)}))
        else:
            print(f"gradcheck: {target.spec} FAILED: {finding}")
        return 1
    report.repeat = repeat_command(target.spec, shape, args.dtype, args.seed, options)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    verdict = 0 if report.ok else 1
    # after the report: a missing plot extra must not cost the user the verdict
    if args.png and not _drew(report, args.png):
        return verdict or 2  # a wrong gradient stays 1
    return verdict


def _drew(report: Any, path: str) -> bool:
    """Draw ``report`` into ``path`` (--png); say on stderr why it could not be."""
    try:
        report.plot(path)
    except (ImportError, OSError) as exc:
        print(f"{PROG}: could not write --png {path}: {exc}", file=sys.stderr)
        return False
    return True


def _layer_target(args: argparse.Namespace, parser: argparse.ArgumentParser
                  ) -> tuple[LayerTarget, tuple[int, ...]] | int:
    """The layer's factory and the input shape, or the exit code of why not."""
    try:
        target = load_target(args.layer, search_path=os.getcwd())
    except LoadError as exc:
        return _usage_error(parser, f"argument LAYER: {exc}")
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's module failed to import (or exited)
        module = parse_spec(args.layer)[0]
        return _error(explain_failure(exc, f"cannot load '{args.layer.strip()}': importing "
                                           f"module '{module}'"))
    try:
        shape = target.input_shape(args.shape)
    except NoInputShape:
        return _usage_error(
            parser,
            f"argument --shape: required, since '{target.spec}' makes a layer without an "
            "input_shape attribute (e.g. --shape 8,4)",
        )
    except LoadError as exc:  # an input_shape attribute that is not a shape
        return _error(str(exc))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the factory raised while we read input_shape
        return _error(explain_failure(exc, f"building '{target.spec}' to read its input_shape"))
    if args.dtype not in target.dtypes:
        return _usage_error(
            parser,
            f"argument --dtype: '{target.spec}' takes no dtype argument, so only "
            f"{', '.join(target.dtypes)} can be checked",
        )
    try:
        size = check_input_size(shape, args.dtype, force=args.force)
    except InputTooLarge as exc:
        return _error(f"{target.spec}: {exc}")
    if size > NOTE_ELEMENTS:
        print(f"{PROG}: {target.spec}: input {shape} {args.dtype} has {size:,} elements; a "
              "check of this size can take a while", file=sys.stderr)
    return target, shape


def _add_check(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check",
        help="check the backward pass of package.module:factory",
        description="Check a layer's hand-written backward pass against finite differences. "
        "Exit 0 every gradient verified, 1 a wrong gradient or an UNVERIFIED one (the finite "
        "differences could not decide; the report says why and what to do), 2 usage error.",
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
    check.add_argument(
        "--dtype", choices=DTYPES, default="float64", help="float32 needs a factory taking dtype"
    )
    add_check_options(check.add_argument, argument_error=argparse.ArgumentTypeError)
    check.add_argument("--force", action="store_true", help="check an input larger than "
                       f"{MAX_INPUT_ELEMENTS:,} elements (refused by default: it takes hours)")
    check.add_argument("--json", action="store_true", help="print report.to_dict() as JSON")
    check.add_argument("--png", metavar="PATH", help="also draw analytic, numeric and their "
                       "difference as heatmaps into PATH (needs matplotlib: the plot extra)")
    check.set_defaults(func=functools.partial(check_command, parser=check))


def _version_line() -> str:
    """``gradcheck 0.1.0`` (``gradcheck.__version__``: the installed distribution's)."""
    import gradcheck

    return f"{PROG} {gradcheck.__version__}"


# --------------------------------------------------------------------------- bench


def _dtypes(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    bad = [d for d in names if d not in DTYPES]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"invalid dtype {', '.join(bad) or repr(text)}: choose from {', '.join(DTYPES)}, "
            "comma-separated (float32,float64)")
    return names


def bench_command(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
                  ) -> int:
    """The ``bench`` subcommand: build the layer per dtype, time it, print the report;
    return the exit code (0 measured, 2 a usage error or a layer that fails to run)."""
    from gradcheck.bench import Case, Settings, benchmark_cases
    from gradcheck.errors import GradcheckUsageError

    parser = parser or build_parser()
    settings = Settings(rounds=args.rounds, min_time=args.min_time, threads=args.threads,
                        busy=args.busy, retries=args.retries, seed=args.seed,
                        per_layer=not args.no_layers)
    try:
        settings.validate()
    except GradcheckUsageError as exc:
        return _usage_error(parser, str(exc).replace("threads=", "--threads ", 1)
                            .replace("rounds=", "--rounds ", 1)
                            .replace("min_time=", "--min-time ", 1)
                            .replace("retries=", "--retries ", 1))
    with _prints_to_stderr(args.json):
        try:
            target = load_target(args.layer, search_path=os.getcwd())
        except LoadError as exc:
            return _usage_error(parser, f"argument LAYER: {exc}")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's module failed to import (or exited)
            return _error(explain_failure(exc, f"cannot load '{args.layer.strip()}': "
                                               f"importing module '{parse_spec(args.layer)[0]}'"))
        try:
            shape = target.input_shape(args.shape)
        except NoInputShape:
            return _usage_error(parser, f"argument --shape: required, since '{target.spec}' "
                                "makes a layer without an input_shape attribute (e.g. --shape 8,4)")
        except LoadError as exc:
            return _error(str(exc))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return _error(explain_failure(exc, f"building '{target.spec}' to read its "
                                               "input_shape"))
        dtypes = args.dtype or target.dtypes
        missing = [d for d in dtypes if d not in target.dtypes]
        if missing:
            return _usage_error(parser, f"argument --dtype: '{target.spec}' takes no dtype "
                                f"argument, so only {', '.join(target.dtypes)} can be timed")
        cases = []
        for dtype in dtypes:
            try:
                layer, x = target.make_case(shape, dtype, args.seed)
            except LoadError as exc:  # it returned None
                return _error(str(exc))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                return _error(explain_failure(exc, f"building '{target.spec}'"))
            cases.append(Case(dtype, layer, x))
        try:
            report = benchmark_cases(cases, target.spec, settings,
                                     progress=lambda text: print(f"{PROG}: {text}",
                                                                 file=sys.stderr))
        except GradcheckUsageError as exc:
            return _error(f"{target.spec}: {exc}")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's layer raised: often a shape it rejects
            hint = " (is --shape right?)" if isinstance(exc, ValueError | IndexError) else ""
            return _error(explain_failure(exc, f"running '{target.spec}' on an input of shape "
                                               f"{shape}") + hint)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    if args.png and not _drew(report, args.png):
        return 2
    return 0


def _add_bench(subparsers: Any) -> None:
    from gradcheck.bench import BUSY, MIN_TIME, ROUNDS

    bench = subparsers.add_parser(
        "bench",
        help="time the forward and backward of package.module:factory",
        description="Time a layer's forward and backward per dtype (each backward after a "
        "fresh forward); for a network (a layer with a 'layers' list) each layer's share of "
        "the backward, the slowest named; bytes allocated per backward; and backward over "
        "its matrix products alone where the layer uses its params as one (Dense-like). "
        "Exit 0 measured, 2 usage error.",
        epilog="example: gradcheck bench gradcheck.examples.layers:Conv1d --dtype float32,float64",
    )
    bench.add_argument("layer", metavar="LAYER", help="package.module:factory; the factory "
                       "returns a fresh layer and may take rng= and dtype= keyword arguments")
    bench.add_argument("--shape", type=_shape, metavar="N,M,...",
                       help="input shape, e.g. 64,784 (default: the layer's input_shape)")
    bench.add_argument("--dtype", type=_dtypes, metavar="D[,D]", default=None,
                       help="dtypes to time, comma-separated (default: every dtype the factory "
                       "can build: float64, and float32 if it takes dtype)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the layer, input and "
                       "upstream gradient (default 0)")
    bench.add_argument("--threads", type=int, default=None, metavar="N",
                       help="pin numpy's BLAS threads to N (needs threadpoolctl; default: the "
                       "library's own)")
    bench.add_argument("--rounds", type=int, default=ROUNDS,
                       help=f"alternating blocks per contender (default {ROUNDS})")
    bench.add_argument("--min-time", type=float, default=MIN_TIME, metavar="SECONDS",
                       help=f"seconds a block lasts at least (default {MIN_TIME})")
    bench.add_argument("--busy", type=float, default=BUSY, metavar="PERCENT",
                       help="measure again while other processes take more than this %% of "
                       f"the CPU, and mark the figures disturbed if they stay above "
                       f"(default {BUSY:g})")
    bench.add_argument("--retries", type=int, default=1,
                       help="re-measurements of a disturbed dtype at most (default 1)")
    bench.add_argument("--no-layers", action="store_true",
                       help="time the network as a whole only, not each of its layers")
    bench.add_argument("--json", action="store_true", help="print report.to_dict() as JSON")
    bench.add_argument("--png", metavar="PATH", help="also draw the per-layer backward times "
                       "as bars into PATH (needs the plot extra)")
    bench.set_defaults(func=functools.partial(bench_command, parser=bench))


def build_parser() -> argparse.ArgumentParser:
    """The ``gradcheck`` argument parser with every subcommand registered.

    >>> build_parser().parse_args(["check", "m:f", "--shape", "8,4"]).shape
    (8, 4)
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Gradient checks for hand-written backpropagation.",
        epilog="exit codes: 0 ok, 1 a finding (check: a wrong gradient or an UNVERIFIED one; "
        "flow: a vanishing or exploding gradient; convention: ReLU'(0) changes a gradient), "
        "2 usage error, 130 Ctrl-C",
    )
    parser.add_argument("--version", action="version", version=_version_line(),
                        help="print gradcheck's version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_check(subparsers)
    _add_bench(subparsers)
    from gradcheck.diagnostics import register_commands  # numpy: loaded inside main()

    register_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it).

    >>> main(["check", "gradcheck.examples.layers:Nope"])  # usage error, explained on stderr
    2
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback, the shell's code for SIGINT
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED
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
