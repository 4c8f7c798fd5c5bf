"""The GPU check (issue 17): prove the CUDA paths and record every GPU figure, in one command.

    bash benchmarks/gpu_check.sh                      # GPU machine: environment set-up, then this
    python benchmarks/gpu_check.py OUT                # everything, into OUT (default: $OUT)
    python benchmarks/gpu_check.py OUT --tiny --device cpu     # smoke run on a CPU (minutes)
    python benchmarks/gpu_check.py OUT --only env tests        # some steps only

Steps, in order, each in its own process under its own time budget (a failure or a timeout is
recorded and the next step runs; the whole run stops starting steps at --deadline):
  env        versions, GPU, and the CUDA ops build (timed; every later step loads this build)
  tests      pytest tests/ops/test_compiled.py, then every test marked `cuda` (junit XML in OUT)
  e2e        `ganvid invert` + `ganvid edit` with full-size random networks (1024 SG3-R, full
             ReStyle-e4e) on a short clip; killed with SIGKILL during PTI and resumed, compared
             with an uninterrupted run (gpu_check_e2e.py)
  ops        filtered_lrelu / bias_act, CUDA vs reference, at SG3-R-1024 layer shapes (bench_ops)
  synthesis  images/s and peak memory, R and T at 1024, batch 1/4/16, fp32/fp16, CUDA ops vs
             reference (bench_ops --synthesis: all cases in one process, one network build)
  pti        PTI steps/s at 1024, batch 1 and 4, AMP on and off (bench_pti)
  encoder    ReStyle inversion frames/s (bench_encoder)
  toonify    StyleGANEX toonify s/frame (bench_toonify)
  compose    paste-back and FoV s/frame (bench_compose)
  invert     the whole `invert` of a 10-s 1080p clip, per stage (bench_invert); with fewer PTI
             steps than 500 the 500-step total is projected from the measured PTI rate
Then OUT gets summary.json, summary.md (tables ready for benchmarks/RESULTS.md), the issue's
targets with PASS/MISS, and on a MISS a torch.profiler table of where the time goes
(profile.txt). All step output goes to OUT/gpu_check.log; bulky files (networks, clips, work
dirs) stay in --work. OUT gets at most 7 files, so the device tool brings every one back.

--tiny shrinks every size (64 px or narrower generators, few frames, few PTI steps) so the whole
run fits a CPU machine in minutes; the figures are then meaningless, the plumbing is not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOG_NAME = "gpu_check.log"
PROFILE_NAME = "profile.txt"
TARGETS = {
    "synthesis_5x": "CUDA-ops synthesis >= 5x the reference path, no more memory",
    "fp16_1.5x": "fp16 synthesis >= 1.5x fp32 (CUDA ops)",
    "amp_pti_1.5x": "PTI with AMP >= 1.5x without",
    "invert_10s_1080p_5min": "10-s 1080p clip inverted (500 PTI steps) in < 5 min",
}
ALTERNATIVES = {"opencv-python": ("opencv-python-headless", "opencv-contrib-python")}
"""Distributions that provide the same module as a requirement (cv2)."""
INVERT_TARGET_STEPS = 500
INVERT_TARGET_S = 300.0


# ----------------------------------------------------------------------------- environment


def missing_requirements() -> list[str]:
    """ganvid's requirements (pyproject.toml) that this interpreter does not satisfy."""
    import importlib.metadata
    import re

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    missing = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        version = None
        for candidate in (name, *ALTERNATIVES.get(name, ())):
            try:
                version = importlib.metadata.version(candidate)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        if version is None:
            missing.append(text)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{text} (found {version})")
    return missing


def env_info(path: Path, device: str) -> None:
    """Versions, the GPU, and the CUDA ops build (timed), as JSON in `path`."""
    import platform

    import torch

    import ganvid
    from ganvid.ops import loader

    info: dict = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "ganvid": ganvid.__version__,
        "device": device,
        "gpu": None,
        "missing_requirements": missing_requirements(),
        "TORCH_CUDA_ARCH_LIST": os.environ.get("TORCH_CUDA_ARCH_LIST"),
    }
    if device == "cuda":
        if not torch.cuda.is_available():
            info["error"] = "--device cuda but torch sees no CUDA device"
        else:
            properties = torch.cuda.get_device_properties(0)
            info["gpu"] = torch.cuda.get_device_name(0)
            info["capability"] = f"{properties.major}.{properties.minor}"
            info["gpu_memory_gib"] = properties.total_memory / 2**30
            started = time.perf_counter()
            try:
                result = loader.build(loader.default_arch_list())
                info["ops_build"] = {
                    "compiled": result.compiled,
                    "seconds": time.perf_counter() - started,
                    "arch_list": result.arch_list,
                    "build_dir": str(result.build_dir),
                }
            except Exception as error:  # recorded; the later steps then use the reference ops
                info["ops_build"] = {"error": f"{type(error).__name__}: {error}"[:2000]}
            loader.reset_state()
        info["ops_backend"] = loader.describe_backend()
    path.write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))
    if "error" in info or "error" in info.get("ops_build", {}):
        sys.exit(1)


# ----------------------------------------------------------------------------- steps


@dataclass
class Context:
    args: argparse.Namespace
    out: Path
    work: Path
    device: str
    tiny: bool
    env: dict[str, str]

    def json(self, name: str) -> Path:
        return self.work / f"{name}.json"


@dataclass
class Step:
    name: str
    budget_s: float  # full size, on the GPU
    tiny_budget_s: float  # --tiny (CPU)
    commands: Callable[[Context], list[list[str]]]
    reserve_s: float = 15.0  # kept for this step when earlier ones run long


def _py(script: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / script), *args]


def _pytest(ctx: Context, junit: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:randomly",
        "-o", f"cache_dir={ctx.work / 'pytest_cache'}",
        f"--junitxml={ctx.out / junit}", *args,
    ]  # fmt: skip


def cmd_env(ctx: Context) -> list[list[str]]:
    return [_py("gpu_check.py", "--env-info", str(ctx.json("env")), "--device", ctx.device)]


def cmd_tests(ctx: Context) -> list[list[str]]:
    # --tiny on a CPU: only the GPU tests of ops/test_compiled.py (they skip), so the run does not
    # spend minutes compiling the kernels for the CPU-emulation tests.
    subset = ["-k", "test_cuda_"] if ctx.tiny else []
    return [
        _pytest(ctx, "junit_ops.xml", str(REPO / "tests" / "ops" / "test_compiled.py"), *subset),
        _pytest(
            ctx, "junit_cuda.xml", str(REPO / "tests"), "-m", "cuda",
            "--ignore", str(REPO / "tests" / "ops" / "test_compiled.py"),
        ),
    ]  # fmt: skip


def cmd_e2e(ctx: Context) -> list[list[str]]:
    args = ["--work", str(ctx.work / "e2e"), "--json", str(ctx.json("e2e"))]
    args += ["--device", ctx.device, "--landmarks", ctx.args.landmarks]
    return [_py("gpu_check_e2e.py", *args, *(["--tiny"] if ctx.tiny else []))]


def bench(name: str, script: str, full: str, tiny: str) -> Callable[[Context], list[list[str]]]:
    """The command of a bench-script step: its arguments for a full-size or a --tiny run
    ('{device}' is replaced by the device), plus --json into the work dir."""

    def commands(ctx: Context) -> list[list[str]]:
        args = (tiny if ctx.tiny else full).format(device=ctx.device).split()
        return [_py(script, *args, "--json", str(ctx.json(name)))]

    return commands


cmd_ops = bench("ops", "bench_ops.py", "--repeat 3", "--cpu-max-size 36 --layers L0 L1 --repeat 1")
cmd_synthesis = bench(
    "synthesis",
    "bench_ops.py",
    "--no-ops --synthesis --repeat 3",
    "--no-ops --synthesis --synthesis-size 32 --narrow --cpu-max-size 64 "
    "--synthesis-batches 1 2 --repeat 1",
)
cmd_pti = bench(
    "pti",
    "bench_pti.py",
    "--device {device} --resolution 1024 --batches 1 4 --steps 8",
    "--device {device} --resolution 32 --narrow --batches 1 2 --steps 1 --warmup 1 --frames 4",
)
cmd_encoder = bench(
    "encoder",
    "bench_encoder.py",
    "--devices {device} --resolution 1024 --batches 1 8 --repeat 3",
    "--devices {device} --resolution 32 --narrow --batches 1 --repeat 1",
)
cmd_toonify = bench(
    "toonify",
    "bench_toonify.py",
    "--devices {device} --input 512 --batches 1 4 --repeat 3",
    "--devices {device} --cpu-input 32 --cpu-batches 1 --repeat 1",
)
cmd_compose = bench(
    "compose",
    "bench_compose.py",
    "--cases {device}:1024 --repeat 3 --frame 1920x1080",
    "--cases {device}:32 --repeat 1 --frame 640x360 --paste-render 256",
)


def cmd_invert(ctx: Context) -> list[list[str]]:
    args = ["--device", ctx.device, "--long", "0", "--json", str(ctx.json("invert"))]
    args += ["--keep", str(ctx.work / "invert"), "--landmarks", ctx.args.landmarks]
    if ctx.tiny:
        args += ["--short", "0.4", "--frame", "640x360", "--resolution", "32"]
        args += ["--pti-steps", "2", "--threads", "2"]
    else:
        args += ["--short", "10", "--frame", "1920x1080"]
        args += ["--pti-steps", str(ctx.args.invert_pti_steps)]
    return [_py("bench_invert.py", *args)]


STEPS = [
    Step("env", 150, 60, cmd_env),
    Step("tests", 150, 120, cmd_tests),
    Step("e2e", 180, 900, cmd_e2e),
    Step("ops", 40, 120, cmd_ops),
    Step("synthesis", 90, 240, cmd_synthesis),
    Step("pti", 60, 180, cmd_pti),
    Step("encoder", 40, 120, cmd_encoder),
    Step("toonify", 40, 180, cmd_toonify),
    Step("compose", 30, 120, cmd_compose),
    Step("invert", 240, 600, cmd_invert, reserve_s=120),
]
STEP_NAMES = [s.name for s in STEPS]


def run_group(command: list[str], ctx: Context, out, timeout: float) -> int | None:
    """Run `command` in a new process group; on timeout kill the whole group (the step's own
    children too, so none keeps GPU memory). The exit code, or None on timeout."""
    process = subprocess.Popen(
        command, stdout=out, stderr=subprocess.STDOUT, env=ctx.env, cwd=REPO,
        start_new_session=True,
    )  # fmt: skip
    try:
        return process.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def junit_counts(path: Path) -> str:
    """'N passed, N failed, N errors, N skipped' of a pytest junit XML file."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        return f"unreadable ({error})"
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors")}
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    passed = count["tests"] - count["failures"] - count["errors"] - skipped
    return (
        f"{passed} passed, {count['failures']} failed, {count['errors']} errors, {skipped} skipped"
    )


def run_step(step: Step, ctx: Context, timeout: float, log) -> dict:
    """Run the step's commands in order, each to its end (a failure is recorded and the next
    command still runs; a timeout ends the step); record status, seconds and the result."""
    record: dict = {"status": "ok", "seconds": 0.0, "budget_s": round(timeout)}
    # a reused --work (or OUT) must not hand this run an earlier run's results
    ctx.json(step.name).unlink(missing_ok=True)
    shutil.rmtree(ctx.work / step.name, ignore_errors=True)
    for junit in ctx.out.glob("junit_*.xml") if step.name == "tests" else []:
        junit.unlink()
    started = time.perf_counter()
    for command in step.commands(ctx):
        left = timeout - (time.perf_counter() - started)
        log.write(f"\n===== {step.name}: {' '.join(command)}\n")
        log.flush()
        code = run_group(command, ctx, log, left)
        if code is None:
            record["status"] = "timeout"
            break
        if "pytest" in command and code == 5:  # pytest: no test selected
            record.setdefault("notes", []).append("a pytest run selected no test")
        elif code != 0 and record["status"] == "ok":
            record["status"] = f"failed (exit {code})"
    record["seconds"] = time.perf_counter() - started
    for junit in sorted(ctx.out.glob("junit_*.xml")) if step.name == "tests" else []:
        record.setdefault("notes", []).append(f"{junit.stem[6:]}: {junit_counts(junit)}")
    result = ctx.json(step.name)
    if result.is_file():
        record["result"] = json.loads(result.read_text())
    log.write(f"===== {step.name}: {record['status']} in {record['seconds']:.1f} s\n")
    log.flush()
    return record


def partial_invert(work: Path) -> dict | None:
    """What an `invert` step that ran out of time finished: the seconds of each completed stage
    (from the work dir's <stage>.json), in bench_invert's JSON shape with "partial": true."""
    folder = work / "invert" / "short.ganvid"
    stages = {}
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and record.get("complete") and "stage" in record:
            stages[record["stage"]] = record
    if "decode" not in stages:
        return None
    decode = stages["decode"]["info"]
    pti = stages.get("pti", {}).get("info", {})
    run = {
        "frames": decode["frames"],
        "seconds": {name: r["seconds"] for name, r in stages.items()},
        "pti_steps": pti.get("steps"),
        "pti_batch": pti.get("batch"),
    }
    return {"partial": True, "frame": decode["size"], "short": run}


def ops_environment(ctx: Context, env_record: dict) -> None:
    """GANVID_OPS for the later steps: 'cuda' when the build worked (so a kernel failure is
    loud), else 'ref' (the figures then say so)."""
    if ctx.device != "cuda":
        return
    build = env_record.get("result", {}).get("ops_build", {})
    ctx.env["GANVID_OPS"] = "cuda" if build and "error" not in build else "ref"


# ----------------------------------------------------------------------------- targets


def _ratio_target(
    ratios: list[float], floor: float, measured: str, missing: str, also: bool = True
) -> dict:
    """PASS when the worst ratio is at least `floor` (and `also`); n/a without ratios.
    `measured` may use {worst} and {n}."""
    if not ratios:
        return {"status": "n/a", "measured": missing}
    worst = min(ratios)
    return {
        "status": "PASS" if worst >= floor and also else "MISS",
        "measured": measured.format(worst=worst, n=len(ratios)),
        "worst": worst,
    }


def check_targets(results: dict) -> dict[str, dict]:
    """{target: {status: PASS|MISS|n/a, measured: text, worst: number}} from the step results.

    Ratios come from the same run. A target needs CUDA figures; without them it is 'n/a'."""
    targets: dict[str, dict] = {}
    synth = results.get("synthesis", {}).get("synthesis", [])
    by_case = {(r["config"], r["precision"], r["batch"], r["ops"]): r for r in synth}

    speedups, memory_over = [], []
    for (config, precision, batch, ops), cuda in by_case.items():
        ref = by_case.get((config, precision, batch, "ref"))
        if ops != "cuda" or ref is None or not cuda["images_per_s"] or not ref["images_per_s"]:
            continue
        speedups.append(cuda["images_per_s"] / ref["images_per_s"])
        if cuda["peak_mib"] is not None and ref["peak_mib"] is not None:
            if cuda["peak_mib"] > ref["peak_mib"]:
                memory_over.append(f"{config} {precision} b{batch}")
    more = f"; more memory: {', '.join(memory_over)}" if memory_over else "; memory <= ref"
    targets["synthesis_5x"] = _ratio_target(
        speedups, 5.0, "min speed-up {worst:.1f}x over {n} cases" + more,
        "no CUDA-vs-ref synthesis rows", also=not memory_over,
    )  # fmt: skip

    fp16 = []
    for (config, precision, batch, ops), row in by_case.items():
        full = by_case.get((config, "fp32", batch, ops))
        if ops == "cuda" and precision == "fp16" and full and row["images_per_s"]:
            if full["images_per_s"]:
                fp16.append(row["images_per_s"] / full["images_per_s"])
    targets["fp16_1.5x"] = _ratio_target(
        fp16, 1.5, "min fp16/fp32 {worst:.2f}x over {n} cases", "no CUDA fp16/fp32 rows"
    )

    rows = results.get("pti", {}).get("rows", [])
    amp = {(r["batch"], r["amp"]): r["steps_per_s"] for r in rows}
    ratios = [amp[b, True] / amp[b, False] for (b, on) in amp if on and (b, False) in amp]
    batches = ", ".join(str(b) for (b, on) in amp if on)
    targets["amp_pti_1.5x"] = _ratio_target(
        ratios, 1.5, "min AMP/no-AMP {worst:.2f}x over batches " + batches,
        "no PTI rows with AMP on and off",
    )  # fmt: skip

    invert = invert_totals(results.get("invert", {}))
    if invert is None:
        targets["invert_10s_1080p_5min"] = {"status": "n/a", "measured": "no invert run"}
    elif results["invert"].get("partial"):
        done = ", ".join(results["invert"]["short"]["seconds"])
        targets["invert_10s_1080p_5min"] = {
            "status": "n/a",
            "measured": f"ran out of time; {invert['total_s']:.0f} s for the stages done ({done})",
        }
    elif not invert["cuda"]:
        targets["invert_10s_1080p_5min"] = {
            "status": "n/a",
            "measured": f"{invert['total_500_s']:.0f} s (not on a GPU)",
        }
    else:
        how = "measured" if invert["pti_steps"] == INVERT_TARGET_STEPS else "projected"
        targets["invert_10s_1080p_5min"] = {
            "status": "PASS" if invert["total_500_s"] < INVERT_TARGET_S else "MISS",
            "measured": f"{invert['total_500_s']:.0f} s at 500 PTI steps ({how}; ran "
            f"{invert['pti_steps']} steps, {invert['frames']} frames)",
            "worst": invert["total_500_s"],
        }
    return targets


def invert_totals(result: dict) -> dict | None:
    """Whole-invert seconds of the short clip, and that total with 500 PTI steps."""
    run = result.get("short")
    if not run:
        return None
    seconds = run["seconds"]
    total = sum(seconds.values())
    steps = run.get("pti_steps") or 0
    if not steps or "pti" not in seconds:
        return {"frames": run["frames"], "pti_steps": steps, "total_s": total,
                "total_500_s": float("nan"), "cuda": "peak_cuda_mib" in run}  # fmt: skip
    pti_500 = seconds["pti"] / steps * INVERT_TARGET_STEPS
    return {
        "frames": run["frames"],
        "pti_steps": steps,
        "total_s": total,
        "total_500_s": total - seconds["pti"] + pti_500,
        "cuda": "peak_cuda_mib" in run,
    }


# ----------------------------------------------------------------------------- markdown


def _table(header: list[str], rows: list[list]) -> list[str]:
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if value != value:  # NaN: not measured (memory on a CPU)
                return "-"
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def markdown(summary: dict) -> str:
    env = summary["steps"].get("env", {}).get("result", {})
    results = summary["results"]
    gpu = summary["gpu"] or "no GPU"
    lines = [
        f"## GPU check: {gpu} ({summary['date']})",
        "",
        f"torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda', '?')}), Python "
        f"{env.get('python', '?')}, device {summary['device']}, ops: "
        f"{env.get('ops_backend', '-')}" + (" — **--tiny smoke run**" if summary["tiny"] else ""),
        "",
        "### Steps",
        "",
    ]
    step_rows = [
        [name, s["status"], s["seconds"], s["budget_s"], "; ".join(s.get("notes", []))]
        for name, s in summary["steps"].items()
    ]
    lines += _table(["step", "status", "seconds", "budget s", "notes"], step_rows)
    lines += ["", "### Targets", ""]
    target_rows = [[TARGETS[k], t["status"], t["measured"]] for k, t in summary["targets"].items()]
    lines += _table(["target", "result", "measured"], target_rows)

    if "e2e" in results:
        e = results["e2e"]
        lines += ["", "### End to end: invert killed during PTI and resumed, then edit", ""]
        lines += _table(
            ["landmarks", "frames", "PTI steps", "kill in PTI", "weights max diff",
             "video max diff", "edit max diff", "straight s", "resume s", "passed"],
            [[e.get("landmarks"), e.get("frames"), e.get("pti_steps"),
              e.get("kill_landed_in_pti"), e.get("weights_max_abs_diff"),
              e.get("invert_frames_max_abs_diff"), e.get("edit_frames_max_abs_diff"),
              e.get("invert_straight_s"), e.get("invert_resume_s"), e.get("passed")]],
        )  # fmt: skip
        if "error" in e:
            lines += ["", f"error: {e['error']}"]
    if results.get("ops", {}).get("ops"):
        rows = results["ops"]["ops"]
        lines += ["", "### Ops at SG3-R-1024 layer shapes, batch 1", ""]
        lines += _table(list(rows[0]), [list(r.values()) for r in rows])
    if results.get("synthesis", {}).get("synthesis"):
        by_case: dict = {}
        for r in results["synthesis"]["synthesis"]:
            key = (r["config"], r["size"], r["precision"], r["batch"])
            by_case.setdefault(key, {})[r["ops"]] = r
        rows = []
        for (config, size, precision, batch), ops in by_case.items():
            ref, cuda = ops.get("ref", {}), ops.get("cuda", {})
            speed = None
            if ref.get("images_per_s") and cuda.get("images_per_s"):
                speed = f"{cuda['images_per_s'] / ref['images_per_s']:.1f}x"
            rows.append([f"SG3-{config}-{size}", precision, batch, ref.get("images_per_s"),
                         ref.get("peak_mib"), cuda.get("images_per_s"), cuda.get("peak_mib"),
                         speed])  # fmt: skip
        lines += ["", "### Synthesis (random weights)", ""]
        lines += _table(
            ["network", "precision", "batch", "ref img/s", "ref MiB", "cuda img/s", "cuda MiB",
             "cuda/ref"],
            rows,
        )  # fmt: skip
    if results.get("pti", {}).get("rows"):
        p = results["pti"]
        lines += ["", f"### PTI at {p.get('resolution')} px (SG3-R, LPIPS-Alex)", ""]
        lines += _table(
            ["batch", "AMP", "steps/s", "images/s", "peak MiB"],
            [[r["batch_run"], r["amp"], r["steps_per_s"], r["images_per_s"], r.get("peak_mib")]
             for r in p["rows"]],
        )  # fmt: skip
    if results.get("encoder", {}).get("rows"):
        e = results["encoder"]
        lines += ["", f"### ReStyle-e4e inversion ({e['iters']} iterations)", ""]
        lines += _table(
            ["generator px", "batch", "frames/s", "s/frame", "encoder pass s/frame",
             "render s/frame"],
            [[r["resolution"], r["batch"], r["batch"] / r["invert"], r["invert"] / r["batch"],
              r["encoder"] / r["batch"], r["render"] / r["batch"]] for r in e["rows"]],
        )  # fmt: skip
    if results.get("toonify", {}).get("rows"):
        lines += ["", "### StyleGANEX toonify (published shape)", ""]
        lines += _table(
            ["crop -> render", "batch", "w+ s", "features s", "decode s", "total s/frame",
             "peak MiB"],
            [[f"{r['crop']} -> {r['render_side']}", r["batch"], r["wplus"] / r["batch"],
              r["features"] / r["batch"], r["decode"] / r["batch"], r["total"] / r["batch"],
              r.get("peak_mib")] for r in results["toonify"]["rows"]],
        )  # fmt: skip
    if results.get("compose", {}).get("rows"):
        c = results["compose"]
        lines += ["", f"### Paste-back into {c['frame']} and FoV +25 % per side", ""]
        lines += _table(
            ["render px", "plain s/frame", "FoV s/frame", "FoV / plain", "paste-back s/frame",
             "plain MiB", "FoV MiB"],
            [[r["size"], r["plain_s"], r["fov_s"], r["fov_s"] / r["plain_s"], r["paste_s"],
              r["plain_mib"], r["fov_mib"]] for r in c["rows"]],
        )  # fmt: skip
    totals = invert_totals(results.get("invert", {}))
    if totals:
        run = results["invert"]["short"]
        width, height = results["invert"]["frame"]
        lines += [
            "",
            f"### `ganvid invert` of a {run['frames']}-frame {width}x{height} clip "
            f"({run['pti_steps']} PTI steps, batch {run['pti_batch']})",
            "",
        ]
        rows = [[stage, s, s / run["frames"]] for stage, s in run["seconds"].items()]
        rows.append(["total", totals["total_s"], totals["total_s"] / run["frames"]])
        lines += _table(["stage", "seconds", "s/frame"], rows)
        if results["invert"].get("partial"):
            lines += ["", "**Ran out of time**: only the stages above finished."]
        else:
            steps_per_s = run["pti_steps"] / max(run["seconds"]["pti"], 1e-9)
            memory = run.get("peak_cuda_mib", run.get("peak_rss_mib"))
            lines += [
                "",
                f"PTI {steps_per_s:.2f} steps/s; total with 500 PTI steps: "
                f"{totals['total_500_s']:.0f} s; peak memory {memory:.0f} MiB; "
                f"landmarks: {results['invert'].get('landmarks')}.",
            ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- profiles


def profile_commands(ctx: Context, missed: list[str]) -> list[list[str]]:
    """One profile_top.py run per missed target (the invert target profiles a PTI step, which
    dominates it; its per-stage table says the rest)."""
    size = ["--resolution", "1024"]
    if ctx.tiny:
        size = ["--resolution", "32", "--narrow", "--warmup", "1", "--runs", "1"]
    what = {
        "synthesis_5x": ["synthesis", "--precision", "fp32"],
        "fp16_1.5x": ["synthesis", "--precision", "fp16"],
        "amp_pti_1.5x": ["pti", "--amp"],
        "invert_10s_1080p_5min": ["pti", "--amp"],
    }
    commands, seen = [], set()
    for target in missed:
        key = tuple(what[target])
        if key in seen:
            continue
        seen.add(key)
        commands.append(_py("profile_top.py", *key, "--device", ctx.device, *size))
    return commands


def run_profiles(ctx: Context, missed: list[str], seconds: float) -> dict:
    """The profiles of the missed targets, as one more step whose log is profile.txt."""
    step = Step("profile", seconds, seconds, lambda ctx: profile_commands(ctx, missed))
    with open(ctx.out / PROFILE_NAME, "w") as out:
        record = run_step(step, ctx, seconds, out)
    return {**record, "targets": missed}


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "out", nargs="?", default=os.environ.get("OUT"), help="output folder (default: $OUT)"
    )
    parser.add_argument("--tiny", action="store_true", help="shrink every size (CPU smoke run)")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--work", type=Path, help="bulky files (default: a temporary folder)")
    parser.add_argument("--only", nargs="+", choices=STEP_NAMES, help="run only these steps")
    parser.add_argument("--skip", nargs="+", choices=STEP_NAMES, default=[], help="skip these")
    parser.add_argument(
        "--deadline", type=float, default=None, help="seconds for all steps (GPU 480, tiny 2400)"
    )
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply every step's budget"
    )
    parser.add_argument(
        "--invert-pti-steps", type=int, default=100,
        help="PTI steps of the 10-s invert (the 500-step total is projected from them)",
    )  # fmt: skip
    parser.add_argument("--landmarks", choices=["auto", "dlib", "known"], default="auto")
    parser.add_argument(
        "--profile", choices=["miss", "all", "none"], default="miss",
        help="torch.profiler tables for missed targets (all: every target)",
    )  # fmt: skip
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary --work")
    parser.add_argument("--env-info", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--missing-deps", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def resolve_device(choice: str) -> str:
    if choice != "auto":
        return choice
    probe = "import torch; print(torch.cuda.is_available())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return "cuda" if done.stdout.strip() == "True" else "cpu"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.missing_deps:
        print("\n".join(missing_requirements()))
        return 0
    if args.env_info:
        env_info(args.env_info, args.device)
        return 0
    if not args.out:
        sys.exit("gpu_check: give an output folder (or set $OUT)")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    temporary = args.work is None
    work = (args.work or Path(tempfile.mkdtemp(prefix="ganvid_gpu_check_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    # Every step loads the ops build that `env` made (test_ops_cuda's build fixture uses
    # <pytest cache>/d/ganvid_ops_home, so the tests find it too).
    env["GANVID_HOME"] = str(work / "pytest_cache" / "d" / "ganvid_ops_home")
    ctx = Context(args, out, work, device, args.tiny, env)
    deadline = args.deadline or (2400.0 if args.tiny else 480.0)
    chosen = [
        s for s in STEPS if (not args.only or s.name in args.only) and s.name not in args.skip
    ]

    started = time.perf_counter()
    summary: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": device,
        "tiny": args.tiny,
        "gpu": None,
        "work": str(work),
        "steps": {},
    }
    print(f"gpu_check: device {device}{' (tiny)' if args.tiny else ''}; out {out}; work {work}")
    with open(out / LOG_NAME, "a") as log:
        for index, step in enumerate(chosen):
            left = deadline - (time.perf_counter() - started)
            reserve = sum(s.reserve_s for s in chosen[index + 1 :])
            budget = (step.tiny_budget_s if args.tiny else step.budget_s) * args.budget_scale
            timeout = min(budget, left - reserve)
            if timeout < 5:
                record = {"status": "skipped (out of time)", "seconds": 0.0, "budget_s": 0}
            else:
                print(f"[{time.perf_counter() - started:6.0f} s] {step.name} (<= {timeout:.0f} s)")
                record = run_step(step, ctx, timeout, log)
            if step.name == "invert" and "result" not in record:
                partial = partial_invert(work)
                if partial:
                    record["result"] = partial
            summary["steps"][step.name] = record
            print(f"         {step.name}: {record['status']} ({record['seconds']:.1f} s)")
            if step.name == "env":
                ops_environment(ctx, record)
                summary["gpu"] = record.get("result", {}).get("gpu")
                summary["ganvid_ops"] = ctx.env.get("GANVID_OPS", "auto")

        results = {k: s["result"] for k, s in summary["steps"].items() if "result" in s}
        summary["results"] = results
        summary["targets"] = check_targets(results)
        print("\ntargets:")
        for key, target in summary["targets"].items():
            print(f"  {target['status']:>4}  {TARGETS[key]}: {target['measured']}")
        if args.profile != "none":
            missed = [
                k
                for k, t in summary["targets"].items()
                if t["status"] == "MISS" or args.profile == "all"
            ]
            left = deadline + 45 - (time.perf_counter() - started)  # profiles: <= 45 s more
            if missed and left > 10:
                summary["profile"] = run_profiles(ctx, missed, left)
                print(f"profiles of {', '.join(missed)}: {out / PROFILE_NAME}")
    summary["seconds"] = time.perf_counter() - started
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "summary.md").write_text(markdown(summary))
    print(f"\nsummary: {out / 'summary.md'} ({summary['seconds']:.0f} s in all)")
    if temporary and not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    failed = [k for k, s in summary["steps"].items() if s["status"] != "ok"]
    if failed:
        print(f"steps not ok: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
