"""PTI: it fits, it is deterministic, it resumes after SIGKILL to the same weights, it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ganvid.errors import InputError
from ganvid.pipeline.pti import (
    PivotalTuner,
    PTIConfig,
    TargetFrames,
    batch_for_budget,
    load_tuned,
    pti_parameters,
    sample_indices,
    save_tuned,
)
from ganvid.pipeline.workdir import FrameDir

COUNT, RES = 6, 16


class ToySynthesis(nn.Module):
    """Stands in for SG3 synthesis: a frozen 'Fourier' input warped by the transform, styled by
    ws, then two trainable convs."""

    num_ws = 3

    def __init__(self) -> None:
        super().__init__()
        self.input = nn.Module()
        self.input.weight = nn.Parameter(torch.randn(1, 4, RES, RES))
        self.affine = nn.Linear(8, 4)
        self.conv0 = nn.Conv2d(4, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 3, 3, padding=1)

    def forward(
        self, ws: torch.Tensor, transform: torch.Tensor, force_fp32: bool = True
    ) -> torch.Tensor:
        grid = nn.functional.affine_grid(transform[:, :2, :], (len(ws), 4, RES, RES), False)
        x = self.input.weight.expand(len(ws), -1, -1, -1)
        x = nn.functional.grid_sample(x, grid, align_corners=False)
        x = x * (1 + self.affine(ws.mean(1)))[:, :, None, None]
        return torch.tanh(self.conv1(torch.relu(self.conv0(x))))


class ToyGenerator(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.mapping = nn.Linear(8, 8)
        self.synthesis = ToySynthesis()


class ToyLPIPS(nn.Module):
    """A fixed random conv feature distance: differentiable, per-sample, like LPIPS."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(123)
        self.features = nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.features(x) - self.features(y)).square().mean((1, 2, 3))


def make_clip(root: Path) -> tuple[np.ndarray, np.ndarray, FrameDir]:
    """Pivots [N,3,8], transforms [N,3,3] (small rotations) and target crops on disk."""
    rng = np.random.default_rng(7)
    pivots = rng.normal(size=(COUNT, 3, 8)).astype(np.float32)
    angles = np.radians(rng.uniform(-10, 10, COUNT))
    transforms = np.tile(np.eye(3, dtype=np.float32), (COUNT, 1, 1))
    transforms[:, 0, 0] = transforms[:, 1, 1] = np.cos(angles)
    transforms[:, 0, 1], transforms[:, 1, 0] = np.sin(angles), -np.sin(angles)
    frames = FrameDir(root / "crops")
    yy, xx = np.mgrid[0:RES, 0:RES]
    for i in range(COUNT):
        image = np.stack([xx * 12 + i * 5, yy * 12, (xx + yy) * 6], axis=-1)
        frames.write(i, np.clip(image, 0, 255).astype(np.uint8))
    return pivots, transforms, frames


def make_tuner(root: Path, config: PTIConfig, generator: nn.Module | None = None) -> PivotalTuner:
    pivots, transforms, frames = make_clip(root)
    return PivotalTuner(
        generator or ToyGenerator(),
        ToyLPIPS(),
        pivots,
        transforms,
        TargetFrames(frames, COUNT, RES, cache=2),
        config,
        torch.device("cpu"),
        root / "pti_checkpoint.pt",
    )


def _weights(generator: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in generator.state_dict().items()}


def test_pti_lowers_the_loss_and_freezes_input_and_mapping(tmp_path):
    tuner = make_tuner(tmp_path, PTIConfig(steps=30, lr=3e-3, early_stop_lpips=None))
    before = _weights(tuner.generator)
    result = tuner.run()
    after = tuner.generator.state_dict()
    assert result.steps == 30 and len(result.log) == 30
    assert result.loss_last < 0.7 * result.loss_first
    for name in ("synthesis.input.weight", "mapping.weight", "mapping.bias"):
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0)
    assert not torch.equal(after["synthesis.conv0.weight"], before["synthesis.conv0.weight"])
    assert all(not name.startswith("input.") for name, _ in pti_parameters(tuner.generator))


def test_real_stylegan3_tunes_synthesis_layers_only(tmp_path):
    from support.sg3_fixtures import tiny_generator

    generator = tiny_generator("T", res=16, channel_base=256, channel_max=16, num_layers=4)
    rng = np.random.default_rng(0)
    pivots = rng.normal(size=(COUNT, generator.num_ws, generator.w_dim)).astype(np.float32)
    _, transforms, frames = make_clip(tmp_path)
    tuner = PivotalTuner(
        generator,
        ToyLPIPS(),
        pivots,
        transforms,
        TargetFrames(frames, COUNT, 16),
        PTIConfig(steps=2, early_stop_lpips=None),
        torch.device("cpu"),
        tmp_path / "checkpoint.pt",
    )
    before = _weights(generator)
    tuner.run()
    changed = {k for k, v in generator.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("synthesis.L") for k in changed)
    tuned = {f"synthesis.{name}" for name, _ in pti_parameters(generator)}
    assert not any(k.startswith(("mapping.", "synthesis.input.")) for k in tuned)
    assert changed <= tuned


def test_same_seed_same_weights_and_tuned_weights_round_trip(tmp_path):
    config = PTIConfig(steps=5, early_stop_lpips=None, seed=3)
    first = make_tuner(tmp_path / "a", config)
    first.run()
    second = make_tuner(tmp_path / "b", config)
    second.run()
    for name, value in first.generator.state_dict().items():
        torch.testing.assert_close(second.generator.state_dict()[name], value, rtol=0, atol=0)
    save_tuned(first.generator, tmp_path / "tuned.pt")
    fresh = ToyGenerator()
    load_tuned(fresh, tmp_path / "tuned.pt")
    torch.testing.assert_close(
        fresh.synthesis.conv1.weight, first.generator.synthesis.conv1.weight, rtol=0, atol=0
    )


def test_sampler_visits_every_frame_each_epoch_and_is_seeded():
    drawn = np.concatenate([sample_indices(5, 7, c, 3) for c in range(0, 21, 3)])
    for epoch in range(3):
        assert sorted(drawn[epoch * 7 : (epoch + 1) * 7]) == list(range(7))
    assert not np.array_equal(sample_indices(5, 7, 0, 7), sample_indices(6, 7, 0, 7))


def test_early_stop_ends_the_run_after_a_full_pass(tmp_path):
    tuner = make_tuner(tmp_path, PTIConfig(steps=1000, batch=4, early_stop_lpips=1e9))
    result = tuner.run()
    assert result.stopped_early
    assert result.steps == 2  # 6 frames at batch 4: every frame is seen after 2 steps
    assert (tmp_path / "pti_checkpoint.pt").exists()


def test_memory_budget_lowers_the_batch_or_refuses(tmp_path):
    assert batch_for_budget(4, budget=10_000, fixed_bytes=1_000, sample_bytes=2_000) == 3
    assert batch_for_budget(4, budget=10**9, fixed_bytes=1_000, sample_bytes=2_000) == 4
    with pytest.raises(InputError, match="too small"):
        batch_for_budget(4, budget=1_500, fixed_bytes=1_000, sample_bytes=2_000)
    tuner = make_tuner(tmp_path, PTIConfig(steps=1, batch=4, max_memory_bytes=100_000))
    tuner.fit_batch_to_budget()
    assert 1 <= tuner.batch < 4


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_pti import make_tuner, PTIConfig
    root = Path(sys.argv[1])
    tuner = make_tuner(root, PTIConfig(steps=12, checkpoint_every=2, early_stop_lpips=None))
    hold = len(sys.argv) > 2  # the kill test: wait at step 5 until the parent kills us
    for step in tuner.steps():
        print(step, flush=True)
        if hold and step == 5:
            sys.stdin.readline()
    torch.save(tuner.generator.state_dict(), root / "final.pt")
    """
)


def _child(root: Path, hold: bool = False) -> subprocess.Popen:
    """A PTI run in a subprocess printing its steps; with `hold` it stops after step 5 (so the
    kill lands there however loaded the machine is)."""
    code = CHILD.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", code, str(root), *(["hold"] if hold else [])]
    stdin = subprocess.PIPE if hold else subprocess.DEVNULL
    return subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, text=True, env=env)


def test_sigkill_mid_pti_resumes_to_the_same_weights(tmp_path):
    straight = _child(tmp_path / "straight")
    straight.communicate(timeout=120)
    assert straight.returncode == 0

    killed = _child(tmp_path / "killed", hold=True)
    for line in killed.stdout:
        if int(line) >= 5:  # a checkpoint was written at step 4; step 5 is past it
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "final.pt").exists()

    resumed = _child(tmp_path / "killed")
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0
    assert out.split()[0] in {"5", "6", "7"}  # resumed from a checkpoint, not from scratch
    expected = torch.load(tmp_path / "straight" / "final.pt", weights_only=True)
    got = torch.load(tmp_path / "killed" / "final.pt", weights_only=True)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0)
