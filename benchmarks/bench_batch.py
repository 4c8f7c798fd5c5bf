"""Benchmark `ganvid batch`: wall time of a batch of N short clips on 1 vs 2 (vs more) local
workers, and the speed-up.

    python benchmarks/bench_batch.py                          # CPU: 4 clips of 1 s, 1 and 2 workers
    python benchmarks/bench_batch.py --clips 8 --workers 1 2 4 --device cuda   # a 4-GPU machine
    python benchmarks/bench_batch.py --ray auto               # the same batch as Ray tasks
    python benchmarks/bench_batch.py --split 2 --clips 0      # one long clip: whole vs split

--split N also times one clip of --split-seconds (in segments of --segment-frames) inverted
whole by one worker and shared by N workers (split = N: the face detection, the encoder and
the render shared by N parts through claims, tracking and PTI once).

Networks and clips are `bench_invert.py`'s (random 32-px StyleGAN3-T, narrow ReStyle-e4e,
AlexNet trunk; the astronaut drifting, 256x256, 25 fps). Each run is `ganvid batch` in a fresh
process over fresh copies of the clips (nothing cached), timed from the start of the process to
its end: the figure a user waits for, worker start-up included; with --repeat the runs
alternate and the best of each is kept. CPU s: the driver's and its local workers'. With W
workers on the CPU each worker gets cpu_count / W torch threads, so on the CPU the speed-up
measures how much better jobs in parallel use the cores than one job's own threads do. On a
machine other work shares, more processes also win a larger share of it: compare CPU s too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_invert import make_clip, make_networks  # noqa: E402


def write_jobfile(folder: Path, weights: dict, args: argparse.Namespace, split: int) -> Path:
    options = {
        **{k: str(v) for k, v in weights.items()},
        "device": args.device,
        "preset": "ultrafast",
        "pti-steps": str(args.pti_steps),
        "pti-stop-lpips": "0",
        "segment-frames": str(args.segment_frames),
    }
    lines = ["[defaults]", *(f'{k} = "{v}"' for k, v in options.items())]
    lines += ["", "[clips]", 'command = "invert"', 'folder = "clips"', f"split = {split}"]
    path = folder / "jobs.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_batch(root: Path, clips: list[Path], weights: dict, args, where: list[str], split=1):
    """(wall seconds, CPU seconds of the driver and its local workers) of one batch."""
    folder = Path(tempfile.mkdtemp(dir=root))
    (folder / "clips").mkdir()
    for clip in clips:
        shutil.copy(clip, folder / "clips" / clip.name)
    jobfile = write_jobfile(folder, weights, args, split)
    start, used = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "ganvid", "batch", str(jobfile), *where],
        capture_output=True,
        text=True,
    )
    seconds, cpu = time.perf_counter() - start, _children_cpu() - used
    if done.returncode != 0:
        raise SystemExit(f"ganvid batch {' '.join(where)} failed:\n{done.stderr[-3000:]}")
    return seconds, cpu


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process (local workers included:
    the driver waits for them; Ray's workers are not counted)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_runs(title: str, root: Path, clips: list[Path], weights: dict, args, runs) -> str:
    """The markdown table of `runs` [(label, `ganvid batch` arguments, split)] over `clips`:
    best wall and CPU seconds of --repeat runs, alternated."""
    timings: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):  # alternate, so a change of load hits every kind of run
        for label, where, split in runs:
            wall, cpu = run_batch(root, clips, weights, args, where, split)
            print(f"{label}: {wall:.1f} s wall, {cpu:.1f} CPU s", flush=True)
            best = timings.get(label, (wall, cpu))
            timings[label] = (min(best[0], wall), min(best[1], cpu))
    first = next(iter(timings.values()))[0]
    lines = [
        f"### `ganvid batch`: {title}, `invert` ({args.device}, {args.resolution}-px nets, "
        f"{args.pti_steps} PTI steps, {os.cpu_count()} CPUs) (`bench_batch.py`)",
        "",
        "| run | wall s | s per clip | speed-up | CPU s |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {s:.1f} | {s / len(clips):.1f} | {first / s:.2f}x | {cpu:.0f} |"
            for label, (s, cpu) in timings.items()
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.0, help="Length of each clip.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--threads", type=int, help="Torch threads per local worker [default: cores / workers]."
    )
    parser.add_argument("--ray", help="Also time the batch as Ray tasks (auto or an address).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--pti-steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each (best is kept).")
    parser.add_argument("--markdown", type=Path, help="Append the table to this file.")
    parser.add_argument("--split", type=int, help="Also time one clip split among N workers.")
    parser.add_argument("--split-seconds", type=float, default=4.0, help="That clip's length.")
    parser.add_argument("--segment-frames", type=int, default=300, help="Frames per segment.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "nets").mkdir()
        weights = make_networks(root / "nets", args.device, args.resolution)
        size = (256, 256) if args.device == "cpu" else (1280, 720)
        clips = [
            make_clip(root / f"clip{i}.mp4", args.seconds + 0.04 * i, size)
            for i in range(args.clips)
        ]
        threads = ["--threads", str(args.threads)] if args.threads else []
        each = f", {args.threads} thread(s) each" if args.threads else ""
        runs = [
            (f"{w} local worker(s){each}", ["--workers", str(w), *threads], 1) for w in args.workers
        ]
        if args.ray:
            runs.append((f"Ray ({args.ray})", ["--ray", args.ray], 1))
        tables = []
        if args.clips:
            frames = round(args.seconds * 25)
            title = f"{args.clips} clips of ~{frames} frames"
            tables.append(time_runs(title, root, clips, weights, args, runs))
        if args.split:
            long = [make_clip(root / "long.mp4", args.split_seconds, size)]
            n = args.split
            split_runs = [
                (f"1 local worker{each}, whole clip", ["--workers", "1", *threads], 1),
                (f"{n} local workers{each}, split = {n}", ["--workers", str(n), *threads], n),
            ]
            frames = round(args.split_seconds * 25)
            title = f"one clip of {frames} frames in segments of {args.segment_frames}"
            tables.append(time_runs(title, root, long, weights, args, split_runs))
    text = "\n\n".join(tables)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as out:
            out.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
