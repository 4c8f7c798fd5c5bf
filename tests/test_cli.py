from ganvid import __version__


def test_help_lists_only_real_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0
    assert "doctor" in out


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0
    assert __version__ in out


def test_doctor_tells_the_truth(cli):
    import torch

    code, _, err = cli("doctor")
    assert code == 0
    assert torch.__version__ in err
    expected = "none visible" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)
    assert expected in err


def test_unknown_command_fails(cli):
    code, _, _ = cli("no-such-command")
    assert code != 0


def _one_line_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("ganvid: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


def test_missing_file_is_one_line(cli, tmp_path):
    for command in ("align", "invert", "toonify"):
        code, _, err = cli(command, tmp_path / "nope.mp4")
        _one_line_error(code, err, "nope.mp4")


def test_corrupt_and_audio_only_videos_are_one_line(cli, tmp_path):
    from support.videos import make_audio_only, make_garbage

    garbage = make_garbage(tmp_path / "garbage.mp4")
    code, _, err = cli("align", garbage, "-o", tmp_path / "w1")
    _one_line_error(code, err, "garbage.mp4")
    sound = make_audio_only(tmp_path / "sound.mp4")
    code, _, err = cli("align", sound, "-o", tmp_path / "w2")
    _one_line_error(code, err, "sound.mp4")


def test_debug_shows_the_traceback(cli, tmp_path):
    code, _, err = cli("--debug", "align", tmp_path / "nope.mp4")
    assert code != 0 and "Traceback" in err
