"""Print the README speed table (markdown): training backward and checker figures.

    python tests/benchmarks/bench_table.py                  # float32 and float64, all sizes
    python tests/benchmarks/bench_table.py --dtype float32  # one dtype
    python tests/benchmarks/bench_table.py --threads 1      # pin BLAS and torch to 1 thread
    python tests/benchmarks/bench_table.py --sittings 1     # one sitting (default 3)
    python tests/benchmarks/bench_table.py --json out.json

Same measurements as tests/benchmarks/test_*_speed.py (see _mlp.py for what each column
times), with ``time.perf_counter`` medians. The contenders of one row are timed in
alternating *blocks* (``--rounds`` blocks of ``--reps`` calls each, the first call of a
block untimed, a 0.25 s pause before each block): every contender sees the same machine
load over the run, and no library's worker threads are still spinning from the previous
block when the timed calls start (without the pause torch ran 2x slower after numpy).
Medians of all timed calls; ratios are ratios of those medians. The timing itself is
gradcheck.timing's, the toolkit behind ``gradcheck bench``.

The training rows are measured in ``--sittings`` sittings (every row once, then every row
again, ...): a row shows the median over the sittings of each column and of each ratio, and
the ratios of every sitting beside it.

Other processes share the machine. For every row the share of all CPU time that *other*
processes used while the row was measured is read from /proc/stat (busy time of the whole
machine minus this process's own CPU time). A row above ``--busy`` percent is measured
again (at most ``--retries`` times) and the least disturbed attempt kept; if even that one
is above, the row is marked "disturbed" in the table. The table itself carries no verdicts;
the target summary goes to stderr, and a disturbed row gets no verdict there either.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: targets: ratio -> largest value that meets it. The training step against numpy's own
#: matrix products (torch's step stays in the table as a reference, not a target: its CPU
#: wheel multiplies with MKL, numpy with OpenBLAS): backward against the training floor,
#: forward + backward against every product of the step, each the median of the sittings
TARGETS = {"backward_over_floor": 1.15, "fwd_bwd_over_step_gemms": 1.15,
           "full_over_loss_floor": 1.3,
           # fast mode at 1M and 4M parameters: time over torch's fast_mode, and extra peak
           # memory over the bytes of the checked tensors
           "fast_over_torch": 1.0, "fast_extra_peak": 3.0,
           # speed-ups: the smallest value that meets it
           "waiting_pool_speedup": 1.8, "waiting_dask_speedup": 1.8, "blas_pool_speedup": 0.9}

Contenders = dict[str, tuple[Callable[[], Any] | None, Callable[[], Any]]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7,
                        help="blocks per contender and row (default 7)")
    parser.add_argument("--reps", type=int, default=0,
                        help="timed calls per block (default: by size, ~0.1-0.3 s a block)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads for numpy and torch (default: theirs)")
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"],
                        default=None, help="measure this dtype (repeatable; default both)")
    parser.add_argument("--busy", type=float, default=10.0,
                        help="a row measured while other processes took more than this %% "
                             "of the CPU is measured again, and marked disturbed if it "
                             "stays above (default 10)")
    parser.add_argument("--retries", type=int, default=2,
                        help="re-measurements per row at most (default 2); the least "
                             "disturbed attempt is kept")
    parser.add_argument("--sittings", type=int, default=3,
                        help="measure the training rows this many times over (default 3); "
                             "each row shows the median of its sittings")
    parser.add_argument("--size", action="append", default=None,
                        help="measure only this size (repeatable), e.g. mlp-784-256-256-10-b64")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out")
    parser.add_argument("--no-checker", action="store_true",
                        help="leave the checker out (full and fast mode)")
    parser.add_argument("--no-parallel", action="store_true",
                        help="leave out the executor= figures (process pool, Dask)")
    parser.add_argument("--json", type=Path, default=None, help="also write figures here")
    return parser.parse_args(argv)


def measure_calmly(contenders: Contenders, args: argparse.Namespace, reps: int, label: str
                   ) -> tuple[dict[str, float], float | None, bool]:
    """Median ms per call of each contender (its ``setup``, if any, untimed before each
    call), in alternating blocks with a pause before each, measured again while other
    processes took more than --busy % of the CPU (gradcheck.timing.measure_calmly); the
    least disturbed attempt's medians, its others' CPU %, and whether it stays disturbed."""
    from gradcheck.timing import PAUSE, Contender
    from gradcheck.timing import measure_calmly as measure

    def say(percent: float) -> None:
        print(f"  {label}: other processes took {percent:.0f}% of the CPU; measuring again",
              file=sys.stderr)

    m = measure({key: Contender(fn, setup) for key, (setup, fn) in contenders.items()},
                args.rounds, reps, pause=PAUSE, busy=args.busy, retries=args.retries,
                on_retry=say)
    return ({key: 1e3 * t.median for key, t in m.timings.items()}, m.others_cpu_percent,
            m.disturbed)


def backward_rows(args: argparse.Namespace, torch: Any) -> list[dict[str, Any]]:
    """One row per size and dtype: the median over ``--sittings`` sittings of each figure
    and ratio, with every sitting's ratios kept (``sittings``)."""
    import statistics

    import _mlp
    import numpy as np

    unknown = sorted(set(args.size or []) - set(_mlp.SIZES))
    if unknown:
        print(f"bench_table.py: error: unknown --size {', '.join(unknown)}; "
              f"choose from {', '.join(_mlp.SIZES)}", file=sys.stderr)
        raise SystemExit(2)  # a usage error, as argparse exits
    cases = [_mlp.make_case(name, np.dtype(dtype))
             for dtype in args.dtype or ["float32", "float64"] for name in _mlp.SIZES
             if not args.size or name in args.size]
    sittings: dict[str, list[dict[str, Any]]] = {case.label: [] for case in cases}
    for sitting in range(args.sittings):
        for case in cases:
            contenders: Contenders = {
                "fwd_bwd": (None, case.fwd_bwd),
                "backward": (case.forward, case.backward),
                "floor": (None, case.floor),
                "step_floor": (None, case.step_floor),
            }
            if torch is not None:
                contenders["torch"] = (None, _mlp.TorchMLP(case).fwd_bwd)
            reps = args.reps or {64: 60, 512: 10}.get(case.batch, 4)
            ms, others, disturbed = measure_calmly(contenders, args, reps, case.label)
            one: dict[str, Any] = {**ms, "others_cpu_percent": others, "disturbed": disturbed,
                                   "backward_over_floor": ms["backward"] / ms["floor"],
                                   "fwd_bwd_over_step_gemms": ms["fwd_bwd"] / ms["step_floor"]}
            if torch is not None:
                one["fwd_bwd_over_torch"] = ms["fwd_bwd"] / ms["torch"]
                one["step_floor_over_torch"] = ms["step_floor"] / ms["torch"]
            sittings[case.label].append(one)
            print(f"  sitting {sitting + 1}: measured {case.label}", file=sys.stderr)
    rows = []
    for case in cases:
        seen = sittings[case.label]
        row: dict[str, Any] = {"size": case.name, "dtype": case.dtype.name,
                               "widths": case.widths, "batch": case.batch,
                               "sittings": seen}
        for key, value in seen[0].items():
            if isinstance(value, float) and key != "others_cpu_percent":
                row[key] = statistics.median(s[key] for s in seen)
        known = [s["others_cpu_percent"] for s in seen if s["others_cpu_percent"] is not None]
        row["others_cpu_percent"] = max(known) if known else None
        row["disturbed_sittings"] = sum(s["disturbed"] for s in seen)
        # no verdict when most sittings were disturbed
        row["disturbed"] = 2 * row["disturbed_sittings"] > len(seen)
        rows.append(row)
    return rows


def checker_figures(args: argparse.Namespace, torch: Any) -> dict[str, Any]:
    """Full mode on the small MLP against its 2n + 1 loss evaluations alone, and
    torch.autograd.gradcheck on the same MLP for scale (fast mode: :func:`fast_rows`)."""
    import _mlp


    out: dict[str, Any] = {}
    net, xs, labels = _mlp.small_mlp()
    full = _mlp.FullCheck(net, xs)
    report = full.check()
    assert report.ok, str(report)
    out["full_coordinates"] = full.coordinates
    out["full_evaluations"] = dict(report.evaluations)
    ms, others, disturbed = measure_calmly(
        {"full": (None, full.check), "loss_floor": (None, full.loss_floor)}, args, 1,
        "full mode")
    out.update(full_ms=ms["full"], loss_floor_ms=ms["loss_floor"],
               full_over_loss_floor=ms["full"] / ms["loss_floor"],
               full_others_cpu_percent=others, full_disturbed=disturbed)

    if torch is not None:
        mlp, inputs = _mlp.torch_mlp_gradcheck_args(torch, net, xs, labels)
        assert torch.autograd.gradcheck(mlp, inputs)
        ms, others, disturbed = measure_calmly(
            {"torch": (None, lambda: torch.autograd.gradcheck(mlp, inputs)),
             "full": (None, full.check)}, args, 1, "torch gradcheck")
        out.update(torch_gradcheck_ms=ms["torch"], torch_full_ms=ms["full"],
                   torch_over_full=ms["torch"] / ms["full"],
                   torch_others_cpu_percent=others, torch_disturbed=disturbed)
    return out


def fast_rows(args: argparse.Namespace, torch: Any) -> list[dict[str, Any]]:
    """Fast mode against torch's ``gradcheck(..., fast_mode=True)`` on Dense layers of 10k
    to 4M parameters (x, W and b checked, float64, batch 8), in alternating blocks; the
    extra peak memory of each, measured in a fresh process (``peak_memory.py``)."""
    import subprocess

    import _mlp

    import gradcheck as gc

    rows = []
    for size, (n_in, n_out) in _mlp.FAST_SIZES.items():
        layer, x = _mlp.fast_dense(n_in, n_out)
        report = gc.check_layer(layer, x, mode="fast")
        assert report.ok, str(report)
        contenders: Contenders = {"gradcheck": (None, functools.partial(
            gc.check_layer, layer, x, mode="fast"))}
        if torch is not None:
            dense, inputs = _mlp.torch_dense_gradcheck_args(torch, layer, x)
            assert torch.autograd.gradcheck(dense, inputs, fast_mode=True)
            contenders["torch"] = (None, functools.partial(torch.autograd.gradcheck, dense,
                                                           inputs, fast_mode=True))
        ms, others, disturbed = measure_calmly(contenders, args, 1, f"fast mode {size}")
        row: dict[str, Any] = {"size": size, "parameters": n_in * n_out + n_out,
                               "evaluations": dict(report.evaluations), **ms,
                               "others_cpu_percent": others, "disturbed": disturbed}
        for who in ("gradcheck", "torch") if torch is not None else ("gradcheck",):
            out = subprocess.run([sys.executable, str(HERE / "peak_memory.py"), who, size],
                                 capture_output=True, text=True, check=True).stdout
            row[f"{who}_memory"] = json.loads(out)["extra_over_checked"]
        if torch is not None:
            row["gradcheck_over_torch"] = ms["gradcheck"] / ms["torch"]
        rows.append(row)
        print(f"  measured fast mode {size}", file=sys.stderr)
    return rows


def parallel_figures(args: argparse.Namespace) -> dict[str, Any]:
    """executor= with 2 workers against serial: a loss that waits 1 ms (process pool and
    Dask's client.get_executor() on a LocalCluster), a BLAS-bound loss (process pool)."""
    from concurrent.futures import ProcessPoolExecutor

    import _parallel

    out: dict[str, Any] = {}
    waiting, blas = _parallel.WaitingObjective(), _parallel.BlasObjective()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(abs, range(4)))  # workers started before any timing
        contenders: Contenders = {
            "waiting_serial": (None, lambda: _parallel.check(waiting)),
            "waiting_pool": (None, lambda: _parallel.check(waiting, pool)),
            "blas_serial": (None, lambda: _parallel.check(blas)),
            "blas_pool": (None, lambda: _parallel.check(blas, pool)),
        }
        cluster = client = None
        try:
            import distributed

            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                               processes=True, dashboard_address=None)
            client = distributed.Client(cluster)
            dask_executor = client.get_executor()
            list(dask_executor.map(abs, range(4)))
            contenders["waiting_dask"] = (None, lambda: _parallel.check(waiting, dask_executor))
            out["distributed"] = distributed.__version__
        except ImportError:
            out["distributed"] = "absent"
        try:
            ms, others, disturbed = measure_calmly(contenders, args, 1, "executor=")
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    out.update(ms=ms, others_cpu_percent=others, disturbed=disturbed,
               waiting_coordinates=_parallel.WAITING_COORDINATES,
               blas_coordinates=_parallel.BLAS_COORDINATES,
               waiting_pool_speedup=ms["waiting_serial"] / ms["waiting_pool"],
               blas_pool_speedup=ms["blas_serial"] / ms["blas_pool"])
    if "waiting_dask" in ms:
        out["waiting_dask_speedup"] = ms["waiting_serial"] / ms["waiting_dask"]
    return out


def _others(percent: float | None, disturbed: bool) -> str:
    text = "-" if percent is None else f"{percent:.0f}"
    return f"{text} (disturbed)" if disturbed else text


def print_table(rows: list[dict[str, Any]], checker: dict[str, Any], fast: list[dict[str, Any]],
                spread: dict[str, Any], info: dict[str, Any]) -> None:
    has_torch = any("torch" in r for r in rows)
    n = len(rows[0]["sittings"]) if rows else 0
    print("Reference ReLU MLP as trained (Dense(input_grad=False)-ReLU-Dense-ReLU-Dense + "
          f"SoftmaxCrossEntropy), median ms per call, each figure the median of {n} "
          "sitting(s); torch on the same weights and dtype.\n")
    print("| size | dtype | backward ms | training floor ms | backward / floor (sittings) "
          "| fwd+bwd ms | step GEMMs alone ms | fwd+bwd / GEMMs (sittings) "
          "| torch training step ms | fwd+bwd / torch | others' CPU % (most) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        torch_cells = (f"{r['torch']:.3f} | {r['fwd_bwd_over_torch']:.2f}"
                       if has_torch else "- | -")

        def each(key: str, r: dict[str, Any] = r) -> str:
            return ", ".join(f"{s[key]:.2f}" for s in r["sittings"])

        disturbed = (f" ({r['disturbed_sittings']} of {n} disturbed)"
                     if r["disturbed_sittings"] else "")
        others = "-" if r["others_cpu_percent"] is None else f"{r['others_cpu_percent']:.0f}"
        print(f"| {r['size']} | {r['dtype']} | {r['backward']:.3f} | {r['floor']:.3f} "
              f"| **{r['backward_over_floor']:.2f}** ({each('backward_over_floor')}) "
              f"| {r['fwd_bwd']:.3f} | {r['step_floor']:.3f} "
              f"| **{r['fwd_bwd_over_step_gemms']:.2f}** ({each('fwd_bwd_over_step_gemms')}) "
              f"| {torch_cells} | {others}{disturbed} |")
    print()
    if checker:
        ev = checker["full_evaluations"]
        n = checker["full_coordinates"]
        print(f"- full mode, MLP 20-30-10 batch 4 float64, x and every parameter ({n:,} "
              f"coordinates, {ev['loss']} loss + {ev['grads']} gradient evaluations): "
              f"{checker['full_ms']:.1f} ms; its 2n + 1 = {2 * n + 1} loss evaluations alone: "
              f"{checker['loss_floor_ms']:.1f} ms; full check / loss evaluations = "
              f"{checker['full_over_loss_floor']:.2f} (others' CPU % "
              f"{_others(checker['full_others_cpu_percent'], checker['full_disturbed'])})")
        if "torch_gradcheck_ms" in checker:
            print(f"- torch.autograd.gradcheck on the same MLP, same coordinates: "
                  f"{checker['torch_gradcheck_ms']:.1f} ms against gradcheck's full mode "
                  f"{checker['torch_full_ms']:.1f} ms in the same blocks "
                  f"(torch's time / gradcheck's: {checker['torch_over_full']:.1f}x; others' CPU % "
                  f"{_others(checker['torch_others_cpu_percent'], checker['torch_disturbed'])})")
        print()
    if fast:
        print("Fast mode on Dense(n_in, n_out), batch 8, float64, x, W and b checked, against "
              "torch.autograd.gradcheck(..., fast_mode=True) on the same function and values; "
              "median ms per check; extra peak memory (resident, a fresh process each) as a "
              "multiple of the bytes of x, W and b.\n")
        print("| parameters | gradcheck ms | torch fast_mode ms | gradcheck / torch "
              "| gradcheck loss evaluations | gradcheck extra peak | torch extra peak "
              "| others' CPU % |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in fast:
            has = "torch" in r
            print(f"| {r['parameters']:,} | {r['gradcheck']:.1f} "
                  f"| {r['torch']:.1f} | {r['gradcheck_over_torch']:.2f} " if has else
                  f"| {r['parameters']:,} | {r['gradcheck']:.1f} | - | - ", end="")
            torch_memory = f"{r['torch_memory']:.1f}x" if has else "-"
            print(f"| {r['evaluations']['loss']} | {r['gradcheck_memory']:.1f}x "
                  f"| {torch_memory} | {_others(r['others_cpu_percent'], r['disturbed'])} |")
        print()
    if spread:
        ms = spread["ms"]
        others = _others(spread["others_cpu_percent"], spread["disturbed"])
        print(f"executor= with 2 workers, full mode, median ms per check, in parentheses "
              f"serial / that (others' CPU % {others}):\n")
        print("| loss | serial | ProcessPoolExecutor(2) | Dask LocalCluster, 2 workers |")
        print("|---|---:|---:|---:|")
        dask = (f"{ms['waiting_dask']:.0f} ({spread['waiting_dask_speedup']:.2f}x)"
                if "waiting_dask" in ms else "-")
        print(f"| waits 1 ms, {spread['waiting_coordinates']} coordinates "
              f"| {ms['waiting_serial']:.0f} | {ms['waiting_pool']:.0f} "
              f"({spread['waiting_pool_speedup']:.2f}x) | {dask} |")
        print(f"| a 300x300 matrix product (BLAS-bound), {spread['blas_coordinates']} "
              f"coordinates | {ms['blas_serial']:.0f} | {ms['blas_pool']:.0f} "
              f"({spread['blas_pool_speedup']:.2f}x) | - |")
        print()
    print(f"Measured with `{info['command']}`: Python {info['python']}, numpy "
          f"{info['numpy']}, torch {info['torch']}, {info['cpus']} CPUs, threads "
          f"{info['threads']}, load average {info['load_before']} before / "
          f"{info['load_after']} after; a row is disturbed above {info['busy']:g}% "
          f"others' CPU.")


def verdicts(rows: list[dict[str, Any]], checker: dict[str, Any], fast: list[dict[str, Any]],
             spread: dict[str, Any]) -> list[str]:
    """One line per target and row: met / not met, or no verdict for a disturbed row."""
    lines = []

    def verdict(label: str, key: str, value: float, disturbed: bool) -> None:
        target = TARGETS[key]
        if disturbed:
            word = "disturbed: no verdict"
        else:
            word = "met" if value <= target else "NOT met"
        lines.append(f"{label}: {key} {value:.3f} (target <= {target:g}): {word}")

    for r in rows:
        label = f"{r['size']}-{r['dtype']}"
        verdict(label, "backward_over_floor", r["backward_over_floor"], r["disturbed"])
        verdict(label, "fwd_bwd_over_step_gemms", r["fwd_bwd_over_step_gemms"], r["disturbed"])
    if checker:
        verdict("full mode MLP 20-30-10", "full_over_loss_floor",
                checker["full_over_loss_floor"], checker["full_disturbed"])
    for r in fast:
        if r["size"] in ("1M", "4M") and "gradcheck_over_torch" in r:
            verdict(f"fast mode {r['size']}", "fast_over_torch", r["gradcheck_over_torch"],
                    r["disturbed"])
        if r["size"] in ("1M", "4M"):
            verdict(f"fast mode {r['size']}", "fast_extra_peak", r["gradcheck_memory"], False)
    if spread:
        for key in ("waiting_pool_speedup", "waiting_dask_speedup", "blas_pool_speedup"):
            if key in spread:
                target = TARGETS[key]
                value = spread[key]
                word = ("disturbed: no verdict" if spread["disturbed"]
                        else "met" if value >= target else "NOT met")
                lines.append(f"executor=: {key} {value:.3f} (target >= {target:g}): {word}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:  # before numpy/torch load their thread pools
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    sys.path[:0] = [str(ROOT), str(HERE)]  # this tree's gradcheck and reference_nets
    import numpy as np

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    if torch is not None and args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = backward_rows(args, torch)
    checker = {} if args.no_checker else checker_figures(args, torch)
    fast = [] if args.no_checker else fast_rows(args, torch)
    spread = {} if args.no_parallel else parallel_figures(args)
    info = {
        "command": "python tests/benchmarks/bench_table.py" + "".join(
            f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else "absent",
        "cpus": os.cpu_count(),
        "threads": (args.threads if args.threads is not None else
                    f"default (torch {torch.get_num_threads()})" if torch is not None
                    else "default"),
        "load_before": load_before,
        "load_after": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "busy": args.busy,
        "distributed": spread.get("distributed", "not measured"),
    }
    print_table(rows, checker, fast, spread, info)
    lines = verdicts(rows, checker, fast, spread)
    print("\n".join(["", "targets (training rows: the median of the sittings; backward <= "
                      "1.15x the training floor, forward + backward <= 1.15x the step's "
                      "matrix products alone; torch's step is a reference, not a target):",
                      *lines]), file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps({"info": info, "rows": rows, "checker": checker,
                                         "fast": fast,
                                         "targets": TARGETS, "verdicts": lines},
                                        indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
