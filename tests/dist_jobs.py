"""Run several ``tools/train.py`` jobs in one ``torch.distributed.run``
launch (tests only).

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_jobs.py JOBS

Starting a process and importing torch, mmengine and mmpretrain take about
6 s per process, longer than the tiny training runs of the tests; the
2-process tests therefore start their processes once per phase, not once per
run. JOBS is a JSON file with a list of argument lists for tools/train.py
(config, ``--work-dir``, ``--cfg-options`` ...). Each job goes through
tools/train.py's own ``parse_args`` and ``merge_args``
(``mm_instdisc.apis.train``) and mmengine's Runner,
as ``bash tools/dist_train.sh CONFIG 2 ARGS`` runs it, under a name of its
own (mmengine keys its logger, message hub and visualizer by the experiment
name); the process group is shared by the jobs and destroyed after the
last, and the processes leave through ``exit_distributed`` as tools/train.py
does.
A job that raises ends the launch with its traceback (the tests print it).
"""
import gc
import json
import os.path as osp
import sys


def main():
    from mmengine.config import Config

    from mm_instdisc.apis.train import merge_args, parse_args, train
    from mm_instdisc.utils import exit_distributed
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    launcher_args = sys.argv[2:]  # e.g. --local-rank from older launchers
    for i, argv in enumerate(jobs):
        args = parse_args([*argv, '--launcher', 'pytorch', *launcher_args])
        cfg = merge_args(Config.fromfile(args.config), args)
        cfg.experiment_name = (f'job{i}_'
                               f'{osp.splitext(osp.basename(args.config))[0]}')
        train(cfg)
        gc.collect()  # the finished runner's DDP reducer, before the next
    exit_distributed()


if __name__ == '__main__':
    main()
