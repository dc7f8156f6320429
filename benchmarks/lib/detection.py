"""Mask R-CNN fine-tuning on the composed Fashion-MNIST COCO set, one start
(a pretraining checkpoint, or ``'none'`` for random init) at a time,
resumable and reused when its result exists."""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Optional

from .runs import ROOT, _checkout, last_metrics, run_tool, same_setting

#: The CPU-sized detector (ResNet-18 w16 backbone of the per-method
#: benchmarks); the 15-minute recipes use the w32s2 variant next to it.
DET_CONFIG = osp.join(ROOT, 'configs/benchmarks/mmdetection/fmnist_coco/'
                      'mask-rcnn_resnet18-w16-fpn_1xb4-6e_fmnist-coco.py')
DET_METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
               'coco/segm_mAP_50')


def ensure_fmnist_coco(data_root: str, fmnist_root: Optional[str] = None,
                       num_train: Optional[int] = None,
                       num_val: Optional[int] = None) -> None:
    """Make the composed set with tools/dataset_converters/make_fmnist_coco.py
    unless ``data_root`` holds it (call it once before parallel runs)."""
    if osp.exists(osp.join(data_root, 'annotations', 'instances_val.json')):
        return
    cmd = [sys.executable, _checkout(osp.join(
        ROOT, 'tools/dataset_converters/make_fmnist_coco.py')),
        '--out', data_root]
    if fmnist_root:
        cmd += ['--fmnist-root', fmnist_root]
    if num_train:
        cmd += ['--num-train', str(num_train)]
    if num_val:
        cmd += ['--num-val', str(num_val)]
    subprocess.run(cmd, check=True, cwd=ROOT)


def _run(name, ckpt, work_dir, config, epochs, seed, data_root, threads):
    os.makedirs(work_dir, exist_ok=True)
    e = epochs
    opts = [
        f'train_cfg.max_epochs={e}', f'train_cfg.val_interval={e}',
        f'param_scheduler.1.end={e}',
        f'param_scheduler.1.milestones=[{max(e - 1, 1)}]',
        f'randomness.seed={seed}',
        f'train_dataloader.dataset.data_root={data_root}/',
        f'val_dataloader.dataset.data_root={data_root}/',
        f'test_dataloader.dataset.data_root={data_root}/',
        f'val_evaluator.ann_file={data_root}/annotations/instances_val.json',
        f'test_evaluator.ann_file={data_root}/annotations/instances_val.json',
        'default_hooks.checkpoint.interval=1',
    ]
    opts.append('model.backbone.init_cfg=None' if ckpt == 'none' else
                f'model.backbone.init_cfg.checkpoint={osp.abspath(ckpt)}')
    seconds = run_tool('det_train.py',
                       [config, '--work-dir', work_dir, '--cfg-options',
                        *opts], work_dir, threads,
                       f'[{name}] Mask R-CNN {e} epochs from {ckpt}')
    metrics = last_metrics(work_dir, DET_METRICS[0])
    if metrics is None:
        raise RuntimeError(f'[{name}] no COCO metrics logged in {work_dir}')
    return dict(checkpoint=ckpt, seconds=seconds,
                **{k: metrics[k] for k in DET_METRICS})


def finetune_detector(name: str, ckpt: str, work_dir: str, *,
                      data_root: str, config: str = DET_CONFIG,
                      epochs: int = 3, seed: int = 0,
                      threads: int = 1) -> dict:
    """Fine-tune ``config`` from ``ckpt`` (backbone.* keys, or ``'none'``)
    in ``work_dir``, with lr x0.1 for the last epoch, and return its COCO
    metrics (``DET_METRICS``), wall seconds and setting.

    ``work_dir/result.json`` is reused when it was made from the same
    checkpoint bytes, config, epochs and seed; an interrupted run resumes
    from its last checkpoint.
    """
    res_path = osp.join(work_dir, 'result.json')
    done = None
    if osp.exists(res_path):
        with open(res_path) as f:
            done = json.load(f)
    rel = osp.relpath(config, ROOT)
    if done and same_setting(done['setting'], ckpt, epochs, seed, rel):
        print(f'[{name}] done: {done}', flush=True)
        return done
    done = dict(setting=dict(checkpoint=ckpt, epochs=epochs, seed=seed,
                             config=rel),
                **_run(name, ckpt, work_dir, config, epochs, seed, data_root,
                       threads))
    with open(res_path, 'w') as f:
        json.dump(done, f, indent=2)
    return done
