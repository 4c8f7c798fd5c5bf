"""Benchmark ganvid's ops: CUDA kernels vs the reference path.

    python benchmarks/bench_ops.py                      # per-op at SG3-R-1024 layer shapes
    python benchmarks/bench_ops.py --synthesis          # + full synthesis, R and T at 1024
    python benchmarks/bench_ops.py --markdown out.md    # also write the tables as markdown
    python benchmarks/bench_ops.py --no-ops --synthesis --json synthesis.json   # records as JSON

Per op: median wall time (ms) of forward and forward+backward, and peak extra GPU memory (MiB)
over the inputs, for each path, with the ratio ref/cuda. Synthesis: images/s and peak memory for
batch 1/4/16 in fp32 (force_fp32) and fp16 (NVIDIA's mixed precision on the high-res layers);
random weights (speed does not depend on their values). Without a GPU only the reference path
runs, on CPU, for the smaller layers (a note says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ganvid import ops
from ganvid.nn.stylegan3 import Generator, SG3Config, layer_filters, synthesis_schedule


@dataclass
class Measure:
    ms: float | None  # None = out of memory
    mib: float | None  # None = not measured (CPU)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, repeat: int) -> Measure:
    """Median time of `fn` over `repeat` runs after one warm-up, and its peak extra memory."""
    try:
        fn()
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
        peak = (
            (torch.cuda.max_memory_allocated(device) - base) / 2**20
            if device.type == "cuda"
            else None
        )
        return Measure(statistics.median(times) * 1e3, peak)
    except torch.OutOfMemoryError:
        return Measure(None, None)
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def use_backend(name: str) -> None:
    """Route CUDA tensors to the kernels ('cuda') or the reference ops ('ref')."""
    os.environ["GANVID_OPS"] = name


def _fmt(value: float | None, digits: int = 2) -> str:
    return "OOM" if value is None else f"{value:.{digits}f}"


def _mem(m: Measure) -> str:
    """Peak MiB, 'OOM', or '-' where memory is not measured (CPU)."""
    if m.ms is None:
        return "OOM"
    return "-" if m.mib is None else f"{m.mib:.0f}"


def _ratio(ref: float | None, cuda: float | None) -> str:
    return "-" if ref is None or cuda is None or cuda == 0 else f"{ref / cuda:.1f}x"


# ------------------------------------------------------------------------------ per-op


def layer_case(spec, batch: int, device: torch.device, dtype: torch.dtype):
    """Inputs of one SynthesisLayer's filtered_lrelu call (shapes from the SG3 schedule)."""
    fu, fd = layer_filters(spec)
    size = spec.in_size + spec.conv_kernel - 1
    x = torch.randn(batch, spec.out_channels, size, size, device=device, dtype=dtype)
    b = torch.zeros(spec.out_channels, device=device, dtype=dtype)
    kwargs = dict(
        fu=None if fu is None else fu.to(device),
        fd=None if fd is None else fd.to(device),
        b=b,
        up=spec.up_factor,
        down=spec.down_factor,
        padding=list(spec.padding),
        gain=1 if spec.is_torgb else np.sqrt(2),
        slope=1 if spec.is_torgb else 0.2,
        clamp=256,
    )
    return x, kwargs


def op_rows(args, device: torch.device, backends: list[str]) -> list[list[str]]:
    rows = []
    specs = synthesis_schedule(SG3Config.config_r(1024))[1]
    for spec in specs:
        if args.layers and spec.name.split("_")[0] not in args.layers:
            continue
        if device.type == "cpu" and spec.out_size > args.cpu_max_size:
            continue
        dtype = torch.float16 if (spec.use_fp16 and device.type == "cuda") else torch.float32
        x, kwargs = layer_case(spec, args.batch, device, dtype)
        result: dict[tuple[str, str], Measure] = {}
        for backend in backends:
            use_backend(backend)

            def forward(x=x, kwargs=kwargs):
                with torch.no_grad():
                    return ops.filtered_lrelu(x, **kwargs)

            def forward_backward(x=x, kwargs=kwargs):
                xg = x.detach().requires_grad_()
                y = ops.filtered_lrelu(xg, **kwargs)
                y.backward(torch.ones_like(y))

            result[backend, "fwd"] = measure(forward, device, args.repeat)
            result[backend, "fwd+bwd"] = measure(forward_backward, device, args.repeat)
        for mode in ("fwd", "fwd+bwd"):
            row = [f"{spec.name} {str(dtype).split('.')[-1]}", mode]
            for backend in backends:
                m = result[backend, mode]
                row += [_fmt(m.ms), _mem(m)]
            if len(backends) == 2:
                ref, cuda = result["ref", mode], result["cuda", mode]
                row.append(_ratio(ref.ms, cuda.ms))
            rows.append(row)
    return rows


def bias_act_rows(args, device: torch.device, backends: list[str]) -> list[list[str]]:
    """bias_act at the mapping network's shape and at a 1024-px feature map."""
    rows = []
    for shape in ((16, 512), (args.batch, 64, 1024, 1024)):
        if device.type == "cpu" and len(shape) == 4:
            continue
        x = torch.randn(shape, device=device)
        b = torch.zeros(shape[1], device=device)
        result = {}
        for backend in backends:
            use_backend(backend)

            def forward(x=x, b=b):
                with torch.no_grad():
                    return ops.bias_act(x, b, act="lrelu", clamp=256)

            result[backend] = measure(forward, device, args.repeat)
        row = [f"bias_act lrelu {list(shape)}", "fwd"]
        for backend in backends:
            row += [_fmt(result[backend].ms), _mem(result[backend])]
        if len(backends) == 2:
            row.append(_ratio(result["ref"].ms, result["cuda"].ms))
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ synthesis


def synthesis_rows(
    args, device: torch.device, backends: list[str], records: list[dict], saved=lambda: None
) -> list[list[str]]:
    """Table rows; also appends one dict per case to `records` (None = out of memory) and calls
    `saved()` after each case (so a run cut short keeps what it measured)."""
    rows = []
    size = args.synthesis_size
    narrow = {"channel_base": 2048, "channel_max": 64} if args.narrow else {}
    for kind in args.configs:
        make = SG3Config.config_r if kind == "R" else SG3Config.config_t
        cfg = make(size, **narrow)
        G = Generator(cfg).eval().to(device)
        for precision in ("fp32", "fp16"):
            for batch in args.synthesis_batches:
                ws = torch.randn(batch, G.num_ws, G.w_dim, device=device)
                result = {}
                for backend in backends:
                    use_backend(backend)

                    def render(G=G, ws=ws, fp32=precision == "fp32"):
                        with torch.no_grad():
                            return G.synthesis(ws, force_fp32=fp32)

                    result[backend] = measure(render, device, args.repeat)
                row = [f"SG3-{kind}-{size} {precision}", str(batch)]
                for backend in backends:
                    m = result[backend]
                    ips = None if m.ms is None else batch / (m.ms / 1e3)
                    row += [_fmt(ips), _mem(m)]
                    records.append(
                        dict(config=kind, size=size, precision=precision, batch=batch,
                             ops=backend, images_per_s=ips, peak_mib=m.mib)
                    )  # fmt: skip
                if len(backends) == 2:
                    row.append(_ratio(result["ref"].ms, result["cuda"].ms))
                rows.append(row)
                saved()
    return rows


# ------------------------------------------------------------------------------ output


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1, help="batch for the per-op rows")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--layers", nargs="*", help="only these layers, e.g. L0 L10")
    parser.add_argument("--synthesis", action="store_true", help="also time full synthesis")
    parser.add_argument("--configs", nargs="*", default=["R", "T"], choices=["R", "T"])
    parser.add_argument("--synthesis-batches", nargs="*", type=int, default=[1, 4, 16])
    parser.add_argument(
        "--synthesis-size", type=int, default=1024, help="synthesis px (CPU: <= --cpu-max-size)"
    )
    parser.add_argument("--no-ops", action="store_true", help="skip the per-op table")
    parser.add_argument("--narrow", action="store_true", help="synthesis: narrow layers (smoke)")
    parser.add_argument("--cpu-max-size", type=int, default=148, help="CPU: skip larger layers")
    parser.add_argument("--markdown", help="also write the tables to this markdown file")
    parser.add_argument("--json", help="also write {note, gpu, ops, synthesis} records here")
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        from ganvid.ops import loader

        use_backend("cuda")
        loader.cuda_module()  # build (or load) before timing anything
        backends = ["ref", "cuda"]
        note = (
            f"GPU: {torch.cuda.get_device_name(device)}; ops backend: {loader.describe_backend()}"
        )
    else:
        backends = ["ref"]
        note = (
            "No CUDA device: reference path on CPU only, layers up to "
            f"{args.cpu_max_size} px; memory is not measured on CPU."
        )
    torch.manual_seed(0)
    print(note)
    sections = [note, ""]

    value_cols = [c for b in backends for c in (f"{b} ms", f"{b} MiB")]
    ratio = ["ref/cuda"] if len(backends) == 2 else []
    op_header = ["op (SG3-R-1024 layer)", "pass", *value_cols, *ratio]
    op_table_rows = [] if args.no_ops else op_rows(args, device, backends)
    op_table_rows += [] if args.no_ops else bias_act_rows(args, device, backends)
    if op_table_rows:
        op_table = table(op_header, op_table_rows)
        print(op_table)
        sections += [op_table, ""]
    records: list[dict] = []
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    ops_records = [dict(zip(op_header, row, strict=True)) for row in op_table_rows]

    def save() -> None:
        if args.json:
            with open(args.json, "w") as handle:
                payload = {"note": note, "gpu": gpu, "ops": ops_records, "synthesis": records}
                json.dump(payload, handle)

    save()
    if args.synthesis:
        if device.type == "cpu" and args.synthesis_size > args.cpu_max_size:
            print(f"synthesis at {args.synthesis_size} px is skipped on CPU")
        else:
            cols = [c for b in backends for c in (f"{b} img/s", f"{b} MiB")]
            synth_rows = synthesis_rows(args, device, backends, records, save)
            speedup = ["speed-up"] if len(backends) == 2 else []
            synth = table(["synthesis", "batch", *cols, *speedup], synth_rows)
            print(synth)
            sections += [synth, ""]
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write("\n".join(sections))


if __name__ == "__main__":
    main()
