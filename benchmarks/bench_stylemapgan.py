"""Benchmark StyleMapGAN: encoder + generator frames/s, the real-time editing path.

    python benchmarks/bench_stylemapgan.py                          # CPU (+ CUDA when present)
    python benchmarks/bench_stylemapgan.py --devices cpu --batches 1 8 --configs 256
    python benchmarks/bench_stylemapgan.py --devices cuda --configs 256 1024 --batches 1 8 16
    python benchmarks/bench_stylemapgan.py --devices cpu --batches 1 --sg3   # + SG3 inversion

Networks are random and full width (speed does not depend on weight values): the published
256 px / 8x8 generator (79.7 M values) and encoder (17.6 M), or the 1024 px / 16x16 light
generator. Per batch, medians over --repeat runs after one warm-up:

    encoder   one encoder pass (image -> stylemap)
    render    resizer + synthesis (stylemap -> image)
    edit      what `ganvid stylemap video` does per frame: encode the frame, blend its 12 layer
              codes with a cached reference's under a mask (max rule), render

--sg3 also runs the StyleGAN3 path of `ganvid invert` per frame at the same size (ReStyle-e4e,
3 iterations: 3 encoder passes and 2 renders, `bench_encoder.py`), which is what StyleMapGAN's
one-pass encoder replaces.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encoder import _timer  # noqa: E402  (the same wall-clock measure)

CONFIGS = {256: (8, False), 1024: (16, True)}


def build(size: int, device):
    import torch

    from ganvid.nn.stylegan2 import rosinality_channels
    from ganvid.nn.stylemapgan import Encoder, Generator, StyleMapGANConfig

    spatial, small = CONFIGS[size]
    config = StyleMapGANConfig(
        size=size,
        latent_spatial=spatial,
        small_generator=small,
        channels=rosinality_channels(size),
    )
    torch.manual_seed(0)
    generator = Generator(config).eval().requires_grad_(False).to(device)
    encoder = Encoder(config).eval().requires_grad_(False).to(device)
    return config, generator, encoder


def bench_batch(config, generator, encoder, batch: int, repeat: int, measure) -> dict:
    import torch

    from ganvid.edit.stylemap import blend_layer_codes, union_mask

    device = generator.input_device
    size = config.size
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    with torch.no_grad():
        stylemaps = encoder(images)
        reference = [c.expand(batch, -1, -1, -1) for c in generator.layer_codes(stylemaps[:1])]
    part = torch.zeros(batch, 1, size, size, device=device)
    part[..., size // 3 : size // 2, size // 3 : 2 * size // 3] = 1
    mask = union_mask(part, part)

    def edit():
        codes = generator.layer_codes(encoder(images))
        return generator.synthesis(blend_layer_codes(codes, reference, mask))

    cases = {
        "encoder": lambda: encoder(images),
        "render": lambda: generator(stylemaps),
        "edit": edit,
    }
    times = {}
    for name, fn in cases.items():
        measure(fn)  # warm-up
        times[name] = statistics.median(measure(fn) for _ in range(repeat))
    return times


def sg3_per_frame(device_name: str, size: int, repeat: int) -> float:
    """Seconds per frame of the ReStyle-e4e + SG3-R inversion at `size`, batch 1."""
    import bench_encoder

    args = argparse.Namespace(
        resolution=size, batches=[1], iters=3, repeat=repeat, with_images=True, narrow=False
    )
    return bench_encoder.bench_device(args, device_name)[0]["invert"]


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda")
    parser.add_argument("--configs", nargs="+", type=int, default=[256], choices=sorted(CONFIGS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--sg3", action="store_true", help="also time SG3 inversion per frame")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"),
        flush=True,
    )
    columns = ("encoder s/frame", "render s/frame", "edit s/frame", "edit frames/s")
    print(f"| device | config | batch | {' | '.join(columns)} |")
    print("|---|---|---|---|---|---|---|")
    for device_name in devices:
        device = torch.device(device_name)
        measure = _timer(device)
        for size in args.configs:
            config, generator, encoder = build(size, device)
            label = f"{size} px / {config.latent_spatial}x{config.latent_spatial}"
            for batch in args.batches:
                t = bench_batch(config, generator, encoder, batch, args.repeat, measure)
                print(
                    f"| {device_name} | {label} | {batch} | {t['encoder'] / batch:.3f} | "
                    f"{t['render'] / batch:.3f} | {t['edit'] / batch:.3f} | "
                    f"{batch / t['edit']:.2f} |",
                    flush=True,
                )
            del generator, encoder
        if args.sg3:
            for size in args.configs:
                seconds = sg3_per_frame(device_name, size, args.repeat)
                print(
                    f"SG3 inversion ({device_name}, {size} px): {seconds:.2f} s/frame", flush=True
                )


if __name__ == "__main__":
    main()
