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
