"""`ganvid stylemap photo|mix` on the astronaut photo with a tiny random StyleMapGAN in the
published layout, and the licence shown for the published weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.face_clips import astronaut
from support.stylemapgan_fixtures import PartWhereRed, write_checkpoint

from ganvid.nn.face_parsing import FaceParser
from ganvid.nn.stylemapgan_checkpoints import load_stylemapgan
from ganvid.pipeline.stylemapgan import encode, render

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 32  # the tiny model's image side


def _write(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stylemap_photo")
    photo = astronaut()
    mask = np.zeros((SIZE, SIZE, 3), np.uint8)
    mask[10:22, 8:24] = 255
    small = cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return {
        "photo": _write(root / "photo.png", photo),
        "reference": _write(root / "reference.png", photo[:, ::-1]),
        "face": _write(root / "face.png", small),
        "face_ref": _write(root / "face_ref.png", np.ascontiguousarray(small[::-1])),
        "mask": _write(root / "mask.png", mask),
        "checkpoint": write_checkpoint(root / "celeba_hq_256_8x8.pt", seed=4),
    }


def test_photo_edit_is_pasted_back_into_the_photo(cli, files, tmp_path):
    out = tmp_path / "out.png"
    code, _, err = cli(
        "stylemap", "photo", files["photo"], "-r", files["reference"], "--mask", files["mask"],
        "--checkpoint", files["checkpoint"], "--device", "cpu", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    source, edited = _read(files["photo"]), _read(out)
    assert edited.shape == source.shape
    changed = np.abs(edited.astype(int) - source).max(axis=2) > 0
    # the face region is replaced, the image corners (far from the face) are the input's
    assert changed.mean() > 0.02 and not changed[:40, :40].any() and not changed[-40:, -40:].any()
    for suffix in ("face", "recon", "mask"):
        assert _read(tmp_path / f"out_{suffix}.png").shape == (SIZE, SIZE, 3)


def test_strength_zero_is_the_reconstruction(cli, files, tmp_path):
    out = tmp_path / "zero.png"
    code, _, err = cli(
        "stylemap", "photo", files["face"], "-r", files["face_ref"], "--mask", files["mask"],
        "--checkpoint", files["checkpoint"], "--device", "cpu", "--no-align",
        "--strength", "0", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    assert np.array_equal(_read(out), _read(tmp_path / "zero_recon.png"))
    model = load_stylemapgan(files["checkpoint"])
    expected = render(model, encode(model, [_read(files["face"]).copy()]))[0]
    assert np.array_equal(_read(out), expected)


def test_part_masks_are_the_union_of_the_part_in_both_faces(
    cli, tmp_path, files, monkeypatch, _isolated_home
):
    monkeypatch.setattr(
        FaceParser, "load", classmethod(lambda cls, *a, **k: cls(PartWhereRed("nose", 0.0), SIZE))
    )
    (_isolated_home / "weights").mkdir(parents=True, exist_ok=True)
    (_isolated_home / "weights" / "faceparsing.pth").write_bytes(b"stand-in")  # name resolves
    source, reference = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    source[4:10, 4:10] = 255
    reference[20:26, 18:30] = 255
    out = tmp_path / "nose.png"
    code, _, err = cli(
        "stylemap", "photo", _write(tmp_path / "s.png", source),
        "-r", _write(tmp_path / "r.png", reference), "--part", "nose",
        "--checkpoint", files["checkpoint"], "--device", "cpu", "--no-align", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    expected = np.zeros((SIZE, SIZE), bool)
    expected[4:10, 4:10] = expected[20:26, 18:30] = True
    assert np.array_equal(_read(tmp_path / "nose_mask.png")[..., 0] > 127, expected)
    # no nose in either face: a one-line error, not an empty edit
    blank = _write(tmp_path / "blank.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    code, _, err = cli(
        "stylemap", "photo", blank, "-r", blank, "--part", "nose", "--checkpoint",
        files["checkpoint"], "--device", "cpu", "--no-align", "-o", tmp_path / "none.png",
    )  # fmt: skip
    assert code != 0 and "no nose found" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (("--part", "nose", "--mask", "MASK"), "exactly one of --part"),
        (("--part", "beard"), "unknown face part 'beard'"),
        (("--mask", "MASK", "--strength", "1.5"), "between 0 and 1"),
        (("--mask", "MASK", "-o", "PHOTO"), "is an input"),
    ],
)
def test_bad_input_is_one_line(cli, files, args, message):
    args = [files["mask"] if a == "MASK" else files["face"] if a == "PHOTO" else a for a in args]
    code, _, err = cli(
        "stylemap", "photo", files["face"], "-r", files["face_ref"], *args,
        "--checkpoint", files["checkpoint"], "--device", "cpu", "--no-align",
    )  # fmt: skip
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1


def test_mix_writes_a_row_of_reconstructions_and_morphs(cli, files, tmp_path):
    out = tmp_path / "morph.png"
    code, _, err = cli(
        "stylemap", "mix", files["face"], files["face_ref"], "--steps", "3",
        "--checkpoint", files["checkpoint"], "--device", "cpu", "--no-align", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    row = _read(out)
    assert row.shape == (SIZE, 5 * SIZE, 3)
    tiles = [row[:, k * SIZE : (k + 1) * SIZE] for k in range(5)]
    # a morph: each step is nearer the second face than the one before
    distance = [np.abs(t.astype(int) - tiles[-1]).mean() for t in tiles]
    assert distance[0] > distance[2] > distance[4] == 0
    code, _, err = cli(
        "stylemap", "mix", files["face"], files["face_ref"], "--mode", "coarse",
        "--checkpoint", files["checkpoint"], "--device", "cpu", "--no-align", "-o", out,
    )  # fmt: skip
    assert code == 0 and _read(out).shape == (SIZE, 3 * SIZE, 3)


def test_licence_is_listed_and_shown_once_on_first_use(
    cli, files, _isolated_home, tmp_path, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "300")  # one table row per line
    code, out, _ = cli("weights", "list")
    rows = [line for line in out.splitlines() if "stylemapgan-celeba-hq-256 " in line]
    assert code == 0 and "CC BY-NC 4.0" in rows[0]
    target = _isolated_home / "weights" / "stylemapgan" / "celeba_hq_256_8x8.pt"
    target.parent.mkdir(parents=True)
    shutil.copy(files["checkpoint"], target)
    args = (
        "stylemap", "photo", files["face"], "-r", files["face_ref"], "--mask", files["mask"],
        "--device", "cpu", "--no-align", "-o", tmp_path / "named.png",
    )  # fmt: skip
    code, _, err = cli(*args)
    assert code == 0 and "CC BY-NC 4.0" in err and "stylemapgan-celeba-hq-256" in err
    code, _, err = cli(*args)
    assert code == 0 and "CC BY-NC" not in err
