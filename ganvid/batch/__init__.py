"""Many jobs at once: `ganvid batch JOBFILE` runs ganvid commands over many clips, locally
(one worker process per visible GPU, or one on the CPU) or as tasks on a Ray cluster.

    jobfile.py  the TOML job file: jobs, folder jobs, defaults; checked against the commands'
                own options before anything runs
    run.py      one job in this process (the same command function the CLI calls), its log,
                which stages it ran and which it found finished, its one-line error
    local.py    worker processes on this machine, one GPU each
    ray_pool.py the same jobs as Ray tasks (optional extra `ganvid[ray]`)
    schedule.py the driver: order (jobs on one work dir run one after another, in file
                order), overall progress, the summary table

Resuming is the work dirs' business (`ganvid.pipeline.workdir`): a rerun of the same job file
skips the stages that finished and resumes the one that was cut. This package knows nothing of
networks.

One long clip is shared among workers by `split = N` (jobfile.py): N part jobs
(`ganvid invert --part K/N`) run at once on its work dir, each doing its share of the face
detection, the encoder's batches and the render's segments, and then any unit another part
has not claimed (`ganvid.pipeline.claims`: a dead part's share is finished by the live ones);
tracking and PTI run once; then the job itself joins the segments.
"""
