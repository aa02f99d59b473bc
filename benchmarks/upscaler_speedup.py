"""`Upscaler`'s default pass against the plain reference (`model(x)`: fp32, NCHW, eager, direct PLKC) for PLKSR and
PLKSR-tiny at HD output, the two timed in alternation so that a slow phase of a shared machine hits both, with the
ratio of their medians, the PLKC route chosen and the CPU flags.

    python benchmarks/upscaler_speedup.py [--pairs 7] [--scale 4] [--models PLKSR PLKSR-tiny]

`plksr bench` measures each row in one block of runs; on a machine whose speed drifts by 10-20% within minutes (a
shared 2-core VM) its ratios drift with it, which alternation removes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time


def main() -> None:
    import torch

    from plksr_arch.bench.protocol import input_size, peers
    from plksr_arch.inference.upscaler import Upscaler

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=["PLKSR", "PLKSR-tiny"])
    args = parser.parse_args()
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split()
    isa = sorted({f for f in flags if f.startswith(("avx", "amx")) or f == "fma"})
    print(f"CPU flags: {' '.join(isa)}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    torch.manual_seed(0)
    x = torch.rand(1, 3, *input_size(args.scale))
    for name in args.models:
        model = peers(args.scale)[name]().eval()
        upscaler = Upscaler(model, "cpu", "auto")
        routes = sorted(set(upscaler.routes.values()))
        times: dict[str, list[float]] = {"reference": [], "Upscaler": []}
        runs = {"reference": model, "Upscaler": upscaler.forward}
        with torch.inference_mode():
            for run in runs.values():
                run(x)  # warm-up
            for _ in range(args.pairs):
                for label, run in runs.items():
                    tick = time.perf_counter()
                    run(x)
                    times[label].append(time.perf_counter() - tick)
        reference, fast = (statistics.median(times[k]) for k in ("reference", "Upscaler"))
        spread = ", ".join(f"{k} {min(v):.2f}-{max(v):.2f} s" for k, v in times.items())
        print(
            f"{name} x{args.scale} HD: reference {reference:.2f} s, Upscaler ({upscaler.precision}, "
            f"{upscaler.memory_format}, PLKC {'/'.join(routes)}) {fast:.2f} s: {reference / fast:.2f}x "
            f"(medians of {args.pairs} alternating pairs; {spread})"
        )


if __name__ == "__main__":
    main()
