"""Where the time goes: torch.profiler's top operators for a synthesis batch or a PTI step.

    python benchmarks/profile_top.py synthesis --precision fp32     # SG3-R 1024, batch 4
    python benchmarks/profile_top.py pti --amp                      # one PTI step, batch 4
    python benchmarks/profile_top.py synthesis --device cpu --resolution 32 --narrow

Random weights (time does not depend on them). After --warmup untimed runs, --runs runs are
profiled; the table lists the --rows operators with the most self time on the device (CUDA
time on a GPU, CPU time otherwise), with the CUDA ops backend named at the top.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench_pti


def synthesis_call(args: argparse.Namespace, device):
    import torch

    from ganvid.nn.stylegan3 import Generator, SG3Config

    narrow = {"channel_base": 2048, "channel_max": 64} if args.narrow else {}
    G = Generator(SG3Config.config_r(args.resolution, **narrow)).eval().requires_grad_(False)
    G = G.to(device)
    ws = torch.randn(args.batch, G.num_ws, G.w_dim, device=device)

    def call() -> None:
        with torch.no_grad():
            G.synthesis(ws, force_fp32=args.precision == "fp32")

    return call


def pti_call(args: argparse.Namespace, device, folder: str):
    """One PTI step per call (the tuner's own step: forward, LPIPS, backward, Adam)."""
    from ganvid.pipeline.pti import PivotalTuner, PTIConfig

    args.folder, args.frames = folder, max(args.batch, 4)
    G, lpips, pivots, transforms, targets = bench_pti.build(args, device)
    config = PTIConfig(
        steps=10**6, batch=args.batch, early_stop_lpips=None, checkpoint_every=10**9, amp=args.amp
    )
    tuner = PivotalTuner(
        G, lpips, pivots, transforms, targets, config, device, Path(folder) / "none.pt"
    )
    steps = tuner.steps()
    return lambda: next(steps)


def main() -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["synthesis", "pti"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--narrow", action="store_true", help="narrow layers (smoke run)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--amp", action="store_true", help="PTI with AMP")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        from ganvid.ops.loader import describe_backend

        activities.append(ProfilerActivity.CUDA)
        print(f"GPU {torch.cuda.get_device_name(device)}; ops: {describe_backend()}")
    with tempfile.TemporaryDirectory() as folder:
        if args.what == "synthesis":
            call = synthesis_call(args, device)
            what = f"SG3-R {args.resolution} synthesis, batch {args.batch}, {args.precision}"
        else:
            call = pti_call(args, device, folder)
            what = f"PTI step at {args.resolution}, batch {args.batch}, AMP {args.amp}"
        for _ in range(args.warmup):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        with profile(activities=activities) as prof:
            for _ in range(args.runs):
                call()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{what}: {args.runs} runs, top {args.rows} by {sort}")
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))


if __name__ == "__main__":
    main()
