"""A finished inversion in a work dir, as `ganvid edit`, expand-fov and the preview read it:
`load_inversion(workdir)` checks that `ganvid invert` completed there and returns an `Inversion`
(its latents, transforms, shots, pts, crops cut on demand and the tuned generator). The
inversion job (`ganvid.pipeline.invert`) writes `inversion.json` with INVERSION_VERSION last.

`inversion.json` says `"pti_per_shot": true` when PTI tuned one generator per shot; without it
(every work dir made before the option) PTI tuned one for the clip. An optional key rather than
a new INVERSION_VERSION: finished work dirs of either kind stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganvid.errors import WorkdirError
from ganvid.pipeline import layout as names
from ganvid.pipeline.crops import ClipFrames, CropCutter
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.workdir import completed_manifest, read_json

INVERSION_VERSION = 1


@dataclass(frozen=True)
class Inversion:
    """A finished inversion in a work dir: what `ganvid edit` and FoV/paste-back build on.

    Arrays (all N = `frames` rows, in decode order):
      ws_raw      invert/ws.npy        encoder W+ before smoothing [N,num_ws,w_dim]
      ws          smooth/ws.npy        smoothed W+ (the PTI pivots, what the render used)
      transforms  smooth/transforms.npy input transforms [N,3,3] (smoothed)
      params      smooth/params.npy    (angle_deg, tx_frac, ty_frac) [N,3] (smoothed)
      geometry    geometry/geometry.npz raw params, shot_ids, detected, interpolated
    plus geometry/geometry.json (quads and windows per frame, for paste-back), the unaligned
    crops (`crops()`, cut from the clip on demand), pts in decode/video.json and the tuned
    weights pti/generator.pt (per shot: pti/shots/<shot>.pt), drawn through `tuned()`.
    """

    workdir: Path
    clip: Path
    frames: int
    generator_path: Path
    smooth: bool
    fine_layer_mean: bool
    pti_per_shot: bool = False

    @property
    def layout(self) -> Layout:
        return Layout(self.workdir)

    @property
    def ws_raw(self) -> np.ndarray:
        return np.load(self.layout.invert_ws, mmap_mode="r")

    @property
    def ws(self) -> np.ndarray:
        return np.load(self.layout.smooth_ws, mmap_mode="r")

    @property
    def transforms(self) -> np.ndarray:
        return np.load(self.layout.smooth_transforms)

    @property
    def shot_ids(self) -> np.ndarray:
        return np.load(self.layout.geometry_npz)["shot_ids"]

    @property
    def pts(self) -> list[int]:
        return list(read_json(self.layout.decode_json)["pts"])

    def crops(self, clip: Path | None = None):
        """The unaligned crops, cut on demand from `clip` (default: the inverted clip), with
        `read(index)`."""
        source = self.clip if clip is None else clip
        frames = ClipFrames.for_workdir(self.layout, source)
        return CropCutter.load(self.layout.geometry_npz, source, frames).unaligned_crops

    def generator(self, device, tuned: bool = True):
        """The generator the inversion used; with `tuned`, its PTI weights loaded (per clip
        only: per-shot weights depend on the frame, draw them through `tuned()`)."""
        from ganvid.nn.checkpoints import load_generator

        if tuned:
            if self.pti_per_shot:
                raise ValueError(f"{self.workdir}: PTI ran per shot; render through tuned()")
            return self.tuned(device).generator
        return load_generator(self.generator_path, device=device).eval().requires_grad_(False)

    def tuned(self, device):
        """The generator with the PTI weights, switched at shot boundaries when PTI ran per
        shot (`ganvid.pipeline.pti.TunedWeights`: render with its `render_frames`)."""
        from ganvid.pipeline.pti import TunedWeights

        generator = self.generator(device, tuned=False)
        return TunedWeights(generator, self.layout, self.pti_per_shot)

    def render_job(self, ws: np.ndarray | None = None, modifier=None):
        """A RenderJob over the smoothed transforms (and `ws`, default the smoothed pivots)."""
        from ganvid.pipeline.render import RenderJob

        return RenderJob(self.ws if ws is None else ws, self.transforms, modifier)


def load_inversion(workdir: str | Path) -> Inversion:
    """The finished inversion in `workdir`, or WorkdirError telling the user to invert first."""
    workdir = Path(workdir)
    record = read_json(Layout(workdir).inversion_json)
    if not record or record.get("version") != INVERSION_VERSION:
        raise WorkdirError(
            f"{workdir} holds no finished inversion; run `ganvid invert <clip>` first"
        )
    for stage in (names.DECODE, names.GEOMETRY, names.INVERT, names.SMOOTH, names.PTI):
        completed_manifest(workdir, stage)
    return Inversion(
        workdir=workdir,
        clip=Path(record["clip"]),
        frames=int(record["frames"]),
        generator_path=Path(record["generator"]),
        smooth=bool(record["smooth"]),
        fine_layer_mean=bool(record["fine_layer_mean"]),
        pti_per_shot=bool(record.get("pti_per_shot", False)),
    )
