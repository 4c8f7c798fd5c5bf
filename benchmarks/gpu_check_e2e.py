"""End to end on one device: `ganvid invert` killed with SIGKILL during PTI and resumed, against
an uninterrupted run, then `ganvid edit` on both.

    python benchmarks/gpu_check_e2e.py --work /tmp/e2e --json e2e.json --device cuda
    python benchmarks/gpu_check_e2e.py --work /tmp/e2e --json e2e.json --device cpu --tiny

Networks are random and written in the published layouts by the test fixtures
(tests/support/sg3_fixtures.py, tests/support/restyle_fixtures.py): an SG3-R generator as an
NVIDIA network pickle (1024 px at full width; --tiny: 64 px, narrow), a ReStyle-e4e checkpoint
with the IR-SE50 encoder (full widths; --tiny: a 5-unit narrow one) and an AlexNet LPIPS trunk.
The clip is skimage's astronaut moving (tests/support/face_clips.py), H.264 with an AAC tone.

Run A inverts straight through. Run B is killed (kill -9) as soon as PTI has written its first
checkpoint, then run again to resume. Both then edit with the same random direction. Expected:
B's tuned weights, inverted video and edited video equal A's bit for bit; the JSON records the
max absolute difference of each, the wall time of each run and whether the kill landed in PTI.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"


def landmark_source(choice: str) -> str:
    """'dlib' where dlib and its model package are installed, else 'known' (see known_faces)."""
    if choice != "auto":
        return choice
    have = all(importlib.util.find_spec(m) for m in ("dlib", "face_recognition_models"))
    return "dlib" if have else "known"


def build_assets(root: Path, tiny: bool) -> dict[str, Path]:
    """Random networks in the published file layouts, the clip and its known landmarks."""
    sys.path.insert(0, str(TESTS))
    import torch
    from known_faces import faces_for
    from support.face_clips import moving_clip
    from support.pipeline_fixtures import write_clip
    from support.restyle_fixtures import (
        randomize_batchnorm,
        save_alexnet_trunk,
        save_restyle_checkpoint,
        tiny_restyle_encoder,
    )
    from support.sg3_fixtures import save_nvidia_pickle, tiny_generator

    from ganvid.nn.encoders import ReStyleEncoderConfig, build_encoder
    from ganvid.nn.stylegan3 import SG3Config

    root.mkdir(parents=True, exist_ok=True)
    if tiny:
        G = tiny_generator("R", res=64, channel_base=256, channel_max=16, num_layers=4)
        encoder = tiny_restyle_encoder("e4e", G)
        frames, size = 8, (160, 160)
    else:
        full = SG3Config.config_r(1024)
        widths = {k: getattr(full, k) for k in ("z_dim", "w_dim", "channel_base", "channel_max")}
        G = tiny_generator("R", res=1024, **widths)  # full size; biases etc. randomised
        torch.manual_seed(0)
        encoder = build_encoder(ReStyleEncoderConfig(kind="e4e", num_ws=G.num_ws, w_dim=G.w_dim))
        randomize_batchnorm(encoder, seed=0)
        frames, size = 8, (384, 384)
    clip = moving_clip(n_frames=frames, size=size, blank=(), noise=2.0)
    np.save(root / "faces.npy", faces_for(np.stack(clip.truth)))
    direction = np.random.default_rng(0).normal(size=G.w_dim).astype(np.float32)
    np.save(root / "direction.npy", direction / np.linalg.norm(direction))
    save_alexnet_trunk(root / "alexnet.pth")
    return {
        "generator": save_nvidia_pickle(G, root / "generator.pkl"),
        "encoder": save_restyle_checkpoint(root / "encoder.pt", "e4e", encoder, G),
        "lpips": root / "alexnet.pth",
        "clip": write_clip(root / "clip.mp4", clip.frames),
        "faces": root / "faces.npy",
        "direction": root / "direction.npy",
    }


def ganvid(args: list[str], env: dict) -> subprocess.Popen:
    """`ganvid ARGS` through known_faces.py (plain ganvid unless GANVID_KNOWN_FACES is set)."""
    command = [sys.executable, str(HERE / "known_faces.py"), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def finish(process: subprocess.Popen, what: str, log: list[str]) -> None:
    out, _ = process.communicate()
    log.append(f"--- {what} (exit {process.returncode})\n{out.decode(errors='replace')[-4000:]}")
    if process.returncode != 0:
        raise RuntimeError(f"{what} exited with {process.returncode}")


def video_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]


def max_diff_frames(a: Path, b: Path) -> float:
    fa, fb = video_frames(a), video_frames(b)
    if len(fa) != len(fb):
        return float("inf")
    pairs = zip(fa, fb, strict=True)
    return max(float(np.abs(x.astype(np.int16) - y.astype(np.int16)).max()) for x, y in pairs)


def max_diff_weights(a: Path, b: Path) -> float:
    import torch

    sa = torch.load(a, map_location="cpu", weights_only=True)
    sb = torch.load(b, map_location="cpu", weights_only=True)
    if sa.keys() != sb.keys():
        return float("inf")
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    result: dict = {"device": args.device, "tiny": args.tiny}
    started = time.perf_counter()
    assets = build_assets(work / "assets", args.tiny)
    result["assets_s"] = time.perf_counter() - started
    source = landmark_source(args.landmarks)
    result["landmarks"] = source
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if source == "known":
        env["GANVID_KNOWN_FACES"] = str(assets["faces"])
    steps, every = (12, 2) if args.tiny else (args.pti_steps, args.pti_steps // 4)
    result["pti_steps"] = steps

    def invert(name: str) -> list[str]:
        return [
            "invert", str(assets["clip"]), "--workdir", str(work / name),
            "-o", str(work / f"{name}.mp4"),
            "--generator", str(assets["generator"]), "--encoder", str(assets["encoder"]),
            "--lpips", str(assets["lpips"]), "--device", args.device, "--batch", str(args.batch),
            "--pti-steps", str(steps), "--pti-stop-lpips", "0",
            "--pti-checkpoint-every", str(every), "--preset", "ultrafast",
        ]  # fmt: skip

    def edit(name: str) -> list[str]:
        return [
            "edit", str(assets["clip"]), "--workdir", str(work / name),
            "--file", str(assets["direction"]), "--strength", "3",
            "-o", str(work / f"{name}_edit.mp4"), "--device", args.device,
            "--batch", str(args.batch), "--preset", "ultrafast",
        ]  # fmt: skip

    log: list[str] = []
    try:
        t = time.perf_counter()
        finish(ganvid(invert("A"), env), "invert A (straight)", log)
        result["invert_straight_s"] = time.perf_counter() - t

        t = time.perf_counter()
        killed = ganvid(invert("B"), env)
        checkpoint = work / "B" / "pti" / "checkpoint.pt"
        while not checkpoint.exists() and killed.poll() is None:
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
        killed.communicate()
        pti_state = work / "B" / "pti.json"
        complete = pti_state.exists() and json.loads(pti_state.read_text()).get("complete")
        result["kill_landed_in_pti"] = killed.returncode == -signal.SIGKILL and not complete
        result["killed_after_s"] = time.perf_counter() - t
        t = time.perf_counter()
        finish(ganvid(invert("B"), env), "invert B (resumed)", log)
        result["invert_resume_s"] = time.perf_counter() - t

        result["weights_max_abs_diff"] = max_diff_weights(
            work / "A" / "pti" / "generator.pt", work / "B" / "pti" / "generator.pt"
        )
        result["invert_frames_max_abs_diff"] = max_diff_frames(work / "A.mp4", work / "B.mp4")
        result["frames"] = len(video_frames(work / "A.mp4"))

        for name in ("A", "B"):
            t = time.perf_counter()
            finish(ganvid(edit(name), env), f"edit {name}", log)
            result[f"edit_{name}_s"] = time.perf_counter() - t
        result["edit_frames_max_abs_diff"] = max_diff_frames(
            work / "A_edit.mp4", work / "B_edit.mp4"
        )
        result["edit_changed_frames"] = max_diff_frames(work / "A.mp4", work / "A_edit.mp4") > 0
    except RuntimeError as error:
        result["error"] = str(error)
    finally:
        print("\n".join(log))
    result["passed"] = "error" not in result and (
        result.get("kill_landed_in_pti") is True
        and result.get("weights_max_abs_diff") == 0
        and result.get("invert_frames_max_abs_diff") == 0
        and result.get("edit_frames_max_abs_diff") == 0
        and result.get("edit_changed_frames") is True
    )
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for networks, clip and work dirs")
    parser.add_argument("--json", required=True, help="write the result here")
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--tiny", action="store_true", help="64 px networks, CPU-sized")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--pti-steps", type=int, default=24, help="full size (tiny: 12)")
    parser.add_argument("--landmarks", choices=["auto", "dlib", "known"], default="auto")
    args = parser.parse_args()
    result = run(args)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
