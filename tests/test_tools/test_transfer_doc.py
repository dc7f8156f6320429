"""docs/transfer.md, "Your own data, end to end": every command of the
section's bash block runs as written, in a directory outside the checkout,
with the installed console scripts (issue 35)."""
import json
import os
import os.path as osp
import pickle
import shlex
import subprocess
import sysconfig

import numpy as np
import pytest
import torch

from tests.helpers import ROOT

DOC = osp.join(ROOT, 'docs', 'transfer.md')
HEADING = '## Your own data, end to end'
SCRIPTS = ('mm-instdisc-train', 'mm-instdisc-export', 'mm-instdisc-det-train',
           'mm-instdisc-cls-train')
# export's options that take a value: the rest of its words are CKPT, OUT
EXPORT_VALUED = ('--to', '--src-prefix', '--num-heads')


def bash_block(text, heading):
    """The commands of the first ```bash block after ``heading`` (a line of
    the markdown), its continuation lines joined; the block must come
    before the next ``## `` heading. Raises ``ValueError`` naming what is
    missing."""
    lines = text.splitlines()
    if heading not in lines:
        raise ValueError(f'No line {heading!r} in the markdown.')
    commands, in_block, cont = [], False, ''
    for line in lines[lines.index(heading) + 1:]:
        if not in_block:
            if line.startswith('## '):
                break
            in_block = line.strip() == '```bash'
            continue
        if line.strip() == '```':
            return commands
        cont += line.strip()
        if cont.endswith('\\'):
            cont = cont[:-1].rstrip() + ' '
        elif cont:
            commands.append(cont)
            cont = ''
    raise ValueError(f'No complete ```bash block in the section {heading!r}.')


def doc_commands():
    with open(DOC, encoding='utf-8') as f:
        return bash_block(f.read(), HEADING)


def test_bash_block_is_parsed_from_its_own_section():
    text = ('## A\n\n```bash\nnot-this\n```\n\n## B\ntext\n\n```python\n'
            'x = 1\n```\n```bash\nfirst --a 1 \\\n    --b 2\nsecond\n```\n'
            '```bash\nthird\n```\n')
    assert bash_block(text, '## B') == ['first --a 1 --b 2', 'second']
    with pytest.raises(ValueError, match="No line '## C'"):
        bash_block(text, '## C')
    with pytest.raises(ValueError, match='No complete'):
        bash_block('## A\ntext\n## B\n```bash\nx\n```\n', '## A')


def _outputs(argv):
    """What a command must leave behind (relative to its directory): the
    export's file, or ``epoch_E.pth`` in the run's ``--work-dir``."""
    if argv[0] == 'mm-instdisc-export':
        words = [w for prev, w in zip(argv[1:], argv[2:])
                 if not w.startswith('--') and prev not in EXPORT_VALUED]
        return [words[-1]]
    opts = dict(zip(argv, argv[1:]))
    return [osp.join(opts['--work-dir'], f'epoch_{opts["--epochs"]}.pth')]


def test_block_runs_every_step_of_the_acceptance():
    """The block holds what issue 35 asks for, each step a console script
    of the package with a known output path."""
    argvs = [shlex.split(c) for c in doc_commands()]
    assert all(a[0] in SCRIPTS for a in argvs), [a[0] for a in argvs]
    by_script = {s: [a for a in argvs if a[0] == s] for s in SCRIPTS}
    assert len(by_script['mm-instdisc-train']) == 1
    fmts = sorted(a[a.index('--to') + 1] for a in
                  by_script['mm-instdisc-export'])
    assert fmts == ['detectron2', 'mmdet', 'timm', 'torchvision']
    det = by_script['mm-instdisc-det-train']
    assert sorted('--random-init' in a for a in det) == [False, True]
    cls = by_script['mm-instdisc-cls-train']
    assert {a[a.index('--mode') + 1] for a in cls} == {'probe', 'finetune'}
    assert sum('--fraction' in a for a in cls) == 1
    for a in argvs:
        if a[0] != 'mm-instdisc-export':
            assert ('--work-dir' in a and '--epochs' in a
                    and a[a.index('--epochs') + 1] == '1'), a
    outputs = [o for a in argvs for o in _outputs(a)]
    assert len(set(outputs)) == len(outputs), outputs


def _save(path, arr):
    from PIL import Image
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def write_doc_folders(root, seed=0):
    """The section's three folders, tiny: ``my_images/`` (16 images of
    40x40, grey and colour, in two sub-folders), ``my_coco/`` (train / val
    jsons of 6 RGB images each, 64x48 and 80x64, 3 categories, boxes only,
    below ``images/``) and ``my_labelled/`` (3 classes, 4 train and 2 val
    RGB images each, every class with its own bright band)."""
    rng = np.random.default_rng(seed)
    for i in range(16):
        shape = (40, 40, 3) if i % 2 else (40, 40)
        _save(osp.join(root, 'my_images', f'part{i % 2}', f'{i}.png'),
              rng.integers(0, 256, shape, dtype=np.uint8))
    classes = ('ant', 'bee', 'cow')
    for split, n in (('train', 4), ('val', 2)):
        for c, name in enumerate(classes):
            for i in range(n):
                img = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
                img[12 * c:12 * c + 12] = 220
                _save(osp.join(root, 'my_labelled', split, name, f'{i}.png'),
                      img)
    for split in ('train', 'val'):
        images, anns = [], []
        for i, (w, h) in enumerate([(64, 48), (80, 64)] * 3, start=1):
            name = f'{split}_{i}.png'
            _save(osp.join(root, 'my_coco', 'images', name),
                  rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            images.append(dict(id=i, file_name=name, width=w, height=h))
            for k, (x, y) in enumerate(((4, 5), (30, 20))):
                anns.append(dict(id=len(anns) + 1, image_id=i,
                                 category_id=1 + (i + k) % 3,
                                 bbox=[x, y, 22, 18], area=22 * 18,
                                 iscrowd=0))
        coco = dict(images=images, annotations=anns, categories=[
            dict(id=c + 1, name=n) for c, n in enumerate(classes)])
        with open(osp.join(root, 'my_coco', f'{split}.json'), 'w') as f:
            json.dump(coco, f)


def test_fixed_epochs_are_not_capped_by_the_base_recipes_budget(tmp_path):
    """``mm-instdisc-train npid --epochs E`` trains E epochs: the folder
    config's base recipe has ``time_budget_minutes = 13``, which the
    launcher would otherwise apply (and refuse for E = 1, a warm-up of the
    whole run)."""
    from mmengine.config import Config

    from mm_instdisc.apis.train import merge_args, parse_args
    from mm_instdisc.cli import train_folder
    write_doc_folders(str(tmp_path))
    work_dir = str(tmp_path / 'work')
    for epochs in (1, 3):
        path = train_folder(['npid', '--data', str(tmp_path / 'my_images'),
                             '--epochs', str(epochs), '--size', '32',
                             '--work-dir', work_dir, '--dry-run'])
        cfg = merge_args(Config.fromfile(path),
                         parse_args([path, '--work-dir', work_dir]))
        assert cfg.train_cfg.type == 'EpochBasedTrainLoop', cfg.train_cfg
        assert cfg.train_cfg.max_epochs == epochs


def _installed_env():
    """This environment with the installed package's scripts first on PATH
    and the checkout off PYTHONPATH, one thread."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PATH'] = os.pathsep.join(
        [sysconfig.get_path('scripts'), env.get('PATH', '')])
    keep = [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
            if p and osp.realpath(p) != osp.realpath(ROOT)]
    if keep:
        env['PYTHONPATH'] = os.pathsep.join(keep)
    else:
        env.pop('PYTHONPATH', None)
    return env


@pytest.mark.subprocess
def test_doc_commands_run_as_written_from_another_directory(tmp_path):
    write_doc_folders(str(tmp_path))
    env = _installed_env()
    for command in doc_commands():
        r = subprocess.run(command, shell=True, cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (command, r.stdout[-2000:],
                                   r.stderr[-3000:])
        argv = shlex.split(command)
        for out in _outputs(argv):
            assert (tmp_path / out).is_file(), (command, out)
        if '--check' in argv:
            assert 'check (' in r.stdout and ': OK;' in r.stdout, r.stdout
    # the exported files in their libraries' names
    tv = torch.load(tmp_path / 'npid_torchvision.pth', weights_only=True)
    assert 'conv1.weight' in tv and 'layer4.1.bn2.running_var' in tv
    mmdet = torch.load(tmp_path / 'npid_mmdet.pth', weights_only=True)
    assert all(k.startswith('backbone.') for k in mmdet['state_dict'])
    with open(tmp_path / 'npid_detectron2.pkl', 'rb') as f:
        d2 = pickle.load(f)
    assert 'stem.conv1.weight' in d2['model'] and 'res5.1.conv2.weight' in \
        d2['model']
    # the filled-in configs the runs wrote into their work dirs
    for work_dir in ('det_npid', 'det_random_init', 'cls_probe',
                     'cls_finetune', 'cls_finetune_half'):
        assert list((tmp_path / 'work_dirs' / work_dir).glob('*.py')), \
            work_dir
    half = (tmp_path / 'work_dirs' / 'cls_finetune_half').glob('*.py')
    assert any('fraction = 0.5' in p.read_text() for p in half)
