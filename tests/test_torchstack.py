"""A torch / torchvision mismatch is told in one line with the pip command that fixes it.

The broken pair is simulated by a `torchvision` package placed first on the path whose import
fails exactly as a CUDA torchvision does beside a CPU-only torch (checked by hand in such a venv:
torch 2.13.0+cpu with PyPI's torchvision 0.28.0).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganvid import torchstack
from ganvid.errors import StackError

ROOT = Path(__file__).resolve().parents[1]


def test_matching_torchvision_follows_the_release_train():
    assert torchstack.matching_torchvision("2.13.0+cpu") == "0.28.0"
    assert torchstack.matching_torchvision("2.14.1") == "0.29.1"
    assert torchstack.matching_torchvision("2.0.1") == "0.15.1"
    assert torchstack.matching_torchvision("1.13.1") is None


def test_fix_command_keeps_the_torch_build_the_user_has():
    cpu = torchstack.fix_command(torchstack.Build("2.13.0+cpu", "CPU-only"))
    assert cpu == (
        "pip install --force-reinstall torch==2.13.0 torchvision==0.28.0 "
        f"--index-url {torchstack.TORCH_INDEX}/cpu"
    )
    cuda = torchstack.fix_command(torchstack.Build("2.14.1+cu130", "CUDA 13.0"))
    assert cuda.endswith("torchvision==0.29.1 --index-url " + f"{torchstack.TORCH_INDEX}/cu130")
    pypi = torchstack.fix_command(torchstack.Build("2.14.1", "CUDA 13.0"))
    assert pypi == "pip install --force-reinstall torch==2.14.1 torchvision==0.29.1"


def test_build_kind_from_the_local_version_tag():
    assert torchstack._kind_from_local_tag("0.28.0+cu130") == "CUDA 13.0"
    assert torchstack._kind_from_local_tag("0.28.0+cu128") == "CUDA 12.8"
    assert torchstack._kind_from_local_tag("2.13.0+cpu") == "CPU-only"
    assert torchstack._kind_from_local_tag("0.29.2") is None


def test_the_installed_pair_works():
    vision = torchstack.import_torchvision()
    assert vision.ops.nms(torch.tensor([[0, 0, 1, 1.0]] * 2), torch.tensor([1, 0.5]), 0.5).numel()
    assert torchstack.torchvision_build().version.startswith(vision.__version__.split("+")[0])


def test_unrelated_errors_are_not_called_a_mismatch():
    assert torchstack.is_mismatch(RuntimeError("operator torchvision::nms does not exist"))
    assert not torchstack.is_mismatch(RuntimeError("CUDA out of memory"))
    assert not torchstack.is_mismatch(ValueError("operator torchvision::nms does not exist"))


@pytest.fixture
def broken_torchvision(tmp_path):
    """An environment whose `import torchvision` fails as in the CPU torch + CUDA vision venv."""
    package = tmp_path / "torchvision"
    package.mkdir()
    (package / "version.py").write_text("__version__ = '0.28.0+cu130'\n")
    (package / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _run(env, *code_or_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *code_or_args], env=env, capture_output=True, text=True, timeout=120
    )


def test_doctor_names_the_mismatch_and_the_fix(broken_torchvision):
    done = _run(broken_torchvision, "-m", "ganvid", "doctor")
    assert done.returncode == StackError.exit_code, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("ganvid:")]
    assert "Traceback" not in done.stderr
    assert f"torch {torch.__version__}" in line
    assert "torchvision 0.28.0+cu130 (CUDA 13.0)" in line
    assert "operator torchvision::nms does not exist" in line
    assert torchstack.fix_command(torchstack.torch_build()) in line
    assert "BROKEN" in done.stdout + done.stderr  # the table still shows everything else


def test_first_command_needing_torchvision_says_the_same(broken_torchvision):
    code = (
        "import sys\n"
        "from ganvid.errors import StackError\n"
        "from ganvid.nn.lpips import build_lpips\n"
        "try:\n"
        "    build_lpips('alex', random_backbone=True)\n"
        "except StackError as error:\n"
        "    print(error); sys.exit(9)\n"
    )
    done = _run(broken_torchvision, "-c", code)
    assert done.returncode == 9, done.stderr
    assert "do not work together" in done.stdout and "pip install" in done.stdout


def test_an_unguarded_import_still_gives_one_line(broken_torchvision):
    code = (
        "import sys\n"
        "from ganvid import cli\n"
        "def boom():\n"
        "    import torchvision  # noqa: F401\n"
        "cli.app.command('boom')(boom)\n"
        "sys.exit(cli.run(['boom']))\n"
    )
    done = _run(broken_torchvision, "-c", code)
    assert done.returncode == StackError.exit_code, done.stderr
    assert done.stderr.count("\n") == 1 and "install a matching pair" in done.stderr
