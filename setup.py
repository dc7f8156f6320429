"""mm_instdisc: pip-installable, OpenMMLab style.

* install_requires: the core (torch, numpy); extras ``[mm]`` (mmengine, mmcv,
  mmpretrain), ``[det]`` (+ mmdet, pycocotools), ``[lightly]``, ``[all]``,
  ``[tests]`` with version ranges (requirements/*.txt); tools/setup.sh installs
  the exact tested set (requirements/tested.txt).
* configs/, tools/ and metafile.yml travel in the package as
  ``mm_instdisc/.mim/`` (as in mmpretrain / mmdet): copied for a wheel or
  sdist, symlinked for an editable install. ``mm_instdisc.get_config`` finds
  the configs there; the console scripts (``mm-instdisc-train`` ...) call
  ``mm_instdisc.apis`` and need no tools/ (which ship for mmpretrain-style
  ``python .../.mim/tools/train.py`` use, as thin wrappers).
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'metafile.yml')


def read_requirements(name):
    reqs = []
    with open(osp.join(HERE, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-r'):
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Copy (wheel / sdist) or link (editable / develop) configs and tools
    into mm_instdisc/.mim."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(c in sys.argv for c in ('sdist', 'bdist_wheel', 'build', 'install')):
        mode = 'copy'
    else:
        return
    mim = osp.join(HERE, 'mm_instdisc', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(HERE, name)
        if not osp.exists(src):
            continue
        dst = osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    mm = read_requirements('mminstall.txt')
    optional = read_requirements('optional.txt')
    det = mm + [r for r in optional if r.startswith(('mmdet', 'pycocotools'))]
    lightly = [r for r in optional if r.startswith('lightly')]
    setup(
        name='mm_instdisc',
        version='0.1.0',
        description='Instance-discrimination self-supervised pretraining '
        '(NPID, AdCo, Exemplar, SplitMask) for OpenMMLab and plain PyTorch',
        long_description=open(osp.join(HERE, 'README.md')).read()
        if osp.exists(osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        packages=find_packages(include=['mm_instdisc', 'mm_instdisc.*']),
        include_package_data=True,
        package_data={'mm_instdisc': ['.mim/**/*', '.mim/*']},
        python_requires='>=3.10,<3.13',
        install_requires=read_requirements('runtime.txt'),
        extras_require={
            'mm': mm,
            'det': det,
            'lightly': lightly,
            'all': mm + optional,
            'tests': read_requirements('tests.txt'),
        },
        entry_points={
            'console_scripts': [
                'mm-instdisc-train=mm_instdisc.cli:train',
                'mm-instdisc-test=mm_instdisc.cli:test',
                'mm-instdisc-knn-eval=mm_instdisc.cli:knn_eval',
                'mm-instdisc-convert=mm_instdisc.cli:convert',
                'mm-instdisc-make-fmnist-coco=mm_instdisc.cli:make_fmnist_coco',
                'mm-instdisc-export=mm_instdisc.cli:export',
                'mm-instdisc-det-train=mm_instdisc.cli:det_train',
                'mm-instdisc-cls-train=mm_instdisc.cli:cls_train',
            ],
        },
        license='Apache-2.0',
        zip_safe=False,
    )
