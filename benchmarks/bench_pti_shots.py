"""Benchmark PTI per clip against PTI per shot (`ganvid invert --pti-per-shot`): reconstruction
LPIPS and PSNR on a clip with a hard cut between two people, overall and per shot.

    python benchmarks/bench_pti_shots.py                         # CPU, tiny nets, 40 steps
    python benchmarks/bench_pti_shots.py --steps 60 --lr 1e-2 --frames 8 --json shots.json

The clip is the first two shots of the tests' `cuts_clip` (tests/support/face_clips.py): the
astronaut, then a hard cut to the cameraman, `--frames` frames each, 640x480 H.264. Networks are
the tests' tiny random ones (tests/support/pipeline_fixtures.py `tiny_assets`: a 32-px
StyleGAN3-T, its ReStyle-e4e encoder, an AlexNet trunk), landmarks from dlib. One work dir runs
four times, `ganvid invert --device cpu` with early stop off: `--pti-steps 0` (the encoder's
pivots through the pretrained generator), per clip (`--steps`), per clip with twice the steps
(as many as the per-shot run takes in all), per shot (`--steps` each shot); the stages
before PTI are shared, so every run renders the very same pivots. The figures are the invert
run's own (encode/metrics.json: per-frame LPIPS and PSNR of the render against the crops) and
the PTI stage's seconds. Random tiny networks fit little of any face: read the per-shot gain
as a check of the machinery more than of what real weights would gain on real footage.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.face_clips import cuts_clip  # noqa: E402
from support.pipeline_fixtures import invert_args, tiny_assets  # noqa: E402

from ganvid.cli import run  # noqa: E402
from ganvid.pipeline.workdir import read_json  # noqa: E402


def invert(assets: dict, workdir: Path, output: Path, steps: int, lr: float, per_shot: bool):
    """One `ganvid invert` run; (metrics.json, the PTI stage's seconds)."""
    extra = ["--pti-steps", str(steps), "--pti-stop-lpips", "0", "--pti-lr", str(lr)]
    extra += ["--pti-checkpoint-every", "1000", "-o", str(output)]
    if per_shot:
        extra.append("--pti-per-shot")
    code = run(invert_args(assets, assets["clip"], workdir, *extra))
    if code != 0:
        raise SystemExit(f"ganvid invert failed with exit code {code}")
    return read_json(workdir / "encode" / "metrics.json"), read_json(workdir / "pti.json")


def figures(metrics: dict, shot_ids: np.ndarray, pti: dict) -> dict:
    lpips, psnr = np.asarray(metrics["lpips"]), np.asarray(metrics["psnr_db"])
    shots = {
        int(s): {
            "lpips": float(lpips[shot_ids == s].mean()),
            "psnr_db": float(psnr[shot_ids == s].mean()),
        }
        for s in np.unique(shot_ids)
    }
    return {
        "lpips": float(lpips.mean()),
        "psnr_db": float(psnr.mean()),
        "shots": shots,
        "pti_seconds": round(float(pti.get("seconds", 0.0)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per shot")
    parser.add_argument("--steps", type=int, default=40, help="PTI steps (per shot: each shot)")
    parser.add_argument("--lr", type=float, default=3e-4, help="PTI learning rate")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        assets = tiny_assets(root, cuts_clip(n_shot=args.frames).frames[: 2 * args.frames])
        workdir = root / "work"
        results = {}
        for name, steps, per_shot in (
            ("untuned", 0, False),
            ("per_clip", args.steps, False),
            ("per_clip_same_steps", 2 * args.steps, False),  # the per-shot run's steps in all
            ("per_shot", args.steps, True),
        ):
            metrics, pti = invert(assets, workdir, root / f"{name}.mp4", steps, args.lr, per_shot)
            shot_ids = np.load(workdir / "geometry" / "geometry.npz")["shot_ids"]
            results[name] = figures(metrics, shot_ids, pti)
    report = {"frames_per_shot": args.frames, "steps": args.steps, "lr": args.lr, **results}
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
