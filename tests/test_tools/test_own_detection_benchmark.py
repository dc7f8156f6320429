"""benchmarks/own_detection.py without training: its box-only json, the
reading of mmengine's scalars, the report's statistics and argument errors
(the runs themselves are mm-instdisc-det-train, tested in
test_det_own_coco.py and test_transfer_doc.py)."""
import json
import os.path as osp
import statistics

import pytest
import torch

from tests.helpers import benchmark_script


def test_box_only_json_drops_segmentations(tmp_path):
    ann = tmp_path / 'instances_train.json'
    coco = dict(images=[dict(id=1, file_name='a.png', width=8, height=8)],
                categories=[dict(id=1, name='x')],
                annotations=[dict(id=1, image_id=1, category_id=1,
                                  bbox=[1, 1, 3, 3], area=9, iscrowd=0,
                                  segmentation=[[1, 1, 4, 1, 4, 4]])])
    ann.write_text(json.dumps(coco))
    with benchmark_script('own_detection') as od:
        out = od.box_only(str(ann))
    boxes = json.load(open(out))
    assert out.endswith('_boxes.json')
    assert 'segmentation' not in boxes['annotations'][0]
    assert boxes['annotations'][0]['bbox'] == [1, 1, 3, 3]
    assert 'segmentation' in json.load(open(ann))['annotations'][0]


def test_last_validation_metrics_are_read_in_percent(tmp_path):
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    rows = [{'loss': 1.0, 'step': 1},
            {'coco/bbox_mAP': 0.1, 'step': 1},
            {'coco/bbox_mAP': 0.25, 'coco/segm_mAP': 0.3, 'step': 2}]
    (run / 'scalars.json').write_text('\n'.join(map(json.dumps, rows)))
    with benchmark_script('own_detection') as od:
        got = od.last_metrics(str(tmp_path))
        assert got == pytest.approx({'bbox_mAP': 25.0, 'segm_mAP': 30.0})
        with pytest.raises(RuntimeError, match='no COCO metrics'):
            od.last_metrics(str(tmp_path / '20260101_000000'))


def test_report_gives_mean_std_and_every_seed(tmp_path):
    ckpt = tmp_path / 'npid.pth'
    torch.save(dict(meta=dict(iter=7, epoch=1), state_dict={}), ckpt)
    with benchmark_script('own_detection') as od:
        args = od.parse_args(['--start', f'npid={ckpt}', '--sets',
                              'stardist', '--out', str(tmp_path / 'r.md'),
                              '--about', 'npid=made by hand'])
        aps = {'random': [50.0, 52.0, 54.0], 'npid': [60.0, 61.0, 65.0]}
        results = [dict(settings=dict(set='stardist', arch=arch, start=s,
                                      seed=i),
                        metrics=dict(bbox_mAP=v, bbox_mAP_50=90.0,
                                     segm_mAP=v + 1), minutes=1.0)
                   for arch in ('faster-rcnn', 'mask-rcnn')
                   for s, vals in aps.items() for i, v in enumerate(vals)]
        sets = {'stardist': ('tr.json', 'tr', 'te.json', 'te')}
        od.write_report(results, args, sets, started=0)
    text = (tmp_path / 'r.md').read_text()
    m, s = statistics.mean(aps['npid']), statistics.stdev(aps['npid'])
    assert f'| npid | {m:.2f} +- {s:.2f} |' in text
    assert '60.00, 61.00, 65.00' in text
    assert 'random init (architecture of npid)' in text
    assert '7 iterations, 1 epochs): made by hand' in text
    assert osp.isfile(tmp_path / 'r.png')
    assert len(json.load(open(tmp_path / 'r.json'))) == len(results)


def test_bad_starts_are_refused(tmp_path, capsys):
    ckpt = tmp_path / 'a.pth'
    ckpt.write_bytes(b'x')
    with benchmark_script('own_detection') as od:
        for bad in ('random=' + str(ckpt), 'npid', 'npid=/no/such.pth'):
            with pytest.raises(SystemExit):
                od.parse_args(['--start', bad])
            assert bad.split('=')[0] in capsys.readouterr().err
