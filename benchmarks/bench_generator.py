"""Benchmark StyleGAN3 synthesis: images/s and peak memory, per resolution, batch and device.

    python benchmarks/bench_generator.py                    # 256 and 1024, batch 1 and 8
    python benchmarks/bench_generator.py --quick            # 256, batch 1, one timed run
    python benchmarks/bench_generator.py --sizes 256 --batches 1 4 --devices cpu --config T
    python benchmarks/bench_generator.py --ops ref cuda     # on a GPU: reference vs CUDA ops

Each case runs in a fresh subprocess so its peak memory is its own: CUDA = peak allocated by
torch (MiB), CPU = peak resident set size of the process (MiB, includes torch itself, ~0.3 GiB).
Weights are random (speed does not depend on their values); ws are random. Times are wall-clock
medians over `--repeat` runs after one warm-up; fp16 layers on CUDA unless --fp32 (NVIDIA's
default inference path). The table prints absolute times per batch and per image.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run_case(args: argparse.Namespace) -> dict:
    """One (config, size, batch, device, ops) case in this process; returns the measurements."""
    os.environ["GANVID_OPS"] = args.ops_one
    import resource

    import torch

    from ganvid.nn.stylegan3 import Generator, SG3Config
    from ganvid.ops.loader import describe_backend

    torch.set_num_threads(args.threads)
    device = torch.device(args.device_one)
    make = SG3Config.config_r if args.config == "R" else SG3Config.config_t
    G = Generator(make(args.size_one)).eval().requires_grad_(False).to(device)
    ws = torch.randn(args.batch_one, G.num_ws, G.w_dim, device=device)

    def once() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            G.synthesis(ws, force_fp32=args.fp32)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    warmup = once()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = [once() for _ in range(args.repeat)]
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    seconds = statistics.median(times)
    return dict(
        config=args.config,
        size=args.size_one,
        batch=args.batch_one,
        device=str(device),
        ops=describe_backend() if device.type == "cuda" else "ref (CPU)",
        warmup_s=warmup,
        batch_s=seconds,
        image_ms=seconds / args.batch_one * 1e3,
        images_per_s=args.batch_one / seconds,
        peak_mib=peak_mib,
    )


def _cases(args: argparse.Namespace) -> list[tuple[str, int, int, str]]:
    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    cases = []
    for device in devices:
        for ops in args.ops if device == "cuda" else ["ref"]:
            for size in args.sizes:
                for batch in args.batches:
                    cases.append((device, ops, size, batch))
    return cases


def _child(args: argparse.Namespace, device: str, ops: str, size: int, batch: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--one",
        f"--device-one={device}",
        f"--ops-one={ops}",
        f"--size-one={size}",
        f"--batch-one={batch}",
        f"--config={args.config}",
        f"--repeat={args.repeat}",
        f"--threads={args.threads}",
    ] + (["--fp32"] if args.fp32 else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return dict(device=device, ops=ops, size=size, batch=batch, error=tail)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_row(r: dict) -> None:
    if "error" in r:
        print(
            f"{r['device']:>6} {r['ops']:>4} {r['size']:>5} {r['batch']:>5}  failed: {r['error']}"
        )
        return
    print(
        f"{r['device']:>6} {r['ops'][:4]:>4} {r['size']:>5} {r['batch']:>5} "
        f"{r['batch_s']:>10.3f} {r['image_ms']:>10.1f} {r['images_per_s']:>9.3f} "
        f"{r['peak_mib']:>9.0f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--ops", nargs="+", choices=["ref", "cuda", "auto"], default=["ref"])
    parser.add_argument("--config", choices=["R", "T"], default="R")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case")
    parser.add_argument("--threads", type=int, default=torch_threads_default())
    parser.add_argument("--fp32", action="store_true", help="no fp16 layers on CUDA")
    parser.add_argument("--quick", action="store_true", help="256 px, batch 1, one timed run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device-one", help=argparse.SUPPRESS)
    parser.add_argument("--ops-one", default="ref", help=argparse.SUPPRESS)
    parser.add_argument("--size-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(args)))
        return
    if args.quick:
        args.sizes, args.batches, args.repeat = [256], [1], 1
    print(f"StyleGAN3-{args.config} synthesis, random weights, {args.threads} CPU threads")
    print(
        f"{'device':>6} {'ops':>4} {'size':>5} {'batch':>5} {'s/batch':>10} {'ms/image':>10} "
        f"{'images/s':>9} {'peak MiB':>9}"
    )
    for device, ops, size, batch in _cases(args):
        _print_row(_child(args, device, ops, size, batch))


def torch_threads_default() -> int:
    return max(1, os.cpu_count() or 1)


if __name__ == "__main__":
    main()
