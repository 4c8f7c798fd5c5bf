"""Benchmark what paste-back and FoV expansion add to a frame, against the plain render.

    python benchmarks/bench_compose.py                  # 1024 on CUDA if present, and 32 on CPU
    python benchmarks/bench_compose.py --cases cpu:64   # device:size pairs
    python benchmarks/bench_compose.py --frame 1920x1080 --batch 4 --repeat 5
    python benchmarks/bench_compose.py --cases cuda:1024 --json compose.json

Per case (random weights; speed does not depend on their values; CPU cases use narrow layers,
channel_base 4096 and channel_max 128, so they finish in minutes: compare ratios, not times):
  plain    `G.synthesis(ws, transform)` per frame (batch --batch, fp32 as ganvid renders)
  fov      `synthesize_fov` at +25 % per side (all 9 views per frame, feathered joins)
  paste    `PasteBack` of one --paste-render px render (default 1024, the published size) into a
           --frame sized frame, the face filling 60 % of its height (numpy + OpenCV: it runs on
           the CPU whatever the render device, so it does not depend on the case's size)
Times are wall-clock medians over --repeat runs after one warm-up, in seconds per frame; the
table shows absolute times, the extra over the plain render and the ratio to it. CUDA peak
memory (MiB) is given for the plain and FoV renders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeat: int, sync: Callable[[], None]) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_face(width: int, height: int, side: float) -> tuple[np.ndarray, np.ndarray]:
    """68 landmarks of an upright face of about `side` px in the frame centre, and the square
    crop quad around it (corner order of ganvid.face.align: top-left, bottom-left,
    bottom-right, top-right)."""
    cx, cy, r = width / 2, height / 2, side / 4
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, 0, 17)  # jaw: a lower half-ellipse, left to right
    points[:17] = np.stack([cx - r * np.cos(angles), cy + 1.2 * r * np.sin(angles)], 1)
    points[17:27] = np.stack([np.linspace(cx - 0.8 * r, cx + 0.8 * r, 10), np.full(10, cy - r)], 1)
    points[27:] = [cx, cy]  # nose, eyes and mouth: unused by the hull mask
    half = side / 2
    quad = np.array(
        [
            [cx - half, cy - half],
            [cx - half, cy + half],
            [cx + half, cy + half],
            [cx + half, cy - half],
        ]
    )
    return points, quad


def bench_case(device_name: str, size: int, args: argparse.Namespace) -> dict:
    import torch

    from ganvid.nn.stylegan3 import Generator, SG3Config
    from ganvid.pipeline.fov import Expansion, synthesize_fov
    from ganvid.pipeline.paste_back import PasteBack

    device = torch.device(device_name)
    torch.manual_seed(0)
    make = SG3Config.config_r if args.config == "R" else SG3Config.config_t
    narrow = {} if device.type == "cuda" else {"channel_base": 4096, "channel_max": 128}
    G = Generator(make(size, **narrow)).eval().requires_grad_(False).to(device)
    ws = torch.randn(args.batch, G.num_ws, G.w_dim, device=device)
    transforms = torch.eye(3, device=device).expand(args.batch, 3, 3).contiguous()
    quarter = size // 4
    expansion = Expansion(quarter, quarter, quarter, quarter)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def peak(fn: Callable[[], object]) -> float:
        if device.type != "cuda":
            return float("nan")
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync()
        return torch.cuda.max_memory_allocated(device) / 2**20

    with torch.no_grad():
        plain = lambda: G.synthesis(ws, transform=transforms, force_fp32=True)  # noqa: E731
        fov = lambda: synthesize_fov(G, ws, transforms, expansion)  # noqa: E731
        plain_s = median_time(plain, args.repeat, sync) / args.batch
        fov_s = median_time(fov, args.repeat, sync) / args.batch
        plain_mib, fov_mib = peak(plain), peak(fov)

    width, height = (int(v) for v in args.frame.lower().split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    side = args.paste_render
    render = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    landmarks, quad = synthetic_face(width, height, side=min(width, height) * 0.6)
    paste = PasteBack()
    paste_s = median_time(lambda: paste(frame, render, quad, landmarks), args.repeat, lambda: None)
    return {
        "device": device_name,
        "size": size,
        "plain_s": plain_s,
        "fov_s": fov_s,
        "paste_s": paste_s,
        "plain_mib": plain_mib,
        "fov_mib": fov_mib,
    }


def show(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"config {args.config}, batch {args.batch}, FoV +25 % per side (9 views), paste-back of a "
        f"{args.paste_render} px render into {args.frame}; seconds per frame (median of "
        f"{args.repeat})"
    )
    header = (
        f"{'device':<7}{'size':>6}{'plain s':>10}{'fov s':>10}{'fov extra':>11}{'fov x':>7}"
        f"{'paste s':>10}{'paste x':>9}{'plain MiB':>11}{'fov MiB':>9}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['device']:<7}{r['size']:>6}{r['plain_s']:>10.4f}{r['fov_s']:>10.4f}"
            f"{r['fov_s'] - r['plain_s']:>11.4f}{r['fov_s'] / r['plain_s']:>7.2f}"
            f"{r['paste_s']:>10.4f}{r['paste_s'] / r['plain_s']:>9.2f}"
            f"{r['plain_mib']:>11.0f}{r['fov_mib']:>9.0f}"
        )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ["cuda:1024", "cpu:32"] if torch.cuda.is_available() else ["cpu:32"]
    parser.add_argument("--cases", nargs="+", default=default, help="device:size pairs")
    parser.add_argument("--config", choices=["R", "T"], default="R")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frame", default="1920x1080", help="source frame WxH for paste-back")
    parser.add_argument(
        "--paste-render", type=int, default=1024, help="side of the render pasted back, px"
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--json", help="also write the rows (seconds per frame, MiB) here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for case in args.cases:
        device, _, size = case.partition(":")
        rows.append(bench_case(device, int(size), args))
    show(rows, args)
    if args.json:
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
        with open(args.json, "w") as handle:
            json.dump({"gpu": gpu, "frame": args.frame, "batch": args.batch, "rows": rows}, handle)


if __name__ == "__main__":
    main()
