"""Benchmark `ganvid invert`: seconds per frame for each stage, PTI steps/s, and peak memory
for a short and a long clip (memory must not grow with the clip's length).

    python benchmarks/bench_invert.py                      # CPU: 64 px nets, 2 s vs 12 s clip
    python benchmarks/bench_invert.py --device cuda        # 1024 px real-size nets, 10 s vs 60 s
    python benchmarks/bench_invert.py --short 2 --long 6 --pti-steps 10 --resolution 32
    python benchmarks/bench_invert.py --device cuda --short 10 --long 0 --frame 1920x1080 \
        --pti-steps 500 --json invert.json              # one 10-s 1080p clip, figures as JSON

Networks are random (speed and memory do not depend on weight values) and built in code: a
StyleGAN3-T generator (CPU: narrow, `--resolution` px; CUDA: NVIDIA's config R at 1024), a
ReStyle-e4e encoder (CPU: narrow IR-SE; CUDA: the published IR-SE50 widths at 256 px) and an
AlexNet trunk for LPIPS. The clip is skimage's astronaut drifting and turning slowly, 25 fps,
256x256 (CPU) or 1280x720 (CUDA) unless --frame, silent. Landmarks come from dlib, or where its
model is not installed (--landmarks auto) from the known motion (benchmarks/known_faces.py).

Each clip runs `InvertJob` in a fresh subprocess, so peak memory is its own: CPU = peak
resident set size (MiB, includes torch itself), CUDA = peak memory allocated by torch (MiB).
PTI runs a fixed number of steps (early stop off). Seconds per frame = stage wall time / frames
(PTI's cost does not depend on the frame count; its steps/s is the figure to read).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from gpu_check_e2e import landmark_source
from known_faces import faces_for
from known_faces import install as install_known_faces

STAGES = ("decode", "geometry", "invert", "smooth", "pti", "render", "encode")


# ----------------------------------------------------------------------------- assets


def make_clip(path: Path, seconds: float, size: tuple[int, int], fps: int = 25) -> Path:
    """Astronaut face moving slowly (±5 degrees, ±10 % of the width), silent H.264. Beside it,
    `<path>.faces.npy`: each frame's known landmarks [frames, 68, 2]."""
    import cv2
    import numpy as np
    import skimage.data

    from ganvid.io.video import write_images_as_video

    base = np.ascontiguousarray(skimage.data.astronaut())
    width, height = size
    scale = 0.8 * min(width, height) / 256

    def motion(k: int) -> np.ndarray:
        t = k / fps
        angle = 5.0 * math.sin(0.7 * t)
        matrix = cv2.getRotationMatrix2D((224.0, 120.0), angle, scale)
        matrix[:, 2] += (width / 2 - 224 * scale + 0.1 * width * math.sin(0.5 * t), height / 3)
        return matrix

    def frame(k: int) -> np.ndarray:
        return cv2.warpAffine(base, motion(k), size, borderMode=cv2.BORDER_REFLECT_101)

    count = round(seconds * fps)
    write_images_as_video(path, (frame(k) for k in range(count)), fps, preset="ultrafast")
    np.save(faces_file(path), faces_for(np.stack([motion(k) for k in range(count)])))
    return path


def faces_file(clip: Path) -> Path:
    return clip.with_name(clip.name + ".faces.npy")


def make_networks(root: Path, device: str, resolution: int) -> dict[str, Path]:
    """Random generator, ReStyle-e4e checkpoint and AlexNet trunk files."""
    import torch
    import torchvision

    from ganvid.nn.checkpoints import save_generator
    from ganvid.nn.encoders import ReStyleEncoderConfig, build_encoder
    from ganvid.nn.stylegan3 import Generator, SG3Config

    torch.manual_seed(0)
    if device == "cuda":
        G = Generator(SG3Config.config_r(1024)).eval()
        encoder_config = ReStyleEncoderConfig(kind="e4e", num_ws=G.num_ws, w_dim=G.w_dim)
    else:
        config = SG3Config.config_t(resolution, channel_base=2048, channel_max=64)
        G = Generator(config).eval()
        encoder_config = ReStyleEncoderConfig(
            kind="e4e",
            widths=(16, 32, 48, 64),
            units=(1, 1, 2, 1),
            num_ws=G.num_ws,
            w_dim=G.w_dim,
            input_size=64,
        )
    save_generator(G, root / "generator.pt")
    encoder = build_encoder(encoder_config)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    opts = {"encoder_type": "ProgressiveBackboneEncoder", "n_iters_per_batch": 3}
    payload = {"state_dict": state, "opts": opts, "latent_avg": G.mapping.w_avg.clone()}
    torch.save(payload, root / "encoder.pt")
    features = torchvision.models.alexnet(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, root / "alexnet.pth")
    return {
        name: root / f
        for name, f in (
            ("generator", "generator.pt"),
            ("encoder", "encoder.pt"),
            ("lpips", "alexnet.pth"),
        )
    }


# ----------------------------------------------------------------------------- one run


def child(args: argparse.Namespace) -> None:
    """Run the job once in this process and print its figures as one JSON line."""
    import resource

    import torch

    from ganvid.pipeline.invert import InvertJob, InvertOptions

    if args.faces:
        install_known_faces(args.faces)
    torch.set_num_threads(args.threads)
    options = InvertOptions(
        clip=Path(args.clip),
        workdir=Path(args.workdir),
        output=Path(args.workdir) / "out.mp4",
        generator=args.generator,
        encoder=args.encoder,
        lpips=args.lpips,
        device=args.device,
        batch=args.batch,
        pti_steps=args.pti_steps,
        pti_early_stop_lpips=None,
        pti_checkpoint_every=max(1, args.pti_steps // 4),
        preset="ultrafast",
    )
    summary = InvertJob(options).run()
    figures = {
        "frames": summary.frames,
        "seconds": {r.name: r.seconds for r in summary.records},
        "pti_steps": summary.pti.get("steps"),
        "pti_batch": summary.pti.get("batch"),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "lpips": summary.metrics.get("lpips"),
        "psnr_db": summary.metrics.get("psnr_db"),
    }
    if torch.cuda.is_available() and args.device != "cpu":
        figures["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        figures["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(figures))


def run_clip(args: argparse.Namespace, nets: dict[str, Path], clip: Path, work: Path) -> dict:
    command = [
        sys.executable, __file__, "--child",
        "--clip", str(clip), "--workdir", str(work),
        "--generator", str(nets["generator"]), "--encoder", str(nets["encoder"]),
        "--lpips", str(nets["lpips"]),
        "--device", args.device, "--batch", str(args.batch),
        "--pti-steps", str(args.pti_steps), "--threads", str(args.threads),
    ]  # fmt: skip
    if landmark_source(args.landmarks) == "known":
        command += ["--faces", str(faces_file(clip))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(short: dict, long: dict | None) -> None:
    print(f"{'stage':10s} {'s/frame short':>14s} {'s/frame long':>14s} {'s short':>9s}")
    for stage in STAGES:
        a = short["seconds"][stage] / short["frames"]
        b = f"{long['seconds'][stage] / long['frames']:14.4f}" if long else f"{'-':>14s}"
        print(f"{stage:10s} {a:14.4f} {b} {short['seconds'][stage]:9.1f}")
    print(f"{'total':10s} {'':14s} {'':14s} {sum(short['seconds'].values()):9.1f}")
    for name, run in (("short", short), ("long", long)):
        if run is None:
            continue
        steps_per_s = run["pti_steps"] / max(run["seconds"]["pti"], 1e-9)
        memory = f"peak RSS {run['peak_rss_mib']:.0f} MiB"
        if "peak_cuda_mib" in run:
            memory += f", peak CUDA {run['peak_cuda_mib']:.0f} MiB ({run['gpu']})"
        print(
            f"{name}: {run['frames']} frames, PTI {steps_per_s:.2f} steps/s at batch "
            f"{run['pti_batch']}, {memory}, LPIPS {run['lpips']:.3f}, PSNR {run['psnr_db']:.1f} dB"
        )
    if long is None:
        return
    key = "peak_cuda_mib" if "peak_cuda_mib" in short else "peak_rss_mib"
    growth = long[key] - short[key]
    ratio = long["frames"] / short["frames"]
    verdict = "flat" if growth < max(64.0, 0.1 * short[key]) else "GROWS"
    print(f"memory, {ratio:.0f}x the frames: {growth:+.0f} MiB ({key}) -> {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--short", type=float, default=None, help="seconds (2 CPU, 10 CUDA)")
    parser.add_argument(
        "--long", type=float, default=None, help="seconds (12 CPU, 60 CUDA; 0: no long clip)"
    )
    parser.add_argument("--frame", default=None, help="clip WxH (256x256 CPU, 1280x720 CUDA)")
    parser.add_argument(
        "--landmarks", choices=["auto", "dlib", "known"], default="auto",
        help="auto: dlib if its model is installed, else the clip's known landmarks",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--resolution", type=int, default=64, help="CPU generator size (px)")
    parser.add_argument("--pti-steps", type=int, default=None, help="(20 CPU, 200 CUDA)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--keep", type=Path, default=None, help="keep assets and work dirs here")
    # child-only arguments
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--clip", "--workdir", "--generator", "--encoder", "--lpips", "--faces"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    gpu = args.device == "cuda"
    args.short = args.short or (10.0 if gpu else 2.0)
    args.long = (60.0 if gpu else 12.0) if args.long is None else args.long
    args.pti_steps = args.pti_steps or (200 if gpu else 20)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_invert_"))
    root.mkdir(parents=True, exist_ok=True)
    size = (1280, 720) if gpu else (256, 256)
    if args.frame:
        size = tuple(int(v) for v in args.frame.lower().split("x"))
    nets = make_networks(root, args.device, args.resolution)
    runs = {}
    for name, seconds in (("short", args.short), ("long", args.long)):
        if seconds > 0:
            clip = make_clip(root / f"{name}.mp4", seconds, size)
            runs[name] = run_clip(args, nets, clip, root / f"{name}.ganvid")
    print(
        f"device {args.device}, threads {args.threads}, PTI steps {args.pti_steps}, "
        f"{size[0]}x{size[1]}, landmarks {landmark_source(args.landmarks)}"
    )
    report(runs["short"], runs.get("long"))
    if args.json:
        facts = {"frame": list(size), "landmarks": landmark_source(args.landmarks)}
        args.json.write_text(json.dumps({**facts, **runs}, indent=2))


if __name__ == "__main__":
    main()
