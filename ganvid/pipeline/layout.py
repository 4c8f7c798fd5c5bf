"""The work directory's layout: the name of every stage and the path of every file in it.

A stage `x` keeps its manifest in `<root>/x.json` and its files in `<root>/x/` (`run_stage`);
stage names are cache keys, so they and the paths below are what existing work dirs hold and
must not change. Every job reads and writes work-dir paths through `Layout(root)`:

    <root>/inversion.json, hashes.json, .lock     the finished inversion, file hashes, the lock
    detections/<clip>-<detector>/*.npz             raw detections, shared by every job on a clip
    decode/video.json                              frame count, pts, size (every video job)
    geometry/{geometry.json,geometry.npz}         `ganvid invert` (crops are cut on demand)
    invert/{ws/,ws.npy}  smooth/{ws,params,transforms}.npy  pti/{generator.pt,checkpoint.pt,
    targets/,log.json} (--pti-per-shot: pti/shots/<shot>.pt instead of generator.pt)
    render/segments/<output>/  render/frames/ (--keep-frames)
    encode/metrics.json
    edits/<tag>/{latents,render,encode}            `ganvid edit` (`Layout.edit`)
    fov/<tag>_<amounts>/{render,encode}            `ganvid expand-fov` (`Layout.fov`)
    sgx_geometry/  sgx_windows/  <tag>_wplus/  <tag>_{render,encode}     StyleGANEX video
    smgan_{geometry,encode,smooth,masks}/  <tag>_{render,encode}          StyleMapGAN video
      (their renders too are segments, <tag>_render/segments/video/, and frames/ only with
      --keep-frames; aligned faces are cut from the clip on demand)
    align/  faces/                                 `ganvid align`, `ganvid faces`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# stage names (cache keys: `<root>/<name>.json`)
DECODE = "decode"
GEOMETRY = "geometry"
INVERT = "invert"
SMOOTH = "smooth"
PTI = "pti"
RENDER = "render"
ENCODE = "encode"
INVERT_STAGES = (DECODE, GEOMETRY, INVERT, SMOOTH, PTI, RENDER, ENCODE)
"""`ganvid invert`'s stages, in order."""
SGX_GEOMETRY = "sgx_geometry"
SGX_WINDOWS = "sgx_windows"
SMGAN_GEOMETRY = "smgan_geometry"
SMGAN_ENCODE = "smgan_encode"
SMGAN_SMOOTH = "smgan_smooth"
SMGAN_MASKS = "smgan_masks"
ALIGN = "align"
FACES = "faces"

FRAMES = "frames"
"""Sub-folder of per-frame files in a render stage (and of per-frame arrays in some others)."""


@dataclass(frozen=True)
class Tagged:
    """The stages a task tag names: `<tag>_wplus`, `<tag>_render`, `<tag>_encode` (StyleGANEX
    and StyleMapGAN video), so several styles and edits share one work dir."""

    root: Path
    tag: str

    @property
    def wplus(self) -> str:
        return f"{self.tag}_wplus"

    @property
    def render(self) -> str:
        return f"{self.tag}_render"

    @property
    def encode(self) -> str:
        return f"{self.tag}_encode"

    @property
    def wplus_frames(self) -> Path:
        """Encoder w+ of the sampled frames, one .npy each."""
        return self.root / self.wplus / FRAMES

    @property
    def wplus_npy(self) -> Path:
        """The w+ rendered [N,18,512]."""
        return self.root / self.wplus / "wplus.npy"

    @property
    def wplus_raw_npy(self) -> Path:
        """w+ mode "smooth": every frame's encoder w+ before the temporal filter [N,18,512]."""
        return self.root / self.wplus / "raw.npy"

    @property
    def render_frames(self) -> Path:
        return self.root / self.render / FRAMES


@dataclass(frozen=True)
class EditLayout:
    """`edits/<tag>/` (`ganvid edit`) or `fov/<tag>_<amounts>/` (`ganvid expand-fov`): the
    stages `<prefix>/latents`, `<prefix>/render`, `<prefix>/encode` and their files."""

    root: Path
    prefix: str

    @property
    def latents(self) -> str:
        return f"{self.prefix}/latents"

    @property
    def render(self) -> str:
        return f"{self.prefix}/render"

    @property
    def encode(self) -> str:
        return f"{self.prefix}/encode"

    @property
    def latents_ws(self) -> Path:
        """Edited W+ before smoothing."""
        return self.root / self.latents / "ws.npy"

    @property
    def latents_ws_smooth(self) -> Path:
        return self.root / self.latents / "ws_smooth.npy"

    @property
    def strengths(self) -> Path:
        return self.root / self.latents / "strengths.json"

    @property
    def render_frames(self) -> Path:
        return self.root / self.render / FRAMES


@dataclass(frozen=True)
class Layout:
    """Every path of the work dir at `root` (absolute or not, as given)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- any stage ---------------------------------------------------------------------------

    def stage(self, name: str) -> Path:
        """The folder of stage `name`."""
        return self.root / name

    def manifest(self, name: str) -> Path:
        """The manifest of stage `name` (its record and cache key)."""
        return self.root / f"{name}.json"

    def frames(self, stage: str) -> Path:
        """The per-frame files of a render stage."""
        return self.root / stage / FRAMES

    def relative(self, path: Path) -> str:
        """`path` relative to the root, as stored in option records (posix)."""
        return Path(path).relative_to(self.root).as_posix()

    # -- the work dir ------------------------------------------------------------------------

    @property
    def inversion_json(self) -> Path:
        """What `ganvid invert` finished (read by `ganvid edit`, FoV, paste-back)."""
        return self.root / "inversion.json"

    @property
    def hashes(self) -> Path:
        """The content-hash cache of input files (`workdir.FileHasher`)."""
        return self.root / "hashes.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def detections(self, clip_digest: str, detector_digest: str) -> Path:
        """Raw detections of one clip (by content) and detector (by options)."""
        return self.root / "detections" / f"{clip_digest[:16]}-{detector_digest[:12]}"

    # -- ganvid invert -----------------------------------------------------------------------

    @property
    def decode_json(self) -> Path:
        return self.root / DECODE / "video.json"

    @property
    def geometry_json(self) -> Path:
        return self.root / GEOMETRY / "geometry.json"

    @property
    def geometry_npz(self) -> Path:
        return self.root / GEOMETRY / "geometry.npz"

    @property
    def invert_frames(self) -> Path:
        return self.root / INVERT / "ws"

    @property
    def invert_ws(self) -> Path:
        return self.root / INVERT / "ws.npy"

    @property
    def smooth_ws(self) -> Path:
        return self.root / SMOOTH / "ws.npy"

    @property
    def smooth_params(self) -> Path:
        return self.root / SMOOTH / "params.npy"

    @property
    def smooth_transforms(self) -> Path:
        return self.root / SMOOTH / "transforms.npy"

    @property
    def pti_generator(self) -> Path:
        return self.root / PTI / "generator.pt"

    @property
    def pti_checkpoint(self) -> Path:
        return self.root / PTI / "checkpoint.pt"

    @property
    def pti_log(self) -> Path:
        return self.root / PTI / "log.json"

    def pti_shot(self, shot: int) -> Path:
        """`--pti-per-shot`: the tuned synthesis weights of shot `shot`."""
        return self.root / PTI / "shots" / f"{int(shot):04d}.pt"

    def pti_shot_checkpoint(self, shot: int) -> Path:
        """`--pti-per-shot`: shot `shot`'s resumable PTI checkpoint (deleted once it is tuned)."""
        return self.root / PTI / "shots" / f"{int(shot):04d}_checkpoint.pt"

    @property
    def pti_targets(self) -> Path:
        """PTI's target crops, cut once from the clip while it tunes (deleted after)."""
        return self.root / PTI / "targets"

    def segments(self, stage: str) -> Path:
        """A render stage's output segments, `<output>/<k>.mp4` (`pipeline.segments`)."""
        return self.root / stage / "segments"

    def segment_metrics(self, stage: str, k: int) -> Path:
        """LPIPS / PSNR of segment k's frames (`ganvid invert`'s render stage)."""
        return self.segments(stage) / "metrics" / f"{k:06d}.json"

    @property
    def render_frames(self) -> Path:
        return self.frames(RENDER)

    @property
    def metrics(self) -> Path:
        return self.root / ENCODE / "metrics.json"

    def edit(self, tag: str) -> EditLayout:
        return EditLayout(self.root, f"edits/{tag}")

    def fov(self, name: str) -> EditLayout:
        return EditLayout(self.root, f"fov/{name}")

    # -- StyleGANEX and StyleMapGAN video ----------------------------------------------------

    def tagged(self, tag: str) -> Tagged:
        return Tagged(self.root, tag)

    @property
    def sgx_geometry_json(self) -> Path:
        return self.root / SGX_GEOMETRY / "geometry.json"

    @property
    def sgx_track(self) -> Path:
        """Landmarks, shot ids, detected, present, frame size as arrays."""
        return self.root / SGX_GEOMETRY / "track.npz"

    @property
    def sgx_windows(self) -> Path:
        return self.root / SGX_WINDOWS / "windows.json"

    @property
    def smgan_geometry_json(self) -> Path:
        return self.root / SMGAN_GEOMETRY / "geometry.json"

    @property
    def smgan_geometry_npz(self) -> Path:
        """The exact quads and size of the aligned faces (`crops.aligned_arrays`)."""
        return self.root / SMGAN_GEOMETRY / "geometry.npz"

    @property
    def smgan_encode_frames(self) -> Path:
        return self.root / SMGAN_ENCODE / FRAMES

    @property
    def smgan_stylemaps(self) -> Path:
        """Encoder stylemaps [N, C, S, S]."""
        return self.root / SMGAN_ENCODE / "stylemaps.npy"

    @property
    def smgan_smooth_stylemaps(self) -> Path:
        return self.root / SMGAN_SMOOTH / "stylemaps.npy"

    def smgan_masks(self, part: str) -> Path:
        return self.root / SMGAN_MASKS / part

    # -- ganvid align, ganvid faces ----------------------------------------------------------

    @property
    def align_geometry(self) -> Path:
        return self.root / ALIGN / "geometry.json"

    @property
    def align_aligned(self) -> Path:
        return self.root / ALIGN / "aligned"

    @property
    def align_unaligned(self) -> Path:
        return self.root / ALIGN / "unaligned"

    @property
    def align_videos(self) -> dict[str, Path]:
        """{'aligned' | 'unaligned' | 'preview': the video}."""
        return {name: self.root / ALIGN / f"{name}.mp4" for name in ALIGN_VIDEOS}

    @property
    def faces_json(self) -> Path:
        return self.root / FACES / "faces.json"

    @property
    def faces_png(self) -> Path:
        """The contact sheet: one thumbnail per face."""
        return self.root / FACES / "faces.png"


ALIGN_VIDEOS = ("aligned", "unaligned", "preview")
