"""Make Fashion-MNIST available under a data root, offline.

Looks for the four standard IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``) in
``--source`` (default: the Debian package ``dataset-fashion-mnist``'s directory). When they are
missing it installs that package with apt-get (as root) or unpacks it without root into
``--cache``. The files are then linked into ``--out``. Idempotent.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
         't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
DEB_DIR = '/usr/share/datasets/fashion-mnist'


def has_all(d):
    return all(os.path.isfile(os.path.join(d, f)) for f in FILES)


def log(msg):
    print(f'[fashion-mnist] {msg}', flush=True)


def fetch_debian(cache):
    """Return a directory holding the IDX files, installing the Debian package if needed."""
    if has_all(DEB_DIR):
        return DEB_DIR
    unpacked = os.path.join(cache, 'dataset-fashion-mnist', DEB_DIR.lstrip('/'))
    if has_all(unpacked):
        return unpacked
    if shutil.which('apt-get') and os.geteuid() == 0:
        log('installing Debian package dataset-fashion-mnist (about 30 MB)')
        subprocess.run(['apt-get', 'update', '-qq'], check=False)
        r = subprocess.run(['apt-get', 'install', '-y', '-qq', 'dataset-fashion-mnist'])
        if r.returncode == 0 and has_all(DEB_DIR):
            return DEB_DIR
    if shutil.which('apt-get') and shutil.which('dpkg-deb'):
        log('downloading dataset-fashion-mnist without root')
        tmp = tempfile.mkdtemp()
        subprocess.run(['apt-get', 'download', 'dataset-fashion-mnist'], cwd=tmp, check=True)
        deb = glob.glob(os.path.join(tmp, 'dataset-fashion-mnist_*.deb'))[0]
        subprocess.run(['dpkg-deb', '-x', deb, os.path.join(cache, 'dataset-fashion-mnist')],
                       check=True)
        shutil.rmtree(tmp)
        if has_all(unpacked):
            return unpacked
    raise SystemExit(
        'Could not obtain Fashion-MNIST. Put the four IDX files '
        f'{FILES} into a directory and pass --source DIR.')


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--out', default='data/fashion_mnist')
    p.add_argument('--source', default=None, help='directory that already holds the IDX files')
    p.add_argument('--cache', default=os.path.expanduser('~/.cache/mm_instdisc'))
    args = p.parse_args()
    if has_all(args.out):
        log(f'ready in {args.out}')
        return
    src = args.source or fetch_debian(args.cache)
    if not has_all(src):
        sys.exit(f'{src} does not hold all of {FILES}')
    os.makedirs(args.out, exist_ok=True)
    for f in FILES:
        dst = os.path.join(args.out, f)
        if os.path.lexists(dst):
            os.remove(dst)
        os.symlink(os.path.abspath(os.path.join(src, f)), dst)
    log(f'linked {len(FILES)} files from {src} into {args.out}')


if __name__ == '__main__':
    main()
