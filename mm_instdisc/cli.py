"""Console scripts: ``mm-instdisc-train`` and friends call the programs of
``mm_instdisc.apis`` (``main(argv)``; the checkout's ``tools/*.py`` are thin
wrappers around the same functions) with the same arguments, from any
working directory; ``mm-instdisc-export`` (:func:`export`) calls
``mm_instdisc.utils.export`` itself.

A CONFIG argument may also be a shipped config's name
(``npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist``, see
``mm_instdisc.list_configs``). Data: configs read their data below
``$MM_INSTDISC_DATA`` (default ``data`` in the working directory); when that
is unset and the working directory has no ``data/``, the checkout's ``data/``
(an editable install made by tools/setup.sh) is used.
"""
import os
import os.path as osp
import sys

from mm_instdisc.configs import get_config


def _resolve_config(argv):
    """argv[0] as a file, else as a shipped config name."""
    if argv and not argv[0].startswith('-') and not osp.isfile(argv[0]):
        try:
            argv[0] = get_config(argv[0])
        except FileNotFoundError:
            pass  # the tool's own error names the bad path
    return argv


def _default_data_root():
    if 'MM_INSTDISC_DATA' in os.environ or osp.isdir('data'):
        return
    checkout = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                        'data')
    if osp.isdir(checkout):
        os.environ['MM_INSTDISC_DATA'] = checkout


def _run(main, argv=None, takes_config=True):
    """``main(argv)`` of a program of ``mm_instdisc.apis``, ``argv`` being
    ``sys.argv[1:]`` when None, its config resolved (``takes_config``) and
    the default data root set."""
    args = list(sys.argv[1:] if argv is None else argv)
    if takes_config:
        args = _resolve_config(args)
    _default_data_root()
    return main(args)


def train():
    """``mm-instdisc-train CONFIG ...`` (``mm_instdisc.apis.train``), or
    ``mm-instdisc-train METHOD --data DIR ...`` (a folder of images)."""
    from mm_instdisc.own_data import METHOD_CONFIGS
    if len(sys.argv) > 1 and sys.argv[1] in METHOD_CONFIGS:
        train_folder(sys.argv[1:])  # returns a path: not an exit status
        return
    from mm_instdisc.apis.train import main
    _run(main)


def _run_name(config: str, visualizer: bool = False) -> list:
    """``--cfg-options experiment_name=...`` unique to this run: mmengine
    keys its logger and visualizer by the experiment name, which is the
    config's name and the second it started, so two runs started in one
    process within a second (scripts, tests) would share them and write
    one run's logs into the other's work dir."""
    import itertools
    import time
    _run_name.counter = getattr(_run_name, 'counter', itertools.count())
    stem = osp.splitext(osp.basename(config))[0]
    name = (f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{os.getpid()}_'
            f'{next(_run_name.counter)}')
    # mmdet's default runtime names its visualizer 'visualizer' outright
    return ['--cfg-options', f'experiment_name={name}'] + (
        [f'visualizer.name={name}'] if visualizer else [])


def _folder_parser():
    import argparse

    from mm_instdisc.own_data import METHOD_CONFIGS
    p = argparse.ArgumentParser(
        prog='mm-instdisc-train',
        description='Pretrain METHOD on a folder of your own images (any '
        'layout; one sub-folder per class for exemplar). Writes the filled-in '
        'config, checkpoints, logs and label_free_monitor.png to the work '
        'dir. docs/own_data.md.')
    p.add_argument('method', choices=sorted(METHOD_CONFIGS))
    p.add_argument('--data', required=True, help='folder of images')
    p.add_argument('--size', type=int, help='image side (default: from the '
                   'images, a multiple of 32, at most 96 on a CPU, 224 on a '
                   'GPU)')
    p.add_argument('--channels', type=int, choices=(1, 3),
                   help='default: 3 if any image is in colour, else 1')
    p.add_argument('--gpus', type=int, default=1,
                   help='processes (GPUs, or CPU processes with gloo)')
    budget = p.add_mutually_exclusive_group()
    budget.add_argument('--minutes', type=float,
                        help='wall-time budget: the schedule is fitted to it '
                        '(default 15 when --epochs is not given)')
    budget.add_argument('--epochs', type=int, help='a fixed number of epochs')
    p.add_argument('--val', help='a small labelled folder (one sub-folder '
                   'per class): leave-one-out kNN accuracy during training')
    p.add_argument('--init', help='torchvision / timm / mmpretrain weights '
                   'file to start the backbone from (offline file)')
    p.add_argument('--work-dir', help='default: work_dirs/METHOD_FOLDER')
    p.add_argument('--batch-size', type=int)
    p.add_argument('--workers', type=int, default=2,
                   help='data loader worker processes (0: in the main one)')
    p.add_argument('--skip-bad', action='store_true',
                   help='leave unreadable image files out (listed in the '
                   'log) instead of stopping')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--resume', action='store_true',
                   help="resume from the work dir's latest checkpoint")
    p.add_argument('--dry-run', action='store_true',
                   help='write the config and stop')
    return p


def train_folder(argv):
    """``mm-instdisc-train METHOD --data DIR [...]``: write the method's
    folder config filled in from the data into the work dir, then train it
    with ``mm_instdisc.apis.train`` (in ``torch.distributed.run`` processes
    for ``--gpus N > 1``).

    Returns:
        str: The config written (the run's ``<work dir>/<name>.py``).
    """
    from mmengine.config import Config

    from mm_instdisc.own_data import (LABELLED, apply_run_options,
                                      inspect_folder, write_folder_config)
    args = _folder_parser().parse_args(argv)
    data = args.data.rstrip('/')
    work_dir = args.work_dir or osp.join(
        'work_dirs', f'{args.method}_{osp.basename(osp.abspath(data))}')
    if not osp.isdir(data):
        raise SystemExit(f'mm-instdisc-train: --data {data!r} is not a '
                         'folder.')
    info = inspect_folder(data, args.method in LABELLED, args.size)
    print(f'mm-instdisc-train: {info["num_images"]} images below {data} '
          f'(median shorter side {info["short_side"]} px, '
          f'{"colour" if info["channels"] == 3 else "grey"}); size '
          f'{args.size or info["size"]}', flush=True)
    path = write_folder_config(args.method, data, work_dir, size=args.size,
                               channels=args.channels, epochs=args.epochs,
                               batch_size=args.batch_size,
                               skip_bad=args.skip_bad, seed=args.seed,
                               info=info)
    cfg = Config.fromfile(path)
    cfg.train_dataloader.num_workers = args.workers
    cfg.train_dataloader.persistent_workers = args.workers > 0
    minutes = args.minutes if args.epochs is None else None
    if minutes is None and args.epochs is None:
        minutes = 15.0
    cfg = apply_run_options(cfg, minutes=minutes, val=args.val,
                            init=args.init)
    cfg.dump(path)
    print(f'mm-instdisc-train: config {path}', flush=True)
    if args.dry_run:
        return path
    tool_args = [path, '--work-dir', work_dir]
    if args.resume:
        tool_args.append('--resume')
    if args.gpus > 1:
        import subprocess
        cmd = [sys.executable, '-m', 'torch.distributed.run',
               f'--nproc_per_node={args.gpus}', '-m',
               'mm_instdisc.apis.train', *tool_args, '--launcher', 'pytorch']
        raise SystemExit(subprocess.call(cmd))
    from mm_instdisc.apis.train import main
    _run(main, tool_args + _run_name(path), takes_config=False)
    return path


def _det_parser():
    import argparse

    from mm_instdisc.det.own_coco import ARCH_CONFIGS, NORMS
    p = argparse.ArgumentParser(
        prog='mm-instdisc-det-train',
        description='Fine-tune Faster R-CNN / Mask R-CNN (FPN) on your own '
        'COCO json from a pretraining checkpoint (or, with --random-init, '
        "from the pretraining network's own initialisation). Writes the "
        'filled-in config, checkpoints and logs to the work dir. '
        'docs/transfer.md, "Detection on your own COCO json".')
    p.add_argument('--train', required=True, help='training COCO json')
    p.add_argument('--train-images', required=True,
                   help="folder the training json's file_name is below")
    p.add_argument('--val', required=True, help='validation COCO json')
    p.add_argument('--val-images', required=True,
                   help="folder the validation json's file_name is below")
    p.add_argument('--checkpoint', required=True,
                   help='pretraining checkpoint (backbone.* keys) or a '
                   'converted backbone; gives the architecture')
    p.add_argument('--arch', default='faster-rcnn',
                   choices=sorted(ARCH_CONFIGS),
                   help='mask-rcnn needs segmentations in the json')
    p.add_argument('--epochs', type=int, default=12)
    p.add_argument('--size', type=int,
                   help='shorter side of the resized images (default: '
                   'min(median shorter side, 512))')
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--fpn-channels', type=int, default=256,
                   help="FPN / RPN / RoI channels (mmdet's 256; 64 on a CPU)")
    p.add_argument('--rois', type=int, default=512,
                   help="RoIs per image for the box head (mmdet's 512)")
    p.add_argument('--roi-sampling-ratio', type=int, default=0,
                   help='RoIAlign samples per bin side (0: adaptive)')
    p.add_argument('--norm', default='bn', choices=NORMS,
                   help='backbone normalisation (see the config)')
    p.add_argument('--workers', type=int, default=2,
                   help='data loader worker processes (0: in the main one)')
    p.add_argument('--work-dir',
                   help='default: work_dirs/ARCH_<train json name>')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--random-init', action='store_true',
                   help="baseline: the checkpoint's architecture with the "
                   "pretraining network's initialisation, no weights")
    p.add_argument('--dry-run', action='store_true',
                   help='write the config and stop')
    return p


def det_train() -> None:
    """``mm-instdisc-det-train ...`` (:func:`det_train_cli` on
    ``sys.argv``; the console script must not return the path, which
    ``sys.exit`` would print as an error)."""
    det_train_cli(sys.argv[1:])


def det_train_cli(argv):
    """``mm-instdisc-det-train --train ANN --train-images DIR --val ANN
    --val-images DIR --checkpoint CKPT [...]``: check the jsons, images and
    checkpoint, write the filled-in detection config into the work dir
    (``mm_instdisc.det.own_coco.write_det_config``), then train it with
    ``mm_instdisc.apis.det_train`` (mmengine's Runner).

    Returns:
        str: The config written.

    Raises:
        SystemExit: Bad input (the message), before training.
    """
    from mm_instdisc.det.own_coco import write_det_config
    args = _det_parser().parse_args(argv)
    name = osp.splitext(osp.basename(args.train))[0]
    work_dir = args.work_dir or osp.join('work_dirs', f'{args.arch}_{name}')
    try:
        path = write_det_config(
            args.train, args.train_images, args.val, args.val_images,
            args.checkpoint, work_dir, arch=args.arch, epochs=args.epochs,
            size=args.size, seed=args.seed, random_init=args.random_init,
            batch_size=args.batch_size, norm=args.norm,
            fpn_channels=args.fpn_channels, rois_per_image=args.rois,
            roi_sampling_ratio=args.roi_sampling_ratio,
            workers=args.workers)
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise SystemExit(f'mm-instdisc-det-train: error: {e}')
    print(f'mm-instdisc-det-train: config {path}', flush=True)
    if args.dry_run:
        return path
    from mm_instdisc.apis.det_train import main
    _run(main, [path, '--work-dir', work_dir] +
         _run_name(path, visualizer=True), takes_config=False)
    return path


def _cls_parser():
    import argparse

    from mm_instdisc.own_cls import MODE_CONFIGS
    p = argparse.ArgumentParser(
        prog='mm-instdisc-cls-train',
        description='Linear probe or fine-tuning on your own labelled folder '
        '(one sub-folder per class) from a pretraining checkpoint. Writes '
        'the filled-in config, checkpoints and logs (top-1 accuracy on the '
        'validation folder) to the work dir. docs/transfer.md, '
        '"Classification on your own folder".')
    p.add_argument('--train', required=True,
                   help='training folder, one sub-folder per class')
    p.add_argument('--val', required=True,
                   help='validation folder, the same class sub-folders')
    p.add_argument('--checkpoint', required=True,
                   help='pretraining checkpoint (backbone.* keys) or a '
                   'converted backbone; gives the architecture')
    p.add_argument('--mode', default='probe', choices=sorted(MODE_CONFIGS),
                   help='probe: frozen backbone, linear head; finetune: '
                   'the whole network')
    p.add_argument('--fraction', type=float,
                   help='train on this share of every class, in (0, 1] '
                   '(e.g. 0.01, 0.1; seeded with --seed)')
    p.add_argument('--epochs', type=int,
                   help='default: 50 (probe), 100 (finetune)')
    p.add_argument('--size', type=int, help='image side (default: from the '
                   'images, a multiple of 32, at most 96 on a CPU, 224 on a '
                   'GPU)')
    p.add_argument('--batch-size', type=int)
    p.add_argument('--workers', type=int, default=2,
                   help='data loader worker processes (0: in the main one)')
    p.add_argument('--work-dir',
                   help='default: work_dirs/cls-MODE_<train folder name>')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--dry-run', action='store_true',
                   help='write the config and stop')
    return p


def cls_train() -> None:
    """``mm-instdisc-cls-train ...`` (:func:`cls_train_cli` on
    ``sys.argv``; the console script must not return the path)."""
    cls_train_cli(sys.argv[1:])


def cls_train_cli(argv):
    """``mm-instdisc-cls-train --train DIR --val DIR --checkpoint CKPT
    [--mode probe|finetune] [--fraction F] [...]``: check the folders and
    the checkpoint, write the filled-in classification config into the
    work dir (``mm_instdisc.own_cls.write_cls_config``), then train it with
    ``mm_instdisc.apis.train`` (mmengine's Runner).

    Returns:
        str: The config written.

    Raises:
        SystemExit: Bad input (the message), before training.
    """
    from mm_instdisc.own_cls import write_cls_config
    args = _cls_parser().parse_args(argv)
    name = osp.basename(osp.abspath(args.train.rstrip('/')))
    work_dir = args.work_dir or osp.join('work_dirs', f'cls-{args.mode}_'
                                         f'{name}')
    try:
        path = write_cls_config(
            args.train, args.val, args.checkpoint, work_dir, mode=args.mode,
            fraction=args.fraction, epochs=args.epochs, size=args.size,
            batch_size=args.batch_size, seed=args.seed,
            workers=args.workers)
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise SystemExit(f'mm-instdisc-cls-train: error: {e}')
    print(f'mm-instdisc-cls-train: config {path}', flush=True)
    if args.dry_run:
        return path
    from mm_instdisc.apis.train import main
    _run(main, [path, '--work-dir', work_dir] + _run_name(path),
         takes_config=False)
    return path


def test():
    """``mm-instdisc-test CONFIG CHECKPOINT ...`` (``mm_instdisc.apis.test``)."""
    from mm_instdisc.apis.test import main
    _run(main)


def knn_eval():
    """``mm-instdisc-knn-eval CONFIG CHECKPOINT ...``
    (``mm_instdisc.apis.knn_eval``)."""
    from mm_instdisc.apis.knn_eval import main
    _run(main)


def convert():
    """``mm-instdisc-convert SRC DST ...`` (``mm_instdisc.apis.convert``)."""
    from mm_instdisc.apis.convert import main
    _run(main, takes_config=False)


def _export_parser():
    import argparse

    from mm_instdisc.utils.export import EXPORT_FORMATS
    p = argparse.ArgumentParser(
        prog='mm-instdisc-export',
        description='Write the backbone of a self-supervised checkpoint in '
        'the format of another library: mmpretrain ({state_dict, meta}, the '
        "backbone's own names), mmdet (the same under backbone.), "
        'torchvision / timm (a plain state dict in their names, loads with '
        'strict=False leaving only the classifier missing), detectron2 (a '
        "pickle in detectron2's ResNet names, as facebookresearch/moco "
        'writes it; ResNets only). docs/transfer.md.')
    p.add_argument('ckpt', help='pretraining checkpoint (.pth), or bare '
                   'mmpretrain backbone weights')
    p.add_argument('out', help='output file')
    p.add_argument('--to', required=True, choices=EXPORT_FORMATS,
                   help='target library')
    p.add_argument('--src-prefix', default='backbone.',
                   help="module whose weights to export (default: "
                   "'backbone.'; e.g. 'encoder_k.module.0.' for a key "
                   'encoder; mm-instdisc-convert CKPT --list-prefixes)')
    p.add_argument('--check', action='store_true',
                   help="load the written file into the target library's "
                   'model (torchvision, timm, mmpretrain, mmdet; when '
                   'installed) and report missing / unexpected keys')
    p.add_argument('--num-heads', type=int,
                   help="a ViT's attention heads (not in the weights; "
                   "default: from the checkpoint's config)")
    return p


def export() -> None:
    """``mm-instdisc-export CKPT --to FORMAT OUT [--check]``: write the
    backbone of CKPT for another library and print a report
    (:func:`export_cli` on ``sys.argv``; a failed ``--check`` exits with
    status 1, bad input with the error)."""
    export_cli(sys.argv[1:])


def export_cli(argv):
    """``mm-instdisc-export`` on the argument list ``argv``.

    Returns:
        dict: The report of ``mm_instdisc.utils.export.export_backbone``.

    Raises:
        SystemExit: Bad arguments (status 2), bad input (the message), a
            ``--check`` that found missing, unexpected or mismatched keys
            other than the classifier (status 1).
    """
    from mm_instdisc.utils.export import export_backbone, format_report
    args = _export_parser().parse_args(argv)
    try:
        report = export_backbone(args.ckpt, args.to, args.out,
                                 src_prefix=args.src_prefix,
                                 check=args.check, num_heads=args.num_heads)
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise SystemExit(f'mm-instdisc-export: error: {e}')
    print(format_report(report), flush=True)
    chk = report['check']
    if chk is not None and not chk.get('ok', True):
        raise SystemExit(1)
    return report


def make_fmnist_coco():
    """``mm-instdisc-make-fmnist-coco [--out DIR] ...``
    (``mm_instdisc.apis.make_fmnist_coco``)."""
    from mm_instdisc.apis.make_fmnist_coco import main
    _run(main, takes_config=False)
