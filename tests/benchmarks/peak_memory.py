"""Extra peak memory of one fast-mode check, gradcheck's or torch's, in a fresh process.

    python tests/benchmarks/peak_memory.py gradcheck 1M
    python tests/benchmarks/peak_memory.py torch 4M

Prints one JSON line: the check's extra peak resident memory (Linux: VmHWM after a reset
of the peak, minus VmRSS before the check) in bytes and as a multiple of the bytes of the
tensors checked (x, W and b of ``_mlp.fast_dense``). The check runs once first, so that
what either library allocates once and keeps (the layer's gradient buffers, torch's
allocator caches) is not counted as the check's. Used by ``bench_table.py``; a process of
its own, because torch's allocations are invisible to tracemalloc and resident memory is
per process.

glibc keeps large freed blocks resident and raises its mmap threshold after the first
free, so the second check would reuse the first one's memory unseen; the script re-runs
itself with a fixed threshold (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_), under
which every large array is mapped when made and returned when freed, for both contenders.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]  # this tree's gradcheck, and _mlp


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def extra_peak_bytes(check: object) -> int:
    """Peak resident memory during ``check()`` above the resident memory before it."""
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:  # resets VmHWM to the current RSS
        clear.write("5")
    check()  # type: ignore[operator]
    return 1024 * (_status_kib("VmHWM") - before)


def main(argv: list[str]) -> int:
    if any(os.environ.get(k) != v for k, v in MALLOC.items()):
        os.execve(sys.executable, [sys.executable, __file__, *argv], {**os.environ, **MALLOC})
    who, size = argv
    import _mlp

    layer, x = _mlp.fast_dense(*_mlp.FAST_SIZES[size])
    if who == "gradcheck":
        import gradcheck as gc

        def check() -> object:
            return gc.check_layer(layer, x, mode="fast")
    else:
        import torch

        dense, inputs = _mlp.torch_dense_gradcheck_args(torch, layer, x)

        def check() -> object:
            return torch.autograd.gradcheck(dense, inputs, fast_mode=True)
    check()
    extra = extra_peak_bytes(check)
    checked = _mlp.checked_bytes(layer, x)
    print(json.dumps({"who": who, "size": size, "extra_peak_bytes": extra,
                      "checked_bytes": checked, "extra_over_checked": extra / checked}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
