"""`ganvid demo` (ganvid/demo.py, a top-level module, hence tests/test_demo.py): it aligns the
bundled astronaut clip offline and names the weights command for the next step."""

import json


def test_demo_aligns_offline_and_names_the_weights_command(cli, tmp_path):
    code, _, err = cli("demo", "-o", tmp_path, "--size", "64")
    assert code == 0, err
    geometry = json.loads((tmp_path / "astronaut.ganvid/align/geometry.json").read_text())
    frames = geometry["records"]
    assert len(frames) == 50 and all(f["detected"] for f in frames)
    assert "ganvid weights download invert" in err
    # A second run reuses everything (the align stage is skipped, the clip kept).
    before = (tmp_path / "astronaut.mp4").stat().st_mtime_ns
    code, _, _ = cli("demo", "-o", tmp_path, "--size", "64")
    assert code == 0 and (tmp_path / "astronaut.mp4").stat().st_mtime_ns == before
