from setuptools import find_packages, setup


def read_requirements(path='requirements.txt'):
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('pytest'):
                reqs.append(line)
    return reqs


setup(
    name='mm_instdisc',
    version='0.1.0',
    description='Instance-discrimination self-supervised pretraining (NPID, AdCo, '
    'Exemplar, SplitMask) for OpenMMLab and plain PyTorch',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mm_instdisc', 'mm_instdisc.*']),
    python_requires='>=3.11,<3.12',
    # torch/torchvision and mmcv (with compiled ops) are installed by tools/setup.sh, see README.
    install_requires=['torch==2.14.1', 'torchvision==0.29.1', 'mmcv==2.1.0'] + read_requirements(),
    license='Apache-2.0',
)
