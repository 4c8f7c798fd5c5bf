"""StyleMapGAN on still images: the official operations, and local editing of a photo.

Operations (`ganvid.edit.stylemap` holds the latent maths; here the networks run):

    reconstruct        image -> encoder -> stylemap -> generator
    generate           z ~ N(0, I) [N, 64] -> mapping (truncated towards the mean) -> generator
    interpolate        stylemap_a * w + stylemap_b * (1 - w)
    style mixing       coarse: the S x S codes of a with the rest of b; fine: the opposite
    local edit         the CelebA-HQ recipe: the union of a face part in the source and in the
                       reference, every layer code taken from the reference where the
                       max-pooled union touches a cell (strength < 1 moves part way)
    demo transition    the web demo's average-pooled masks with shift, frames t / (T - 1)
    transplant         boxes of stylemap cells copied from the reference
    semantic edit      stylemap + d * direction (an .npy of C*S*S values), optionally in a box

Images here are uint8 RGB [H, W, 3] at the model's size (FFHQ-aligned faces for the face
models), converted with x / 127.5 - 1 as the official loaders do ((u8 / 255 - 0.5) / 0.5).
`edit_photo` adds the front and back of a real photo: the largest face is FFHQ-aligned at the
model's size (as the training images were), edited, and pasted back into the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ganvid.edit import stylemap as ops
from ganvid.errors import InputError, NoFaceError

if TYPE_CHECKING:
    from ganvid.nn.face_parsing import FaceParser
    from ganvid.nn.stylemapgan_checkpoints import StyleMapGAN

DEFAULT_CHECKPOINT = "stylemapgan-celeba-hq-256"
#: train_args datasets whose official local editing blends the stylemap itself ('w'); every
#: other one blends each layer code (the CelebA-HQ 'w_plus' recipe).
STYLEMAP_BLEND_DATASETS = ("afhq",)
PART_HELP = ", ".join(ops.PARTS)


# ----------------------------------------------------------------------------- networks


def load_model(checkpoint: str | Path, device: torch.device) -> StyleMapGAN:
    """The EMA generator and encoder of a weights name or file (see `load_stylemapgan`)."""
    from ganvid.nn.stylemapgan_checkpoints import load_stylemapgan
    from ganvid.weights import resolve

    return load_stylemapgan(resolve(checkpoint), device=device)


def to_input(images: np.ndarray | list[np.ndarray], size: int, device) -> torch.Tensor:
    """uint8 RGB [B, H, W, 3] (or a list) -> float [B, 3, size, size] in [-1, 1]. Images of
    another size are resized bilinearly (as the official data preparation does)."""
    from ganvid.pipeline.render import to_float

    frames = [np.asarray(image) for image in images]
    for k, image in enumerate(frames):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"image {k} is not uint8 RGB [H, W, 3]: {image.dtype} {image.shape}")
        if image.shape[:2] != (size, size):
            from PIL import Image

            pil = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
            frames[k] = np.asarray(pil)
    return to_float(frames, device)


@torch.no_grad()
def encode(model: StyleMapGAN, images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """uint8 faces -> stylemaps [B, C, S, S] (one encoder pass)."""
    return model.encoder(to_input(images, model.config.size, model.device))


@torch.no_grad()
def render(model: StyleMapGAN, latent: torch.Tensor | list[torch.Tensor]) -> np.ndarray:
    """A stylemap [B, C, S, S] or a list of layer codes -> uint8 images [B, size, size, 3]."""
    from ganvid.pipeline.render import to_uint8

    if isinstance(latent, torch.Tensor):
        images = model.generator(latent)
    else:
        images = model.generator.synthesis(latent)
    return to_uint8(images.clamp(-1.0, 1.0))


@torch.no_grad()
def layer_codes(model: StyleMapGAN, stylemap: torch.Tensor) -> list[torch.Tensor]:
    return model.generator.layer_codes(stylemap)


# ----------------------------------------------------------------------------- operations


def reconstruct(model: StyleMapGAN, images: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Encoder then generator: uint8 [B, size, size, 3]."""
    return render(model, encode(model, images))


@torch.no_grad()
def generate(model: StyleMapGAN, count: int, seed: int = 0, psi: float = 0.7) -> np.ndarray:
    """`count` random faces, the mapping output truncated towards its mean by psi (the mean of
    5000 z, as generate.py does; psi 1 = no truncation)."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(count, model.config.latent_channels, generator=rng).to(model.device)
    stylemap = model.generator.mapping(z)
    if psi != 1.0:
        mean = model.generator.mean_stylemap(generator=rng)
        stylemap = ops.truncate(stylemap, mean, psi)
    return render(model, stylemap)


@torch.no_grad()
def mix(
    model: StyleMapGAN, first: np.ndarray, second: np.ndarray, mode: str, weights: list[float]
) -> list[np.ndarray]:
    """Two faces -> uint8 images: mode 'interpolate' gives one image per weight (w of the
    first), 'coarse' / 'fine' one style-mixed image (see `ganvid.edit.stylemap.style_mix`)."""
    a, b = encode(model, [first, second]).split(1)
    if mode == "interpolate":
        return [render(model, ops.interpolate(a, b, w))[0] for w in weights]
    codes = ops.style_mix(layer_codes(model, a), layer_codes(model, b), mode)
    return [render(model, codes)[0]]


def part_masks(parser: FaceParser, faces: np.ndarray, part: str) -> torch.Tensor:
    """Binary masks [B, 1, H, W] (float 0/1) of a face part (`ganvid.edit.stylemap.PARTS`) in
    uint8 faces [B, H, W, 3]: pixels whose most likely face-parsing class belongs to it."""
    from ganvid.nn.face_parsing import CLASSES

    if part not in ops.PARTS:
        raise InputError(f"unknown face part {part!r}: use one of {PART_HELP}")
    labels = parser.probabilities(faces).argmax(dim=1, keepdim=True).cpu()
    wanted = torch.tensor([CLASSES.index(name) for name in ops.PARTS[part]])
    return torch.isin(labels, wanted).float()


def painted_mask(path: Path, size: int) -> torch.Tensor:
    """A painted mask image (white = region; any grey level > 127, alpha ignored) in the
    aligned face's frame -> binary [1, 1, size, size] (resized with nearest neighbours)."""
    import cv2

    if not Path(path).is_file():
        raise InputError(f"{path}: no such mask image")
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise InputError(f"{path}: not an image OpenCV can read (PNG, JPEG, ...)")
    if gray.shape != (size, size):
        gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_NEAREST)
    mask = torch.from_numpy((gray > 127).astype(np.float32))[None, None]
    if not bool(mask.any()):
        raise InputError(f"{path}: the mask is empty (paint the region white)")
    return mask


@torch.no_grad()
def local_edit(
    model: StyleMapGAN,
    source: torch.Tensor,
    reference: torch.Tensor,
    mask: torch.Tensor,
    strength: float | torch.Tensor | None = None,
) -> np.ndarray:
    """The CelebA-HQ local edit of stylemaps source [B, ...] and reference ([B, ...] or [1,
    ...]) under a union mask [B or 1, 1, size, size] (`ganvid.edit.stylemap.union_mask`) ->
    uint8 [B, size, size, 3]. strength None: the official hard select; a number or [B]: part
    way (0 = the source's reconstruction, 1 = the full transplant). An AFHQ model blends its
    stylemap instead (generate.py's 'w' variant for that dataset)."""
    mask = mask.to(source.device).expand(source.shape[0], -1, -1, -1)
    if model.dataset in STYLEMAP_BLEND_DATASETS:
        return render(
            model, ops.blend_stylemap(source, reference.expand_as(source), mask, strength)
        )
    src_codes = layer_codes(model, source)
    ref_codes = [
        c.expand_as(s) for c, s in zip(layer_codes(model, reference), src_codes, strict=True)
    ]
    return render(model, ops.blend_layer_codes(src_codes, ref_codes, mask, strength))


@torch.no_grad()
def demo_edit(
    model: StyleMapGAN,
    original: np.ndarray,
    references: list[np.ndarray],
    masks: torch.Tensor,
    shifts_px: list[tuple[int, int]],
    steps: int = 16,
) -> np.ndarray:
    """The web demo: `steps` images [T, size, size, 3] from the original's reconstruction to
    the full paste of each reference's masked region (binary masks [R, 1, size, size], shifted
    by (dx, dy) px); see `ganvid.edit.stylemap.demo_transition`."""
    stylemaps = encode(model, [original, *references])
    codes = [layer_codes(model, stylemap[None]) for stylemap in stylemaps]
    return render(model, ops.demo_transition(codes[0], codes[1:], masks, shifts_px, steps))


@torch.no_grad()
def transplant(
    model: StyleMapGAN, source: np.ndarray, reference: np.ndarray, boxes: list[ops.Box]
) -> np.ndarray:
    """Blocks of the reference's stylemap cells copied into the source's, rendered: uint8
    [size, size, 3]."""
    src, ref = encode(model, [source, reference]).split(1)
    return render(model, ops.transplant_boxes(src, ref, boxes))[0]


def load_direction(path: Path, model: StyleMapGAN) -> torch.Tensor:
    """A semantic direction .npy (C*S*S values, e.g. [1, 4096] at 8x8x64) -> float tensor."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such direction file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(f"{path}: not a .npy array ({error})") from None
    expected = int(np.prod(model.config.stylemap_shape()))
    if array.size != expected or not np.all(np.isfinite(array)):
        raise InputError(
            f"{path}: a direction for this model has {expected} finite values, not {array.size}"
        )
    return torch.tensor(np.asarray(array, dtype=np.float32).reshape(-1))


@torch.no_grad()
def semantic_manipulation(
    model: StyleMapGAN,
    image: np.ndarray,
    direction: torch.Tensor,
    distances: list[float],
    box: tuple[int, int, int, int] | None = None,
) -> list[np.ndarray]:
    """One image per distance d: the face's stylemap + d * direction (zero outside the box of
    cells (y, x, h, w) when given)."""
    stylemap = encode(model, [image])
    return [render(model, ops.semantic_edit(stylemap, direction, d, box))[0] for d in distances]


# ----------------------------------------------------------------------------- photos


@dataclass(frozen=True)
class Face:
    """A photo's face as the model sees it: the aligned crop at the model's size, and (when it
    was aligned here) the quad it was cut from and its landmarks, for pasting back."""

    photo: np.ndarray
    aligned: np.ndarray
    quad: np.ndarray | None = None
    landmarks: np.ndarray | None = None


def find_face(photo: np.ndarray, size: int, align: bool, source: Path) -> Face:
    """align: the largest face, FFHQ-aligned at `size` (dlib landmarks); else the photo is an
    aligned crop already and is only resized."""
    if not align:
        return Face(photo, np.asarray(to_input_uint8(photo, size)))
    from ganvid.face.align import CropConfig, align_face
    from ganvid.face.landmarks import DetectorConfig, make_detector

    faces = make_detector(DetectorConfig()).detect(photo)
    if not faces:
        raise NoFaceError(
            f"{source}: no face found; if it is an aligned face crop already, pass --no-align"
        )
    face = max(faces, key=lambda f: f.area)
    aligned = align_face(photo, face.points, "ffhq", CropConfig(size=size))
    return Face(photo, aligned.image, aligned.quad, np.asarray(face.points, dtype=np.float64))


def to_input_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """An aligned crop resized to size x size (bilinear), uint8."""
    if image.shape[:2] == (size, size):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class PhotoEdit:
    """Result of `edit_photo`: the edited aligned face, the reconstruction (strength 0), the
    union mask used, and the photo with the edit pasted back (None with --no-align)."""

    face: np.ndarray
    reconstruction: np.ndarray
    mask: np.ndarray
    photo: np.ndarray | None


def edit_photo(
    model: StyleMapGAN,
    source: Face,
    reference: Face,
    part: str | None,
    mask: torch.Tensor | None,
    strength: float = 1.0,
    parser: FaceParser | None = None,
    paste_mask: str = "hull",
) -> PhotoEdit:
    """Transplant a face part (or a painted region) of `reference` into `source`.

    part: a name of `ganvid.edit.stylemap.PARTS` (masks from the face-parsing network `parser`
    on both aligned faces, united as in the official CelebA-HQ recipe); mask: a painted binary
    [1, 1, size, size] mask instead. strength: 0 = the source's reconstruction, 1 = the full
    transplant, between = part way (outside the mask's cells the codes are the source's).
    """
    if mask is None:
        if part is None or parser is None:
            raise InputError("give a face part (--part) or a painted mask (--mask)")
        both = part_masks(parser, np.stack([source.aligned, reference.aligned]), part)
        if not bool(both.any()):
            raise InputError(f"no {part} found in either face; try another part or --mask")
        union = ops.union_mask(both[0:1], both[1:2])
    else:
        union = ops.union_mask(mask, mask)
    stylemaps = encode(model, [source.aligned, reference.aligned])
    src, ref = stylemaps[0:1], stylemaps[1:2]
    face = local_edit(model, src, ref, union, None if strength == 1.0 else strength)[0]
    recon = render(model, src)[0]
    photo = None
    if source.quad is not None:
        from ganvid.pipeline.paste_back import PasteBack, paste_config

        photo = PasteBack(paste_config(paste_mask))(
            source.photo, face, source.quad, source.landmarks
        )
    shown = ((union[0, 0] > -1).numpy() * 255).astype(np.uint8)
    return PhotoEdit(face, recon, shown, photo)


# ----------------------------------------------------------------------------- photo jobs


@dataclass(frozen=True)
class PhotoOptions:
    """`ganvid stylemap photo`: see the command's help. part or mask (a painted PNG) says what
    is taken from the reference; strength 0..1; align False for aligned crops."""

    part: str | None = None
    mask: Path | None = None
    strength: float = 1.0
    checkpoint: str = DEFAULT_CHECKPOINT
    align: bool = True
    paste_mask: str = "hull"
    parsing_weights: str = "styleganex-faceparsing"
    device: str = "auto"


def photo_outputs(output: Path) -> dict[str, Path]:
    """The main image and its companions: _face (the edited aligned face), _recon (the
    reconstruction, strength 0) and _mask (the cells' source region, white = reference)."""
    return {
        "output": output,
        **{k: output.with_name(f"{output.stem}_{k}.png") for k in ("face", "recon", "mask")},
    }


def _check_outputs(paths: dict[str, Path], inputs: list[Path]) -> None:
    resolved = {Path(p).resolve() for p in inputs}
    for path in paths.values():
        if path.resolve() in resolved:
            raise InputError(f"{path} is an input: choose another --output")
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise InputError(f"{path}: the output must be a .png or .jpg image")


def _write_image(path: Path, rgb: np.ndarray) -> None:
    from ganvid.files import atomic_write_bytes
    from ganvid.pipeline.workdir import encode_image

    path.parent.mkdir(parents=True, exist_ok=True)
    ext = ".png" if path.suffix.lower() == ".png" else ".jpg"
    atomic_write_bytes(path, encode_image(np.ascontiguousarray(rgb), ext))


def _validated(options: PhotoOptions) -> None:
    if (options.part is None) == (options.mask is None):
        raise InputError("give exactly one of --part NAME and --mask PAINTED.png")
    if options.part is not None and options.part not in ops.PARTS:
        raise InputError(f"unknown face part {options.part!r}: use one of {PART_HELP}")
    if not 0.0 <= options.strength <= 1.0:
        raise InputError(f"--strength {options.strength} must be between 0 and 1")


def run_photo_edit(
    photo: np.ndarray,
    reference: np.ndarray,
    paths: tuple[Path, Path],
    output: Path,
    options: PhotoOptions,
) -> dict[str, Path]:
    """Local editing of a photo with a reference photo; writes `photo_outputs(output)` and
    returns them. paths: the two inputs' files (messages, and never overwritten)."""
    from ganvid.pipeline.job import resolve_device

    _validated(options)
    outputs = photo_outputs(output)
    _check_outputs(outputs, list(paths) + ([options.mask] if options.mask else []))
    device = resolve_device(options.device)
    model = load_model(options.checkpoint, device)
    size = model.config.size
    parser = None
    if options.part is not None:
        from ganvid.nn.face_parsing import FaceParser
        from ganvid.weights import resolve

        parser = FaceParser.load(resolve(options.parsing_weights), device=device)
    mask = painted_mask(options.mask, size) if options.mask is not None else None
    source = find_face(photo, size, options.align, paths[0])
    ref = find_face(reference, size, options.align, paths[1])
    result = edit_photo(
        model, source, ref, options.part, mask, options.strength, parser, options.paste_mask
    )
    main = result.photo if result.photo is not None else result.face
    _write_image(outputs["face"], result.face)
    _write_image(outputs["recon"], result.reconstruction)
    _write_image(outputs["mask"], np.repeat(result.mask[..., None], 3, axis=2))
    _write_image(outputs["output"], main)
    return outputs


def run_mix(
    first: np.ndarray,
    second: np.ndarray,
    paths: tuple[Path, Path],
    output: Path,
    mode: str,
    steps: int,
    checkpoint: str = DEFAULT_CHECKPOINT,
    align: bool = True,
    device: str = "auto",
) -> Path:
    """Morph (mode 'interpolate': `steps` images from the first face to the second, the
    official w1 * w + w2 * (1 - w)) or style-mix ('coarse' / 'fine') two faces; writes one
    image: the row [first's reconstruction | results | second's reconstruction]."""
    from ganvid.pipeline.job import resolve_device

    if mode not in ("interpolate", "coarse", "fine"):
        raise InputError(f"--mode {mode!r}: use interpolate, coarse or fine")
    if steps < 1:
        raise InputError("--steps must be at least 1")
    _check_outputs({"output": output}, list(paths))
    model = load_model(checkpoint, resolve_device(device))
    size = model.config.size
    a = find_face(first, size, align, paths[0]).aligned
    b = find_face(second, size, align, paths[1]).aligned
    weights = [1.0 - (k + 1) / (steps + 1) for k in range(steps)]
    images = mix(model, a, b, mode, weights)
    row = np.concatenate([*reconstruct(model, [a]), *images, *reconstruct(model, [b])], axis=1)
    _write_image(output, row)
    return output
