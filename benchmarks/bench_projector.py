"""Benchmark the optimisation projector: seconds per iteration with LPIPS-VGG (`--method optimize`
/ `encoder+optimize`) against Image2StyleGAN's loss (`--method image2stylegan`: VGG-16 conv1_1,
conv1_2, conv3_2, conv4_2 + pixel MSE).

    python benchmarks/bench_projector.py                          # CPU, 64 px generator
    python benchmarks/bench_projector.py --channel-max 64         # CPU, narrow generator
    python benchmarks/bench_projector.py --device cuda --resolution 1024 --steps 20

Networks are random (speed does not depend on weight values): an SG3-R generator at
`--resolution` (full width unless --channel-max), LPIPS with a full-width random VGG trunk and
the full-width VGG-16 features of the paper's loss. One iteration = render, loss at
min(256, resolution) px, backward to the latents, Adam step. Printed: median seconds per
iteration over `--steps` (the first step, which also computes w_avg, is excluded), and the
loss term alone (forward + backward, batch 1) at 256 px.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def distances(device) -> dict:
    import torch

    from ganvid.nn.lpips import build_lpips
    from ganvid.nn.vgg16 import PerceptualMSE, VGG16Features

    torch.manual_seed(0)
    return {
        "lpips-vgg": build_lpips("vgg", random_backbone=True).to(device),
        "image2stylegan": PerceptualMSE(VGG16Features()).to(device),
    }


def seconds_per_step(G, distance, config, device) -> float:
    import torch

    from ganvid.pipeline.projector import Projector

    target = torch.rand(1, 3, G.img_resolution, G.img_resolution, device=device) * 2 - 1
    stamps: list[float] = []

    def on_step(step: int, loss: float) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    Projector(G, distance, config).project(target, on_step=on_step)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False))


def loss_alone(distance, device, side: int = 256, repeat: int = 3) -> float:
    import torch

    a = (torch.rand(1, 3, side, side, device=device) * 2 - 1).requires_grad_(True)
    b = torch.rand(1, 3, side, side, device=device) * 2 - 1
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        distance(a, b).sum().backward()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=None, help="[cpu 64, cuda 1024]")
    parser.add_argument("--channel-max", type=int, default=None, help="[full width]")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from ganvid.nn.stylegan3 import Generator, SG3Config
    from ganvid.pipeline.projector import ProjectorConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    resolution = args.resolution or (1024 if device.type == "cuda" else 64)
    widths = {} if args.channel_max is None else {"channel_max": args.channel_max}
    torch.manual_seed(0)
    G = Generator(SG3Config.config_r(resolution, **widths)).eval().requires_grad_(False).to(device)
    configs = {
        "lpips-vgg": ProjectorConfig(steps=args.steps, w_avg_samples=1000),
        "image2stylegan": ProjectorConfig.image2stylegan(steps=args.steps, w_avg_samples=1000),
    }
    width = "full width" if args.channel_max is None else f"channel_max {args.channel_max}"
    print("| loss | generator | s/iteration | loss alone fwd+bwd s (256 px) |")
    print("|---|---|---|---|")
    for name, distance in distances(device).items():
        step = seconds_per_step(G, distance, configs[name], device)
        alone = loss_alone(distance, device)
        print(f"| {name} | SG3-R {resolution} px, {width} | {step:.3f} | {alone:.3f} |", flush=True)


if __name__ == "__main__":
    main()
