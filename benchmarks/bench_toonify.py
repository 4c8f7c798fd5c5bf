"""Benchmark `ganvid toonify`: seconds per frame of the StyleGANEX networks, and of the whole job.

    python benchmarks/bench_toonify.py                     # CUDA if present: 512x512 crops,
                                                           # batch 1 and 4; CPU: a small case
    python benchmarks/bench_toonify.py --devices cpu --cpu-input 64 --repeat 1
    python benchmarks/bench_toonify.py --pipeline          # + the whole job on a 720p clip
    python benchmarks/bench_toonify.py --devices cuda --json toonify.json

Networks: the published toonify shape (IR-SE50 encoder with 7 skip-fusion layers, StyleGAN2
1024 decoder, 18 w+ rows), random weights (speed does not depend on them). Per frame, the job
runs the encoder once on the 256x256 aligned face (w+), once on the crop (f and the skip
features) and the decoder on f, so a 512x512 crop gives a 2048x2048 render. Times are wall-clock
medians over --repeat runs after one warm-up, fp32 (as the job runs), CUDA synchronised;
peak memory is torch's peak allocation on CUDA. The CPU case uses a smaller crop (--cpu-input)
so it finishes in minutes.

--pipeline also runs `StyleganexVideoJob` (decode, landmarks, aligned faces, w+, render, paste
back, H.264) on a synthetic 1280x720 clip whose face gives a 512x512 crop, with a random
full-size checkpoint written to a temporary folder (~1.4 GB), and prints each stage's seconds
per frame: what a user waits, including the PNG files of the work dir.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path


def toonify_config():
    """The published styleganex_toonify_*.pt shape."""
    from ganvid.nn.styleganex import EncoderConfig, StyleGANEXConfig

    return StyleGANEXConfig(encoder=EncoderConfig(use_skip=True, skip_max_layer=7, use_att=0))


def build_model(device):
    import torch

    from ganvid.nn.styleganex import StyleGANEX

    torch.manual_seed(0)
    return StyleGANEX(toonify_config()).eval().requires_grad_(False).to(device)


def time_networks(model, device, side: int, batch: int, repeat: int) -> dict:
    """Seconds per batch of the three network calls of a frame, and peak memory."""
    import torch

    crops = torch.rand(batch, 3, side, side, device=device) * 2 - 1
    aligned = torch.rand(batch, 3, 256, 256, device=device) * 2 - 1

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def once() -> dict[str, float]:
        spent = {}
        with torch.no_grad():
            sync()
            start = time.perf_counter()
            wplus = model.encode_wplus(aligned)
            sync()
            spent["wplus"] = time.perf_counter() - start
            start = time.perf_counter()
            features = model.encode_features(crops)
            sync()
            spent["features"] = time.perf_counter() - start
            start = time.perf_counter()
            image = model.decode(wplus, features, noise_mode="none").clamp(-1, 1)
            sync()
            spent["decode"] = time.perf_counter() - start
        spent["render_side"] = image.shape[-1]
        return spent

    warmup = once()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = [once() for _ in range(repeat)]
    result = {
        key: statistics.median(r[key] for r in runs) for key in ("wplus", "features", "decode")
    }
    result["total"] = sum(result.values())
    result["warmup_s"] = sum(v for k, v in warmup.items() if k != "render_side")
    result["render_side"] = warmup["render_side"]
    if device.type == "cuda":
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def print_networks(device, side: int, batch: int, r: dict) -> None:
    per_frame = {k: r[k] / batch for k in ("wplus", "features", "decode", "total")}
    peak = f"{r['peak_mib']:>9.0f}" if "peak_mib" in r else f"{'-':>9}"
    print(
        f"{device.type:>6} {side:>4}->{r['render_side']:<5} {batch:>5} "
        f"{per_frame['wplus']:>8.3f} {per_frame['features']:>9.3f} {per_frame['decode']:>8.3f} "
        f"{per_frame['total']:>9.3f} {1 / per_frame['total']:>7.2f} {peak}",
        flush=True,
    )


# ----------------------------------------------------------------------------- whole job


def make_clip(path: Path, frames: int, size=(1280, 720), fps: int = 25) -> Path:
    """The astronaut's face (eyes ~69 px apart: a 512x512 crop) drifting and turning slowly."""
    import cv2
    import numpy as np
    import skimage.data

    from ganvid.io.video import write_images_as_video

    base = np.ascontiguousarray(skimage.data.astronaut())
    width, height = size

    def frame(k: int) -> np.ndarray:
        t = k / fps
        matrix = cv2.getRotationMatrix2D((224.0, 120.0), 4.0 * math.sin(0.7 * t), 1.6)
        matrix[:, 2] += (width / 2 - 224 + 60 * math.sin(0.5 * t), height / 2 - 120)
        return cv2.warpAffine(base, matrix, size, borderMode=cv2.BORDER_REFLECT_101)

    write_images_as_video(path, (frame(k) for k in range(frames)), fps, preset="ultrafast")
    return path


def save_checkpoint(model, path: Path) -> Path:
    """The model in the published file layout (state_dict, opts, latent_avg)."""
    import torch

    opts = {
        "encoder_type": "GradualStyleEncoder",
        "input_nc": 3,
        "label_nc": 0,
        "output_size": 1024,
        "feat_ind": 0,
        "max_pooling": False,
        "use_skip": True,
        "use_skip_torgb": False,
        "skip_max_layer": 7,
        "use_att": 0,
        "start_from_latent_avg": True,
        "learn_in_w": False,
        "n_styles": 18,
    }
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "opts": opts, "latent_avg": torch.zeros(18, 512)}, path)
    return path


def time_pipeline(device, frames: int, batch: int, eye_px: float, folder: Path) -> None:
    from ganvid.face.windows import CropRule
    from ganvid.pipeline.styleganex_video import toonify_video

    clip = make_clip(folder / "clip.mp4", frames)
    checkpoint = save_checkpoint(build_model("cpu"), folder / "toonify.pt")
    started = time.perf_counter()
    summary = toonify_video(
        clip,
        "cartoon",
        checkpoint,
        device=str(device),
        batch=batch,
        workdir=folder / "work",
        crop=CropRule(eye_px=eye_px),
    )
    wall = time.perf_counter() - started
    (in_h, in_w), (out_h, out_w) = summary.input_size, summary.render_size
    print(
        f"\nwhole job on {device.type}: {frames} frames 1280x720, crop {in_w}x{in_h} -> "
        f"{out_w}x{out_h}, batch {batch}"
    )
    for record in summary.records:
        print(f"  {record.name:<22} {record.seconds / frames:>8.3f} s/frame")
    print(f"  {'total (wall)':<22} {wall / frames:>8.3f} s/frame", flush=True)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--input", type=int, default=512, help="crop side on CUDA (px)")
    parser.add_argument("--cpu-input", type=int, default=128, help="crop side on the CPU (px)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--cpu-batches", type=int, nargs="+", default=[1])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--pipeline", action="store_true", help="also time the whole job")
    parser.add_argument("--json", help="also write the network rows (seconds per batch) here")
    parser.add_argument("--pipeline-frames", type=int, default=24)
    parser.add_argument(
        "--pipeline-eye-px", type=float, default=64.0, help="64: 512x512 crops; 8 for a CPU try"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"StyleGANEX toonify networks (published shape, random weights), fp32, "
        f"{torch.get_num_threads()} CPU threads"
    )
    if torch.cuda.is_available():
        from ganvid.ops.loader import describe_backend

        print(f"GPU: {torch.cuda.get_device_name()}; ops: {describe_backend()}")
    print("seconds per frame (batch time / batch):")
    print(
        f"{'device':>6} {'crop->render':>12} {'batch':>5} {'w+':>8} {'features':>9} "
        f"{'decode':>8} {'total':>9} {'fps':>7} {'peak MiB':>9}"
    )
    rows = []
    for name in devices:
        device = torch.device(name)
        model = build_model(device)
        side = args.input if device.type == "cuda" else args.cpu_input
        batches = args.batches if device.type == "cuda" else args.cpu_batches
        for batch in batches:
            result = time_networks(model, device, side, batch, args.repeat)
            print_networks(device, side, batch, result)
            rows.append({"device": device.type, "crop": side, "batch": batch, **result})
        del model
    if args.json:
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
        with open(args.json, "w") as handle:
            json.dump({"gpu": gpu, "rows": rows}, handle)
    if args.pipeline:
        device = torch.device(devices[0])
        with tempfile.TemporaryDirectory() as folder:
            time_pipeline(
                device, args.pipeline_frames, max(args.batches), args.pipeline_eye_px, Path(folder)
            )


if __name__ == "__main__":
    main()
