"""BiSeNet face parsing: strict, safe loading of the published layout, and the paste-back mask
it gives. Checkpoints are written here with random weights in the published key layout; the
network is fully convolutional, so it runs at 64x64 instead of 512x512."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganvid.errors import CheckpointError, WeightsError
from ganvid.face.align import quad_to_frame_matrix
from ganvid.nn.face_parsing import (
    CLASSES,
    FACE_AND_HAIR,
    NUM_CLASSES,
    BiSeNet,
    FaceParser,
    load_bisenet,
)
from ganvid.pipeline.paste_back import PasteBack, PasteConfig

SIZE = 64


def _random_bisenet(seed: int = 0) -> BiSeNet:
    torch.manual_seed(seed)
    net = BiSeNet()
    for name, tensor in net.state_dict().items():  # trained-looking BN statistics
        if name.endswith("running_mean"):
            tensor.normal_(0.0, 0.1)
        elif name.endswith("running_var"):
            tensor.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """(path, net): a `79999_iter.pth`-style flat state dict and the network it came from."""
    net = _random_bisenet()
    path = tmp_path_factory.mktemp("parsing") / "79999_iter.pth"
    torch.save(net.state_dict(), path)
    return path, net


def test_published_layout_loads_strictly_and_runs(published):
    path, original = published
    net = load_bisenet(path)
    assert not net.training
    saved = torch.load(path, weights_only=True)
    assert set(net.state_dict()) == set(saved)
    assert len(saved) == 191 and "cp.resnet.layer4.1.bn2.running_var" in saved
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        logits = net(x)
        assert logits.shape == (2, NUM_CLASSES, SIZE, SIZE)
        assert torch.allclose(logits, original(x), atol=1e-5)


def test_file_without_batchnorm_counters_loads(published, tmp_path):
    path, _ = published
    weights = torch.load(path, weights_only=True)
    older = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    assert len(older) < len(weights)
    torch.save({f"module.{k}": v for k, v in older.items()}, tmp_path / "old.pth")
    loaded = load_bisenet(tmp_path / "old.pth").state_dict()
    assert torch.equal(loaded["ffm.conv1.weight"], weights["ffm.conv1.weight"])


@pytest.mark.parametrize(
    "change, named",
    [
        ("drop", "ffm.conv1.weight"),
        ("extra", "cp.resnet.fc.weight"),
        ("reshape", "conv_out.conv_out.weight"),
    ],
)
def test_mismatched_tensors_are_named(published, tmp_path, change, named):
    path, _ = published
    weights = torch.load(path, weights_only=True)
    if change == "drop":
        del weights[named]
    elif change == "extra":
        weights[named] = torch.zeros(1000, 512)
    else:
        weights[named] = torch.zeros(18, 256, 1, 1)  # 18 classes: another data set
    torch.save(weights, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=named.replace(".", r"\.")):
        load_bisenet(tmp_path / "bad.pth")


def test_pickled_module_is_refused(tmp_path):
    torch.save(BiSeNet(), tmp_path / "module.pth")  # a whole pickled module, not a state dict
    with pytest.raises(CheckpointError, match="refusing"):
        load_bisenet(tmp_path / "module.pth")


class _TwoRegionNet(nn.Module):
    """Stands in for BiSeNet: left half of the image 'hair', right half 'cloth'."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], NUM_CLASSES, *x.shape[2:])
        half = x.shape[3] // 2
        logits[:, CLASSES.index("hair"), :, :half] = self.scale
        logits[:, CLASSES.index("cloth"), :, half:] = self.scale
        return logits


def test_mask_selects_face_and_hair_classes_at_the_crop_size():
    assert CLASSES.index("hair") in FACE_AND_HAIR and CLASSES.index("skin") in FACE_AND_HAIR
    excluded = ("background", "neck", "cloth", "hat")
    assert not {CLASSES.index(name) for name in excluded} & set(FACE_AND_HAIR)
    parser = FaceParser(_TwoRegionNet(), input_size=SIZE)
    crop = np.zeros((40, 48, 3), np.uint8)  # not the network's size: resized both ways
    mask = parser.face_parsing_mask(crop)
    assert mask.shape == (40, 48) and mask.dtype == torch.float32
    assert mask[:, :20].min() > 0.99 and mask[:, 28:].max() < 0.01


# ----------------------------------------------------------------------------- paste-back


class _RedParser:
    """A parser whose 'face' is wherever the image is red: shows which images it was given."""

    input_size = SIZE

    def __init__(self) -> None:
        self.calls = []

    def masks(self, images: np.ndarray) -> torch.Tensor:
        self.calls.append(images.shape)
        red = (images[..., 0] > 128) & (images[..., 1] < 64)
        return torch.from_numpy(red.astype(np.float32))


def _scene():
    """A textured 120x160 frame, a 64 px render of a tilted crop, and landmarks on a circle."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 120, (120, 160, 3), dtype=np.uint8)
    centre, half, angle = np.array([80.0, 60.0]), 30.0, np.deg2rad(10)
    ex = half * np.array([np.cos(angle), np.sin(angle)])
    ey = half * np.array([-np.sin(angle), np.cos(angle)])
    quad = np.array([centre - ex - ey, centre - ex + ey, centre + ex + ey, centre + ex - ey])
    turn = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    landmarks = centre + 20 * np.stack([np.cos(turn), np.sin(turn)], axis=1)
    render = np.full((SIZE, SIZE, 3), 255, np.uint8)  # white: differs from the frame everywhere
    return frame, render, quad, landmarks


def test_parsing_mask_is_union_of_render_and_source_and_keeps_the_rest(tmp_path):
    frame, render, quad, landmarks = _scene()
    render[6:22, 6:22] = (255, 0, 0)  # 'face' in the render: the crop's top left
    to_frame = quad_to_frame_matrix(quad, SIZE)
    source_spot = np.round(to_frame @ [48, 48, 1])[:2].astype(int)  # crop's bottom right
    x, y = source_spot
    frame[y - 5 : y + 6, x - 5 : x + 6] = (255, 0, 0)
    render_spot = np.round(to_frame @ [14, 14, 1])[:2].astype(int)
    parser = _RedParser()
    config = PasteConfig(mask="parsing", dilate=0.02, feather=0.02, temporal=0)
    paste = PasteBack(config, parser=parser)
    out = paste(frame, render, quad, landmarks)
    assert parser.calls == [(2, SIZE, SIZE, 3)]  # render and source crop, one batch
    assert out.shape == frame.shape and out.dtype == np.uint8
    outside = paste.last_mask == 0
    assert outside.mean() > 0.8
    assert np.array_equal(out[outside], frame[outside])
    changed = np.any(out != frame, axis=-1)
    for x, y in (render_spot, source_spot):
        assert changed[y - 2 : y + 3, x - 2 : x + 3].all()
    centre = np.round(to_frame @ [32, 32, 1])[:2].astype(int)  # neither image is red there
    assert not changed[centre[1] - 3 : centre[1] + 4, centre[0] - 3 : centre[0] + 4].any()


def test_parsing_mask_of_a_wide_window_render_lands_where_each_image_is_red():
    """Window placement: the render is 5:3, the parser's grid square; both parses must map
    back to the right frame pixels (and nothing outside the window changes)."""
    frame, _, _, _ = _scene()
    x0, y0, w, h = box = np.array([30.3, 20.6, 100.0, 60.0])
    render = np.full((240, 400, 3), 255, np.uint8)  # 4x the window
    render[40:80, 40:100] = (255, 0, 0)  # the render's 'face': rows 10-20, columns 10-25 of w
    render_spot = np.array([x0 + 17.5, y0 + 15.0]).astype(int)
    source_spot = np.array([x0 + 80.0, y0 + 45.0]).astype(int)
    x, y = source_spot
    frame[y - 5 : y + 6, x - 5 : x + 6] = (255, 0, 0)
    frame[2:8, 140:150] = (255, 0, 0)  # red outside the window: never pasted over
    turn = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    landmarks = np.array([x0 + w / 2, y0 + h / 2]) + 15 * np.stack([np.cos(turn), np.sin(turn)], 1)
    parser = _RedParser()
    config = PasteConfig(mask="parsing", dilate=0.02, feather=0.02, temporal=0)
    paste = PasteBack(config, parser=parser)
    out = paste.window(frame, render, box, landmarks)
    assert parser.calls == [(2, SIZE, SIZE, 3)]
    outside = np.ones(frame.shape[:2], bool)
    outside[int(y0) : int(np.ceil(y0 + h)), int(x0) : int(np.ceil(x0 + w))] = False
    assert np.array_equal(out[outside], frame[outside])
    changed = np.any(out != frame, axis=-1)
    for x, y in (render_spot, source_spot):
        assert changed[y - 2 : y + 3, x - 2 : x + 3].all()
    middle = np.array([x0 + 50.0, y0 + 30.0]).astype(int)  # neither image is red there
    assert not changed[middle[1] - 3 : middle[1] + 4, middle[0] - 3 : middle[0] + 4].any()


def test_parsing_paste_with_the_network_keeps_frame_size_and_outside_pixels(published):
    path, _ = published
    frame, render, quad, landmarks = _scene()
    parser = FaceParser(load_bisenet(path), input_size=SIZE)
    paste = PasteBack(PasteConfig(mask="parsing"), parser=parser)
    out = paste(frame, render, quad, landmarks)
    assert out.shape == frame.shape
    outside = paste.last_mask == 0
    assert outside.any() and np.array_equal(out[outside], frame[outside])
    assert not np.array_equal(out, frame)
    assert paste(frame, render, quad, None) is frame  # no face: passed through


def test_parsing_without_weights_is_one_line_naming_the_download():
    with pytest.raises(WeightsError) as error:
        PasteBack(PasteConfig(mask="parsing"))
    message = str(error.value)
    assert "\n" not in message
    assert "ganvid weights download styleganex-faceparsing" in message


def test_parsing_loads_the_cached_published_file(published):
    from ganvid.weights import manifest, weights_dir

    path, _ = published
    target = weights_dir() / manifest().entry("styleganex-faceparsing").file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(path.read_bytes())
    paste = PasteBack(PasteConfig(mask="parsing"))
    assert isinstance(paste.parser, FaceParser) and paste.parser.input_size == 512


# ----------------------------------------------------------------------------- command line


def test_mask_choice_is_checked_before_any_work(tmp_path, cli):
    from support.face_clips import moving_clip
    from support.pipeline_fixtures import invert_args, tiny_assets

    assets = tiny_assets(tmp_path, moving_clip(n_frames=2, size=(64, 48)).frames)
    workdir = tmp_path / "clip.ganvid"
    code, _, err = cli(*invert_args(assets, assets["clip"], workdir, "--mask", "parsing"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 5 and len(lines) == 1 and "Traceback" not in err
    assert "ganvid weights download styleganex-faceparsing" in lines[0]
    assert not (workdir / "decode").exists()  # nothing ran
    code, _, err = cli(*invert_args(assets, assets["clip"], workdir, "--mask", "blob"))
    assert code == 2 and "--mask 'blob'" in err
    # the StyleGANEX commands check it the same way, before their own weights and any work
    styleganex = (
        ("edit", assets["clip"], "--backend", "styleganex", "--workdir", workdir),
        ("toonify", assets["clip"], "--workdir", workdir),
    )
    for command in styleganex:
        code, _, err = cli(*command, "--mask", "parsing", "--device", "cpu")
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 5 and len(lines) == 1
        assert "ganvid weights download styleganex-faceparsing" in lines[0]
        assert not (workdir / "decode").exists()
    code, _, err = cli("toonify", assets["clip"], "--mask", "blob")
    assert code == 2 and "--mask 'blob': use full, hull or parsing" in err
