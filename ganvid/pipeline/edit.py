"""`ganvid edit` and `ganvid expand-fov`: re-render a stored inversion, edited, without inverting.

Both build on a finished `ganvid invert` work dir (`ganvid.pipeline.invert.load_inversion`): the
raw per-frame W+ (invert/ws.npy), the smoothed transforms and the PTI-tuned generator (one per
shot when the inversion ran `--pti-per-shot`: every render goes through
`ganvid.pipeline.pti.TunedWeights`, which switches the weights at shot boundaries).

Stages (per edit, under `edits/<tag>/`, `Layout.edit`; `tag` names the edit, e.g. `age3_smile1`;
each gets its frozen options dataclass, hashed, and what it needs, never the job):

    edits/<tag>/latents   ws.npy          edited W+ BEFORE smoothing [N,num_ws,w_dim]:
                                          ws_raw[:, layers] + strength(t) * direction[layers]
                                          (--style-from first moves its layers towards the
                                          reference's code: lerp(ws, ref, strength(t)); an
                                          --expression is the direction w_expr - w_neutral;
                                          both codes come from the inversion's encoder and
                                          untuned generator, `ganvid.pipeline.photo`)
                          ws_smooth.npy   the same smoothing as the inversion's smooth stage
                          strengths.json  per-frame strength of every edit, and the frame times
    edits/<tag>/render    segments/<output>/*.mp4  tuned generator, smoothed transforms
                                          (StyleSpace edits add strength(t) to their channel's
                                          style per frame), pasted back into the source frames
                                          and encoded in resumable segments
                                          (`ganvid.pipeline.segments`); --keep-frames: also
                                          frames/*.png
    edits/<tag>/encode    <clip>_<tag>.mp4 (+ _sbs.mp4), joined from the segments by stream copy
    fov/<tag>_<amounts>/{render,encode}   `expand-fov`: the expanded renders and <clip>_fov.mp4

Each stage is keyed by the edit (directions by content), the smoothing options and its upstream
stages, so a second identical run recomputes nothing and a killed one resumes frame by frame.

Why edit before smoothing: the edit then goes through the very filter the inversion used, so an
edit of strength 0 reproduces the inversion's smoothed W+ (and, rendered in the same batches by
the same generator, its frames) bit for bit, and keyframed strengths are smoothed like the rest.
StyleSpace edits are applied at render time to the styles of the smoothed W+: styles are affine
in w, so this equals smoothing edited styles up to the smoothing of the (piecewise-linear)
strength curve itself.

Frame times for keyframes are seconds from the first frame (its pts), like the StyleGANEX path.

Why ~690 lines: one job module, read top to bottom (options, finding the inversion, the three
stages with their frozen options, then `EditJob`, whose edit / expand-fov / preview runs share
the edit requests it builds lazily). The machinery it stands on has its own homes: `Layout`,
`Job`, `segments`, `compose`, `paste_back`, `fov`, `edit/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ganvid.edit.request import EditRequest, domain_of_generator
from ganvid.errors import InputError, WorkdirError
from ganvid.files import absolute
from ganvid.io.image import write_image
from ganvid.pipeline import layout as names
from ganvid.pipeline.compose import (
    ComposeConfig,
    ComposeSources,
    main_layouts,
    sibling,
)
from ganvid.pipeline.compose import Layout as VideoLayout
from ganvid.pipeline.fov import Expansion
from ganvid.pipeline.invert import SmoothOptions
from ganvid.pipeline.job import Job
from ganvid.pipeline.layout import EditLayout, Layout
from ganvid.pipeline.paste_back import paste_config
from ganvid.pipeline.segments import SEGMENT_FRAMES
from ganvid.pipeline.workdir import (
    OMIT_DEFAULT,
    FrameDir,
    StageRecord,
    Workdir,
    atomic_path,
    atomic_write_json,
    default_workdir,
    output_folder,
    read_json,
)

NOTHING_TO_EDIT = (
    "nothing to edit: give --direction, --file, --style, --style-from or --expression "
    "(`ganvid edit --list` shows the directions)"
)


@dataclass(frozen=True)
class RenderOptions:
    """What `ganvid edit` and `ganvid expand-fov` share.

    clip: the source video (None: the one the inversion recorded). workdir: None = from the clip
    (`<clip>.ganvid`) or, without a clip, see `find_workdir`. domain: 'ffhq' | 'ffhqu' for the
    published directions (None: from the generator's file name).
    """

    clip: Path | None = None
    workdir: Path | None = None
    output: Path | None = None
    request: EditRequest = field(default_factory=EditRequest)
    domain: str | None = None
    device: str = "auto"
    batch: int = 4
    side_by_side: bool = False
    crf: int = 18
    preset: str = "medium"
    exact_size: bool = False
    """Odd frame sizes: False pads to even yuv420p (plays everywhere), True keeps them (4:4:4)."""
    fresh: bool = False
    keep_frames: bool = False
    """Also keep the renders as PNGs (<stage>/frames/) for inspection; the videos are the same."""
    segment_frames: int = SEGMENT_FRAMES
    """Frames per resumable output segment (`ganvid.pipeline.segments`)."""


@dataclass(frozen=True)
class EditOptions(RenderOptions):
    paste_back: bool = True
    mask: str = "hull"
    """Paste-back mask: hull (landmarks) or parsing (face-parsing network)."""
    preview: int = 0
    """> 0: render that many evenly spaced frames as a contact sheet PNG, and stop."""


@dataclass(frozen=True)
class FovOptions(RenderOptions):
    expansion: Expansion = field(default_factory=Expansion)
    band: int | None = None
    """Blend band in pixels (None: resolution / 32)."""


@dataclass
class EditSummary:
    workdir: Path
    frames: int
    tag: str
    records: list[StageRecord]
    outputs: dict[str, Path]
    size: tuple[int, int] = (0, 0)
    """(height, width) of each render."""


# ----------------------------------------------------------------------------- finding the work


def find_workdir(clip: Path | None, workdir: Path | None, cwd: Path | None = None) -> Path:
    """The work dir to edit: --workdir, else `<clip>.ganvid` beside CLIP, else the current folder
    if it is a work dir, else the only `*.ganvid/` folder in it."""
    if workdir is not None:
        return absolute(workdir)
    if clip is not None:
        return absolute(default_workdir(clip))
    cwd = absolute(Path.cwd() if cwd is None else cwd)
    if Layout(cwd).inversion_json.is_file() or cwd.suffix == ".ganvid":
        return cwd
    found = sorted(p for p in cwd.glob("*.ganvid") if p.is_dir())
    if len(found) == 1:
        return found[0]
    if not found:
        raise WorkdirError(
            f"no CLIP given and no *.ganvid work dir in {cwd}: run `ganvid invert CLIP` first "
            "(or pass the CLIP)"
        )
    names = ", ".join(p.name for p in found)
    raise InputError(f"several work dirs here ({names}): pass the CLIP or --workdir")


def open_inversion(workdir: Path, clip: Path | None):
    """The finished inversion in `workdir`; WorkdirError telling the user to invert first."""
    from ganvid.pipeline.inversion import load_inversion

    hint = f"`ganvid invert {clip}`" if clip is not None else "`ganvid invert CLIP`"
    if not Layout(workdir).inversion_json.is_file():
        raise WorkdirError(f"no finished inversion in {workdir}: run {hint} first")
    try:
        return load_inversion(workdir)
    except WorkdirError as error:
        raise WorkdirError(f"{error} (run {hint} to finish the inversion)") from None


def source_clip(clip: Path | None, inversion) -> Path:
    """The clip to read frames and sound from: CLIP if given, else the inverted one."""
    if clip is not None:
        if not Path(clip).is_file():
            raise InputError(f"{clip}: no such file")
        return absolute(clip)
    if not inversion.clip.is_file():
        raise InputError(
            f"the inverted clip {inversion.clip} is gone; pass the clip as the CLIP argument"
        )
    return inversion.clip


def frame_times(pts: list[int], time_base: tuple[int, int]) -> np.ndarray:
    """Seconds from the first frame [N] (keyframe times)."""
    pts_array = np.asarray(pts, dtype=np.float64)
    return (pts_array - pts_array[0]) * time_base[0] / time_base[1]


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class LatentsOptions:
    stage: str
    edit: dict
    """`EditRequest.describe()` (directions by content)."""
    domain: str
    smoothing: SmoothOptions
    """The inversion's smoothing, applied again to the edited W+."""


@dataclass(frozen=True)
class RenderStageOptions:
    stage: str
    ws: str
    """The smoothed W+ rendered, relative to the work dir."""
    fov: dict | None
    """{'expansion': [left, right, top, bottom], 'band': px} or None."""
    layouts: dict[str, VideoLayout]
    """{output name: compose layout}."""
    compose: ComposeConfig
    segment_frames: int
    keep_frames: bool = field(default=False, metadata=OMIT_DEFAULT)


@dataclass(frozen=True)
class EncodeStageOptions:
    render: str
    """The render stage whose segments are joined."""
    outputs: dict[str, tuple[str, VideoLayout]]
    """{name: (absolute path, layout)}."""
    compose: ComposeConfig
    """The render stage's (its segments' encoder settings)."""
    segment_frames: int


def stage_latents(workdir: Workdir, inputs: dict, options: LatentsOptions) -> dict:
    """Edited W+ before smoothing (ws.npy), smoothed as the inversion was (ws_smooth.npy), and
    the per-frame strengths (strengths.json).

    inputs: paths (EditLayout), inversion, times (s [N]), styles (StyleSpace edits) and
    edits() -> (W edits, crossovers), made on first use (they may run the photo encoder).
    """
    import torch

    from ganvid.edit.directions import apply_w_edits
    from ganvid.edit.image2stylegan import apply_crossovers
    from ganvid.pipeline.smoothing import smooth_ws_file

    paths: EditLayout = inputs["paths"]
    inversion = inputs["inversion"]
    times, styles = inputs["times"], inputs["styles"]
    edits, crossovers = inputs["edits"]()
    strengths = {
        "times_s": times.tolist(),
        "directions": [
            {"name": e.direction.name, "strength": e.strength.at(times).tolist()} for e in edits
        ],
        "styles": [
            {"layer": s.layer, "channel": s.channel, "strength": s.strength.at(times).tolist()}
            for s in styles
        ],
        "crossovers": [
            {"name": c.name, "layers": list(c.layers), "strength": c.strength.at(times).tolist()}
            for c in crossovers
        ],
    }
    if edits or crossovers:
        raw = inversion.ws_raw
        with atomic_path(paths.latents_ws) as tmp:
            edited = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=raw.shape)
            for lo in range(0, len(raw), 256):
                hi = min(len(raw), lo + 256)
                rows = torch.tensor(np.asarray(raw[lo:hi], dtype=np.float32))
                mixed = apply_crossovers(rows, crossovers, times[lo:hi])
                edited[lo:hi] = apply_w_edits(mixed, edits, times[lo:hi]).numpy()
            edited.flush()
            del edited
        smooth_ws_file(
            paths.latents_ws,
            paths.latents_ws_smooth,
            inversion.shot_ids,
            fine_layer_mean=options.smoothing.fine_layer_mean,
            smooth=options.smoothing.smooth,
        )
    atomic_write_json(paths.strengths, strengths)
    return {"frames": len(times), "directions": len(edits), "styles": len(styles)}


def stage_render(workdir: Workdir, inputs: dict, options: RenderStageOptions) -> dict:
    """Render every frame (edited, maybe expanded), compose the outputs and encode them into
    <stage>/segments/<output>/*.mp4 (`ganvid.pipeline.segments`); --keep-frames also keeps
    <stage>/frames/*.png.

    inputs: tuned (`ganvid.pipeline.pti.TunedWeights`: the generator with the PTI weights of
    each frame's shot), render (RenderJob), device, batch, label, clip.
    """
    from ganvid.pipeline.segments import encode_segments

    render = inputs["render"]
    info = encode_segments(
        workdir.stage_dir(options.stage),
        ComposeSources(inputs["clip"], workdir.root, None),
        lambda frames: inputs["tuned"].render_frames(
            render, inputs["device"], inputs["batch"], frames
        ),
        options.layouts,
        options.compose,
        options.segment_frames,
        options.keep_frames,
        label=inputs["label"],
    )
    return {"frames": len(render), "size": info["size"]}


def stage_encode(workdir: Workdir, inputs: dict, options: EncodeStageOptions) -> dict:
    """Join the render's segments into the output videos (stream copy, the source's pts and
    sound)."""
    from ganvid.pipeline.segments import join_segments

    outputs = {name: Path(path) for name, (path, _) in options.outputs.items()}
    written = join_segments(
        workdir.layout.stage(options.render),
        inputs["clip"],
        outputs,
        options.compose,
        options.segment_frames,
    )
    return {"outputs": {k: str(v) for k, v in written.items()}}


# ----------------------------------------------------------------------------- the job


class EditJob(Job):
    """Resolve the work dir, inversion, clip and edit (failing early, before any rendering);
    `run_edit()` / `run_fov()` / `run_preview()` do the work."""

    def __init__(self, options: RenderOptions) -> None:
        super().__init__(options.device, options.batch, options.fresh)
        self.options = options
        self.workdir_path = find_workdir(options.clip, options.workdir)
        self.inversion = open_inversion(self.workdir_path, options.clip)
        self.clip = source_clip(options.clip, self.inversion)
        self.request = options.request
        self.domain = options.domain or domain_of_generator(self.inversion.generator_path)
        self.direction_files = self.request.files(self.domain)  # missing weights fail here
        pasting = getattr(options, "paste_back", False)
        self.paste = paste_config(getattr(options, "mask", "hull") if pasting else "hull")
        self.tag = self.request.tag() if not self.request.is_empty else None
        self.layout = Layout(self.workdir_path)

    # -- lazily loaded -----------------------------------------------------------------------

    @cached_property
    def tuned(self):
        """The PTI-tuned generator of the inversion (per shot: its weights follow the shot of
        the frames it renders), `ganvid.pipeline.pti.TunedWeights`."""
        return self.inversion.tuned(self.device)

    @property
    def generator(self):
        return self.tuned.generator

    @cached_property
    def w_edits(self) -> list:
        generator = self.generator
        return self.request.w_edits(generator.num_ws, generator.w_dim, self.domain)

    @cached_property
    def photo_codes(self) -> dict:
        """Codes of the --style-from / --expression images ({'style_from' | 'neutral' |
        'expressive': Code}), made by the inversion's encoder for its (untuned) generator;
        stored invert-image codes must belong to that generator."""
        from ganvid.pipeline.photo import CoderOptions, PhotoCoder, generator_source

        roles = {k: v for k, v in self.direction_files.items() if not k.startswith("direction")}
        if not roles:
            return {}
        encoder = Path((read_json(self.layout.inversion_json) or {})["encoder"])
        options = CoderOptions(encoder=str(encoder), generator=str(self.inversion.generator_path))
        coder = PhotoCoder(options, self.device)
        accepted = {
            generator_source(encoder, self.inversion.generator_path),
            generator_source(encoder, None),
        }
        codes = coder.codes(list(roles.values()), accepted)
        return dict(zip(roles, codes, strict=True))

    @cached_property
    def crossovers(self) -> list:
        from ganvid.edit.image2stylegan import Crossover

        if self.request.style_from is None:
            return []
        code = self.photo_codes["style_from"]
        layers = self.request.crossover_layers(self.generator.num_ws)
        name = f"style-{Path(self.request.style_from).stem}"
        return [Crossover(name, code.ws, layers, self.request.style_strength)]

    @cached_property
    def expression_edits(self) -> list:
        from ganvid.edit.directions import Direction, WEdit, parse_layers
        from ganvid.edit.image2stylegan import expression_direction

        if self.request.expression is None:
            return []
        codes = self.photo_codes
        vector = expression_direction(codes["neutral"].ws, codes["expressive"].ws)
        layers = parse_layers(self.request.layers, self.generator.num_ws)
        direction = Direction("expression", vector, layers)
        return [WEdit(direction, self.request.expression_strength)]

    @cached_property
    def times_s(self) -> np.ndarray:
        video = read_json(self.layout.decode_json)
        return frame_times(video["pts"], tuple(video["time_base"]))

    # -- rendering ---------------------------------------------------------------------------

    @property
    def paths(self) -> EditLayout:
        """edits/<tag>/: the stages and files of this edit."""
        return self.layout.edit(self.tag)

    def ws_path(self) -> Path:
        """The smoothed W+ to render: the edited one, or the inversion's."""
        if self.request.moves_w:
            return self.paths.latents_ws_smooth
        return self.layout.smooth_ws

    def check_styles(self) -> None:
        """Unknown StyleSpace layers or channels fail before rendering (InputError)."""
        import torch

        from ganvid.edit.directions import apply_style_edits

        if self.request.styles:
            ws = torch.zeros(1, self.generator.num_ws, self.generator.w_dim, device=self.device)
            with torch.no_grad():
                styles = self.generator.synthesis.styles(ws)
            apply_style_edits(styles, list(self.request.styles), np.zeros(1))

    def synthesizer(self, expansion: Expansion | None, band: int | None) -> Callable | None:
        """The job's own batch synthesis (StyleSpace edits and/or FoV), or None (plain)."""
        from ganvid.edit.directions import apply_style_edits
        from ganvid.pipeline.fov import synthesize_fov

        style_edits, times = list(self.request.styles), self.times_s
        if not style_edits and expansion is None:
            return None

        def synthesize(generator, ws, transforms, indices):
            styles = None
            if style_edits:
                styles = apply_style_edits(
                    generator.synthesis.styles(ws), style_edits, times[indices]
                )
            if expansion is not None:
                return synthesize_fov(generator, ws, transforms, expansion, band, styles=styles)
            return generator.synthesis(ws, transform=transforms, styles=styles, force_fp32=True)

        return synthesize

    def render_job(self, expansion: Expansion | None = None, band: int | None = None):
        from ganvid.pipeline.render import RenderJob

        ws = np.load(self.ws_path(), mmap_mode="r")
        return RenderJob(
            ws, self.inversion.transforms, synthesize=self.synthesizer(expansion, band)
        )

    # -- stages ------------------------------------------------------------------------------

    def _latents(self) -> list[str]:
        """Run the latents stage; the upstream list a render stage depends on."""
        if self.request.is_empty:
            return [names.SMOOTH, names.PTI]
        self.check_styles()
        _ = self.w_edits  # a bad direction file fails here, before any work
        if self.request.style_from is not None:
            self.request.crossover_layers(self.generator.num_ws)  # --layers out of range
        paths = self.paths
        self.stage(
            paths.latents,
            stage_latents,
            inputs={
                "paths": paths,
                "inversion": self.inversion,
                "times": self.times_s,
                "styles": list(self.request.styles),
                "edits": lambda: (self.w_edits + self.expression_edits, self.crossovers),
            },
            options=LatentsOptions(
                stage=paths.latents,
                edit=self.request.describe(),
                domain=self.domain,
                smoothing=SmoothOptions(self.inversion.smooth, self.inversion.fine_layer_mean),
            ),
            files=self.direction_files,
            upstream=[names.INVERT, names.GEOMETRY, names.DECODE],
            outputs=[paths.strengths, *([paths.latents_ws_smooth] if self.request.moves_w else [])],
        )
        return [paths.latents, names.SMOOTH, names.PTI]

    def _render_and_encode(
        self,
        paths: EditLayout,
        upstream: list[str],
        outputs: dict[str, tuple[Path, VideoLayout]],
        fov: dict | None = None,
    ) -> None:
        from ganvid.pipeline.segments import last_segments

        o = self.options
        extra = () if fov is None else (fov["expansion"], fov["band"])
        compose = {
            "compose": ComposeConfig(
                paste=self.paste,
                crf=o.crf,
                preset=o.preset,
                crop_offset=(0, 0) if fov is None else tuple(fov["offset"]),
                exact_size=o.exact_size,
            ),
            "segment_frames": o.segment_frames,
        }
        frames = self.inversion.frames
        segments = last_segments(frames, o.segment_frames, list(outputs))
        kept = [FrameDir(paths.render_frames).file(frames - 1)] if o.keep_frames else []
        self.stage(
            paths.render,
            stage_render,
            inputs={
                "tuned": self.tuned,
                "render": self.render_job(*extra),
                "device": self.device,
                "batch": o.batch,
                "label": "render (fov)" if fov else "render (edit)",
                "clip": self.clip,
            },
            options=RenderStageOptions(
                stage=paths.render,
                ws=self.layout.relative(self.ws_path()),
                fov=None if fov is None else fov["describe"],
                layouts={name: layout for name, (_, layout) in outputs.items()},
                keep_frames=o.keep_frames,
                **compose,
            ),
            files={"generator": self.inversion.generator_path, "clip": self.clip},
            upstream=[*upstream, names.GEOMETRY, names.DECODE],
            outputs=[self.layout.stage(paths.render) / p for p in segments] + kept,
        )
        self.stage(
            paths.encode,
            stage_encode,
            inputs={"clip": self.clip},
            options=EncodeStageOptions(
                render=paths.render,
                outputs={n: (str(p.resolve()), layout) for n, (p, layout) in outputs.items()},
                **compose,
            ),
            files={"clip": self.clip},
            upstream=[paths.render, names.DECODE],
            outputs=[p.resolve() for p, _ in outputs.values()],
        )

    def _summary(self, outputs: dict) -> EditSummary:
        records = self.records
        size = tuple(records[-2].info.get("size", (0, 0))) if len(records) > 1 else (0, 0)
        return EditSummary(
            self.workdir_path,
            self.inversion.frames,
            self.tag or "inverted",
            records,
            {n: p for n, (p, _) in outputs.items()},
            (int(size[0]), int(size[1])),
        )

    # -- entry points ------------------------------------------------------------------------

    def default_output(self, suffix: str | None = None) -> Path:
        """`<clip>_<tag>[_<suffix>].mp4` beside the clip (in the work dir if that is read-only)."""
        name = "_".join(part for part in (self.clip.stem, self.tag, suffix) if part)
        return output_folder(self.clip, self.workdir_path) / f"{name}.mp4"

    def run_edit(self) -> EditSummary:
        """`ganvid edit`: latents -> render -> encode."""
        o = self.options
        if self.request.is_empty:
            raise InputError(NOTHING_TO_EDIT)
        main = absolute(o.output) if o.output is not None else self.default_output()
        layouts = main_layouts(getattr(o, "paste_back", True), o.side_by_side)
        outputs = {
            n: (main if n == "video" else sibling(main, "sbs"), lay) for n, lay in layouts.items()
        }
        with self.open(clip=self.clip):
            upstream = self._latents()
            self._render_and_encode(self.paths, upstream, outputs)
        return self._summary(outputs)

    def run_fov(self, expansion: Expansion, band: int | None) -> EditSummary:
        """`ganvid expand-fov`: (latents) -> expanded render -> encode <clip>[_<tag>]_fov.mp4."""
        from ganvid.pipeline.fov import default_band, plan_views

        o = self.options
        resolution = self.generator.img_resolution
        band = default_band(resolution) if band is None else band
        plan_views(expansion, resolution, band)  # too-large amounts fail before any work
        e = expansion
        amounts = f"l{e.left}r{e.right}t{e.top}b{e.bottom}w{band}"
        paths = self.layout.fov(f"{self.tag or 'inverted'}_{amounts}")
        main = absolute(o.output) if o.output is not None else self.default_output("fov")
        layouts = {"video": "render", **({"side_by_side": "sbs_crop"} if o.side_by_side else {})}
        outputs = {
            n: (main if n == "video" else sibling(main, "sbs"), lay) for n, lay in layouts.items()
        }
        fov = {
            "expansion": expansion,
            "band": band,
            "describe": {"expansion": [e.left, e.right, e.top, e.bottom], "band": band},
            "offset": [e.top, e.left],
        }
        with self.open(clip=self.clip):
            upstream = self._latents()
            self._render_and_encode(paths, upstream, outputs, fov)
        return self._summary(outputs)

    def run_preview(self, count: int) -> Path:
        """Render `count` evenly spaced frames and save a contact sheet PNG (input crop | edited
        per tile) beside the output; the full render is not started."""
        o = self.options
        main = absolute(o.output) if o.output is not None else self.default_output()
        path = sibling(main, "preview").with_suffix(".png")
        with self.open(clip=self.clip):
            self._latents()
        frames = self.inversion.frames
        indices = sorted(set(np.linspace(0, frames - 1, min(count, frames)).round().astype(int)))
        crops = self.inversion.crops(self.clip)
        tiles = [
            np.concatenate([_fit(crops.read(i), image.shape[:2]), image], axis=1)
            for i, image in self.tuned.render_frames(
                self.render_job(), self.device, o.batch, indices
            )
        ]
        write_image(path, contact_sheet(tiles), ".png")
        return path


def _fit(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    if image.shape[:2] == tuple(shape):
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def contact_sheet(tiles: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Equal-size uint8 tiles [h,w,3] in a near-square grid with `gap` px of white between."""
    columns = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / columns))
    height, width = tiles[0].shape[:2]
    sheet = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 255, np.uint8
    )
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = r * (height + gap), c * (width + gap)
        sheet[y : y + height, x : x + width] = tile
    return sheet


# ----------------------------------------------------------------------------- functions


def edit_video(**options: Any) -> EditSummary | Path:
    """`ganvid edit` as a function: fields of EditOptions; returns the summary, or the preview
    PNG's path when `preview` > 0."""
    edit = EditOptions(**options)
    job = EditJob(edit)
    if job.request.is_empty:
        raise InputError(NOTHING_TO_EDIT)
    if edit.preview > 0:
        return job.run_preview(edit.preview)
    return job.run_edit()


def expand_fov(**options: Any) -> EditSummary:
    """`ganvid expand-fov` as a function: fields of FovOptions."""
    fov = FovOptions(**options)
    return EditJob(fov).run_fov(fov.expansion, fov.band)
