"""Benchmark PTI: optimiser steps per second and peak memory, per batch, AMP on and off.

    python benchmarks/bench_pti.py                          # CUDA: SG3-R 1024, batch 1 and 4
    python benchmarks/bench_pti.py --device cpu --resolution 32 --narrow --steps 2 --batches 1

Runs `ganvid.pipeline.pti.PivotalTuner` itself (the loop `ganvid invert` runs): random SG3-R
generator (published widths unless --narrow), LPIPS-AlexNet with a random trunk (speed does not
depend on the weights), `--frames` random target crops on disk, random pivots and identity
transforms; early stop and checkpoints off. Each case tunes a fresh copy of the generator for
--warmup steps (not timed: cuDNN and allocator warm-up), then --steps timed steps. AMP
(float16 autocast + gradient scaling, fp16 layers) runs on CUDA only. Peak memory: torch's peak
allocation on CUDA (MiB).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path


def build(args: argparse.Namespace, device):
    """(generator, lpips, pivots [N,num_ws,512], transforms [N,3,3], TargetFrames)."""
    import numpy as np
    import torch

    from ganvid.nn.lpips import build_lpips
    from ganvid.nn.stylegan3 import Generator, SG3Config
    from ganvid.pipeline.pti import TargetFrames
    from ganvid.pipeline.workdir import FrameDir

    torch.manual_seed(0)
    narrow = {"channel_base": 2048, "channel_max": 64} if args.narrow else {}
    G = Generator(SG3Config.config_r(args.resolution, **narrow)).eval().to(device)
    lpips = build_lpips("alex", random_backbone=True).to(device)
    with torch.no_grad():
        z = torch.randn(args.frames, G.z_dim, device=device)
        pivots = G.mapping(z).cpu().numpy().astype(np.float32)
    transforms = np.tile(np.eye(3, dtype=np.float32), (args.frames, 1, 1))
    frames = FrameDir(Path(args.folder) / "crops")
    rng = np.random.default_rng(0)
    for index in range(args.frames):
        size = (args.resolution, args.resolution, 3)
        frames.write(index, rng.integers(0, 256, size, dtype=np.uint8))
    targets = TargetFrames(frames, args.frames, args.resolution)
    return G, lpips, pivots, transforms, targets


def bench_case(parts, batch: int, amp: bool, args: argparse.Namespace, device) -> dict:
    import torch

    from ganvid.pipeline.pti import PivotalTuner, PTIConfig

    G, lpips, pivots, transforms, targets = parts
    config = PTIConfig(
        steps=args.warmup + args.steps,
        batch=batch,
        early_stop_lpips=None,
        checkpoint_every=10**9,
        amp=amp,
    )
    checkpoint = Path(args.folder) / "never_written.pt"
    tuner = PivotalTuner(
        copy.deepcopy(G), lpips, pivots, transforms, targets, config, device, checkpoint
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = None
    for step in tuner.steps():  # each step reads its LPIPS back to the CPU: synchronised
        if step == args.warmup:
            start = time.perf_counter()
    seconds = time.perf_counter() - start
    row = {
        "batch": batch,
        "batch_run": tuner.batch,  # lower if out-of-memory halved it
        "amp": tuner.amp,
        "steps": args.steps,
        "seconds": seconds,
        "steps_per_s": args.steps / seconds,
        "images_per_s": args.steps * tuner.batch / seconds,
    }
    if device.type == "cuda":
        row["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, choices=["cpu", "cuda"])
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--narrow", action="store_true", help="narrow layers (smoke run)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--amp", nargs="+", choices=["on", "off"], default=["off", "on"])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--frames", type=int, default=8, help="target crops")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    print(
        f"PTI, SG3-R {args.resolution} px{' (narrow)' if args.narrow else ''}, LPIPS-Alex, "
        f"{args.device}{f' ({gpu})' if gpu else ''}; {args.steps} timed steps after "
        f"{args.warmup} warm-up"
    )
    print(f"{'batch':>5} {'amp':>4} {'steps/s':>8} {'images/s':>9} {'peak MiB':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        args.folder = folder
        parts = build(args, device)
        for batch in args.batches:
            for amp in args.amp:
                if amp == "on" and device.type != "cuda":
                    continue  # AMP is CUDA only: the tuner would run it as "off"
                row = bench_case(parts, batch, amp == "on", args, device)
                rows.append(row)
                peak = f"{row['peak_mib']:9.0f}" if "peak_mib" in row else f"{'-':>9}"
                print(
                    f"{batch:>5} {amp:>4} {row['steps_per_s']:8.3f} {row['images_per_s']:9.2f} "
                    f"{peak}",
                    flush=True,
                )
                if args.json:  # after each case: a run cut short keeps what it measured
                    facts = {"gpu": gpu, "resolution": args.resolution, "narrow": args.narrow}
                    Path(args.json).write_text(json.dumps({**facts, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
