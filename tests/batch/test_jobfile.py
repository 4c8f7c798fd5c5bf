"""`ganvid batch` job files: parsing, checking against the commands' options, folder jobs, and
the order the driver starts jobs in (no networks, no workers: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganvid.batch.jobfile import Job, load_jobfile
from ganvid.batch.run import JobResult, stage_stamps
from ganvid.batch.schedule import run_batch
from ganvid.errors import InputError
from ganvid.pipeline.workdir import Workdir, run_stage


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_jobs_become_the_commands_own_arguments_with_paths_from_the_job_file(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("b.mp4", "a.mp4", "notes.txt"):
        (tmp_path / "clips" / name).write_bytes(b"")
    jobfile = _write(
        tmp_path / "jobs.toml",
        """
[defaults]
device = "cpu"
pti-steps = 3          # invert only: the edit job does not get it

[talk]
command = "invert"
clip = "clips/a.mp4"
smooth = false
side_by_side = true
workdir = "work/a"

[older]
command = "edit"
clip = "clips/a.mp4"
workdir = "work/a"
direction = ["age:3", "smile:1"]

[toons]
command = "toonify"
folder = "clips"
output = "out/{stem}_toon.mp4"
""",
    )
    jobs = load_jobfile(jobfile)
    clips = tmp_path / "clips"
    assert [j.name for j in jobs] == ["talk", "older", "toons/a", "toons/b"]
    talk, older, toon_a, toon_b = jobs
    assert talk.argv == (
        "--device", "cpu", "--pti-steps", "3", "--no-smooth", "--side-by-side",
        "--workdir", str(tmp_path / "work" / "a"), str(clips / "a.mp4"),
    )  # fmt: skip
    assert talk.workdir == older.workdir == tmp_path / "work" / "a"
    assert "--pti-steps" not in older.argv
    assert older.argv.count("--direction") == 2 and "smile:1" in older.argv
    assert toon_a.argv[-3:] == (
        "--output",
        str(tmp_path / "out" / "a_toon.mp4"),
        str(clips / "a.mp4"),
    )
    assert toon_b.workdir == clips / "b.ganvid"  # the command's own default


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('command = "invrt"\nclip = "a.mp4"', "job 'j': command = 'invrt'; use one of"),
        ('clip = "a.mp4"', "job 'j': no command"),
        ('command = "invert"\nclip = "a.mp4"\npti_stepz = 3', "unknown option 'pti_stepz'"),
        ('command = "invert"\nclip = "a.mp4"\nbatch = 0', "job 'j': Invalid value for '--batch'"),
        ('command = "invert"\nclip = "a.mp4"\nbatch = [1, 2]', "batch takes one value"),
        ('command = "invert"\nclip = "a.mp4"\nfresh = "yes"', "fresh is a flag"),
        ('command = "invert"\nclip = "a.mp4"\ncrf = true', "crf takes a value"),
        ('command = "invert"\nclip = "a.mp4"\nno-smooth = true', "unknown option 'no-smooth'"),
        ('command = "edit"\ndirection = ["age"]', "give clip (or workdir)"),
        ('command = "align"\nclip = "a.mp4"\noutput = "x"', "unknown option 'output'"),
        ('command = "invert"\nfolder = "."\noutput = "o.mp4"', "put {stem} in it"),
        ('command = "invert"\nfolder = "nowhere"', "is not a directory"),
        ('command = "invert"\nclip = "a.mp4"\nfolder = "."', "clip or folder, not both"),
        ('command = "weights"\nclip = "a.mp4"', "use one of align, invert, edit"),
        ('command = "invert"\nclip = "a.mp4"\nsplit = 0', "split = 0: give a whole number"),
        ('command = "invert"\nclip = "a.mp4"\nsplit = "2"', "split = '2': give a whole"),
        ('command = "edit"\nclip = "a.mp4"\nsplit = 2', "cannot share a clip among workers"),
        ('command = "invert"\nclip = "a.mp4"\nsplit = 2\nfresh = true', "clear the parts"),
    ],
)
def test_a_wrong_job_is_one_line_naming_the_job_and_key(tmp_path, table, message):
    (tmp_path / "a.mp4").write_bytes(b"")
    jobfile = _write(tmp_path / "jobs.toml", f"[j]\n{table}\n")
    with pytest.raises(InputError) as error:
        load_jobfile(jobfile)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(str(jobfile))


def test_file_level_mistakes(tmp_path):
    with pytest.raises(InputError, match="no such job file"):
        load_jobfile(tmp_path / "missing.toml")
    with pytest.raises(InputError, match="not a valid TOML"):
        load_jobfile(_write(tmp_path / "bad.toml", "[j\ncommand = 1"))
    with pytest.raises(InputError, match="no jobs"):
        load_jobfile(_write(tmp_path / "empty.toml", "[defaults]\n"))
    text = '[j]\ncommand = "align"\nclip = "a.mp4"\n[defaults]\npti-steps = 3\n'
    with pytest.raises(InputError, match="'pti-steps' is an option of no job's command"):
        load_jobfile(_write(tmp_path / "defaults.toml", text))


def test_folder_jobs_skip_the_videos_earlier_runs_wrote_beside_the_clips(tmp_path):
    for name in ("talk.mp4", "talk_inverted.mp4", "talk_2.mp4"):
        (tmp_path / name).write_bytes(b"")
    with Workdir(tmp_path / "talk.ganvid") as wd:
        output = str(tmp_path / "talk_inverted.mp4")
        run_stage(wd, "encode", lambda *_: {"outputs": {"video": output}})
    jobfile = _write(tmp_path / "jobs.toml", '[all]\ncommand = "invert"\nfolder = "."\n')
    assert [j.name for j in load_jobfile(jobfile)] == ["all/talk", "all/talk_2"]


def test_stage_stamps_see_nested_stages_and_change_when_a_stage_reruns(tmp_path):
    with Workdir(tmp_path) as wd:
        run_stage(wd, "decode", lambda *_: {}, outputs=[])
        run_stage(wd, "edits/age3/render", lambda *_: {}, options={"a": 1})
        first = stage_stamps(tmp_path)
        run_stage(wd, "edits/age3/render", lambda *_: {}, options={"a": 2})
    second = stage_stamps(tmp_path)
    assert set(first) == set(second) == {"decode", "edits/age3/render"}
    assert first["decode"] == second["decode"]
    assert first["edits/age3/render"] != second["edits/age3/render"]


class _RecordingPool:
    """Two slots; finishes the oldest running job on each wait."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running: list[Job] = []
        self.concurrent: list[set[str]] = []

    def free(self) -> int:
        return 2 - len(self.running)

    def submit(self, job: Job) -> None:
        self.started.append(job.name)
        self.running.append(job)
        self.concurrent.append({j.name for j in self.running})

    def wait(self) -> JobResult:
        job = self.running.pop(0)
        failed = job.name == "invert-a"
        return JobResult(job.name, "failed" if failed else "done", 0.0, "x" if failed else None)

    def close(self) -> None:
        pass


def test_jobs_on_one_work_dir_run_in_file_order_and_a_failure_stops_nothing():
    a, b = Path("/w/a"), Path("/w/b")
    jobs = [
        Job("invert-a", "invert", (), a),
        Job("edit-a", "edit", (), a),
        Job("invert-b", "invert", (), b),
        Job("fov-a", "expand-fov", (), a),
    ]
    pool = _RecordingPool()
    results = run_batch(jobs, pool)
    assert [r.name for r in results] == [j.name for j in jobs]
    assert [r.ok for r in results] == [False, True, True, True]
    assert pool.started == ["invert-a", "invert-b", "edit-a", "fov-a"]
    for together in pool.concurrent:  # never two jobs of one work dir at once
        assert not {"invert-a", "edit-a", "fov-a"} <= together
        assert len(together & {"invert-a", "edit-a", "fov-a"}) <= 1


def test_jobs_parse_with_the_same_options_as_the_command_line():
    """Batch builds its command table from the command modules (not from ganvid.cli, which
    registers batch itself): every job command must have exactly the CLI's options."""
    import typer.main

    from ganvid.batch.jobfile import COMMANDS, cli_command
    from ganvid.cli import app

    root = typer.main.get_command(app).commands
    for name in COMMANDS:
        ours = {
            (p.name, tuple(p.opts), tuple(p.secondary_opts), p.multiple)
            for p in cli_command(name).params
        }
        cli = {
            (p.name, tuple(p.opts), tuple(p.secondary_opts), p.multiple) for p in root[name].params
        }
        assert ours == cli, name


def test_a_split_job_becomes_its_parts_then_itself_and_the_parts_run_at_once(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    jobfile = _write(
        tmp_path / "jobs.toml",
        """
[defaults]
split = 2

[talk]
command = "invert"
clip = "a.mp4"

[older]
command = "edit"
clip = "a.mp4"
direction = ["age:3"]

[solo]
command = "invert"
clip = "a.mp4"
workdir = "solo"
split = 1
""",
    )
    jobs = load_jobfile(jobfile)
    assert [j.name for j in jobs] == ["talk/part1", "talk/part2", "talk", "older", "solo"]
    part1, part2, talk, older, solo = jobs
    assert part1.argv == (*talk.argv, "--part", "1/2") and part1.part_of == "talk"
    assert part2.argv[-2:] == ("--part", "2/2") and part2.workdir == talk.workdir
    assert talk.part_of is None and "--part" not in talk.argv + older.argv + solo.argv

    pool = _RecordingPool()
    pool.free = lambda: 3 - len(pool.running)
    run_batch(jobs, pool)
    assert pool.started == ["talk/part1", "talk/part2", "solo", "talk", "older"]
    assert {"talk/part1", "talk/part2"} <= pool.concurrent[1]  # the parts at once
    for together in pool.concurrent:  # the job, then the next on its work dir: alone on it
        if together & {"talk", "older"}:
            assert len(together & {"talk/part1", "talk/part2", "talk", "older"}) == 1
