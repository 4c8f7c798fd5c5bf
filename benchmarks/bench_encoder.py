"""Benchmark ReStyle encoder inversion: frames/s for 3 iterations at batch 1 and 8.

    python benchmarks/bench_encoder.py                       # CPU (+ CUDA when present)
    python benchmarks/bench_encoder.py --devices cpu --resolution 256 --batches 1
    python benchmarks/bench_encoder.py --devices cuda --resolution 1024 --batches 1 8 16
    python benchmarks/bench_encoder.py --devices cpu --resolution 32 --narrow --json enc.json

Networks are random (speed does not depend on weight values) and full width: the published
IR-SE50 ReStyle-e4e encoder (186 M parameters, 256 px input) and an SG3-R generator at
`--resolution` (the published decoder is 1024 px; on CPU one 1024 px render takes minutes and
~14 GB, so the CPU default is 256; --narrow shrinks both networks for a smoke run). Inputs are
random images at the generator's resolution.

One inversion = the cached average image (rendered once, excluded), then per iteration one
encoder pass and, except after the last one, one render to feed back: 3 encoder passes and
2 renders for 3 iterations (+1 render with --with-images). The table gives wall-clock medians
over --repeat runs after one warm-up, per batch and per frame, plus the parts measured alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def _timer(device):
    import torch

    def measure(fn) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return measure


def bench_device(args: argparse.Namespace, device_name: str) -> list[dict]:
    import torch

    from ganvid.nn.encoders import ReStyleEncoderConfig, ReStyleInverter, build_encoder
    from ganvid.nn.stylegan3 import Generator, SG3Config

    device = torch.device(device_name)
    resolution = args.resolution or (1024 if device.type == "cuda" else 256)
    torch.manual_seed(0)
    narrow = {"channel_base": 2048, "channel_max": 64} if args.narrow else {}
    G = Generator(SG3Config.config_r(resolution, **narrow)).eval().requires_grad_(False).to(device)
    shape = {"widths": (16, 32, 48, 64), "units": (1, 1, 2, 1), "input_size": 64}
    config = ReStyleEncoderConfig(kind="e4e", num_ws=G.num_ws, **(shape if args.narrow else {}))
    encoder = build_encoder(config).eval().to(device)
    inverter = ReStyleInverter(encoder, G, G.mapping.w_avg.clone(), n_iters=args.iters)
    measure = _timer(device)
    measure(inverter.average_image)  # cached once per model, as in real use
    rows = []
    for batch in args.batches:
        row = {"device": device_name, "resolution": resolution, "batch": batch}
        row.update(bench_batch(inverter, batch, args, measure))
        rows.append(row)
        print(_format(row, args.iters), flush=True)
    return rows


def bench_batch(inverter, batch: int, args: argparse.Namespace, measure) -> dict[str, float]:
    """Median seconds per batch of: a whole inversion, one encoder pass, one render."""
    import torch

    device, size = inverter.latent_avg.device, int(inverter.generator.img_resolution)
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    x6 = torch.rand(batch, 6, inverter.input_size, inverter.input_size, device=device) * 2 - 1
    ws = inverter.start_latent(batch)
    cases = {
        "invert": lambda: inverter.invert(images, return_images=args.with_images),
        "encoder": lambda: inverter.encoder(x6),
        "render": lambda: inverter.render(ws),
    }
    times = {}
    for name, fn in cases.items():
        measure(fn)  # warm-up (cuDNN autotune, allocator, first-call caches)
        times[name] = statistics.median(measure(fn) for _ in range(args.repeat))
    return times


def _format(row: dict, iters: int) -> str:
    batch = row["batch"]
    return (
        f"{row['device']:>5} {row['resolution']:>5} px  batch {batch:>3}  "
        f"invert ({iters} it) {row['invert']:8.3f} s/batch {row['invert'] / batch:8.3f} s/frame "
        f"{batch / row['invert']:7.2f} frames/s | encoder pass {row['encoder'] / batch:7.3f} "
        f"s/frame | render {row['render'] / batch:7.3f} s/frame"
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=None, help="generator size in px")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--with-images", action="store_true", help="also render the result")
    parser.add_argument("--narrow", action="store_true", help="narrow networks (smoke run)")
    parser.add_argument("--json", help="also write the rows (seconds per batch) here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"),
        flush=True,
    )
    rows = [row for device in devices for row in bench_device(args, device)]
    if args.json:
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
        with open(args.json, "w") as handle:
            facts = {"gpu": gpu, "iters": args.iters, "narrow": args.narrow}
            json.dump({**facts, "rows": rows}, handle)


if __name__ == "__main__":
    main()
