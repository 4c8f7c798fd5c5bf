import numpy as np
import pytest
import torch

from ganvid.edit.directions import (
    Direction,
    StyleEdit,
    WEdit,
    apply_style_edits,
    apply_w_edits,
    load_direction_file,
    parse_layers,
    parse_style,
)
from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError


def test_keyframes_interpolate_and_hold():
    s = Strength.parse("0s:0,1.5s:3,4s:3,5s:0")
    got = s.at(np.array([0.0, 0.75, 1.5, 3.0, 4.5, 5.0, 9.0]))
    np.testing.assert_allclose(got, [0, 1.5, 3, 3, 1.5, 0, 0])
    assert Strength.parse("-2").at(np.array([0.0, 7.0])).tolist() == [-2, -2]
    assert Strength.parse("1s:2").at(np.array([0.0, 3.0])).tolist() == [2, 2]


@pytest.mark.parametrize("bad", ["abc", "0s:1,0s:2", "2s:1,1s:0", "0s:x", "nan", "-1s:3"])
def test_bad_strength_is_refused(bad):
    with pytest.raises(InputError):
        Strength.parse(bad)


def test_layers():
    assert parse_layers("0-3,9", 16) == (0, 1, 2, 3, 9)
    assert parse_layers(None, 4) == (0, 1, 2, 3)
    for bad in ("3-1", "0-16", "x"):
        with pytest.raises(InputError):
            parse_layers(bad, 16)


def test_direction_files(tmp_path):
    good = np.random.default_rng(0).normal(size=(1, 8)).astype(np.float32)
    np.save(tmp_path / "d.npy", good)
    vector = load_direction_file(tmp_path / "d.npy", num_ws=4, w_dim=8)
    assert vector.shape == (4, 8) and np.all(vector == good[0])
    torch.save({"direction": torch.ones(4, 8)}, tmp_path / "d.pt")
    assert load_direction_file(tmp_path / "d.pt", 4, 8).sum() == 32
    np.save(tmp_path / "wrong.npy", np.zeros((3, 8)))
    with pytest.raises(InputError, match="shape"):
        load_direction_file(tmp_path / "wrong.npy", 4, 8)
    nan = good.copy()
    nan[0, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputError, match="NaN"):
        load_direction_file(tmp_path / "nan.npy", 4, 8)
    with pytest.raises(InputError, match="not found"):
        load_direction_file(tmp_path / "missing.npy", 4, 8)


def test_w_edit_touches_chosen_layers_only():
    ws = torch.randn(3, 4, 8)
    direction = Direction("d", np.ones((4, 8), np.float32), layers=(1, 2))
    times = np.array([0.0, 1.0, 2.0])
    edit = WEdit(direction, Strength.parse("0s:0,2s:4"))
    out = apply_w_edits(ws, [edit], times)
    torch.testing.assert_close(out[:, [0, 3]], ws[:, [0, 3]], rtol=0, atol=0)
    expected = ws[:, 1:3] + torch.tensor([0.0, 2.0, 4.0])[:, None, None]
    torch.testing.assert_close(out[:, 1:3], expected)
    zero = apply_w_edits(ws, [WEdit(direction, Strength.constant(0))], times)
    assert torch.equal(zero, ws)


def test_style_edit():
    styles = {"input": torch.zeros(2, 4), "L0": torch.zeros(2, 6)}
    out = apply_style_edits(styles, [StyleEdit("L0", 5, Strength.constant(1.5))], np.zeros(2))
    assert out["L0"][:, 5].tolist() == [1.5, 1.5] and out["L0"].sum() == 3
    assert styles["L0"].sum() == 0
    assert parse_style("L3_52_1024:17") == ("L3_52_1024", 17)
    with pytest.raises(InputError):
        apply_style_edits(styles, [StyleEdit("L9", 0, Strength.constant(1))], np.zeros(2))
    with pytest.raises(InputError):
        apply_style_edits(styles, [StyleEdit("L0", 6, Strength.constant(1))], np.zeros(2))
    with pytest.raises(InputError):
        parse_style("L0")
