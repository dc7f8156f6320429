"""Build a data-dependent SplitMask tokeniser codebook (random patches or
k-means) from a config's training data, offline.

    python tools/build_splitmask_tokenizer.py CONFIG --out tok.pth \
        [--mode kmeans|random_patches] [--num-images 10000] [--iters 10]

The file holds the tokeniser's state_dict (codebook, fitted flag); train with
``--cfg-options model.tokenizer_checkpoint=tok.pth
model.target_generator.mode=kmeans`` (the mode must match). Alternatively
add ``dict(type='SplitMaskTokenizerHook')`` to custom_hooks to fit it at the
start of training. Deterministic: the same data, seed and settings give the
same codebook.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner, set_random_seed  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config')
    p.add_argument('--out', required=True, help='output .pth file')
    p.add_argument('--mode', default=None,
                   choices=['random_patches', 'kmeans'],
                   help="overrides model.target_generator.mode")
    p.add_argument('--num-images', type=int, default=10000)
    p.add_argument('--max-patches', type=int, default=500000)
    p.add_argument('--iters', type=int, default=10, help='k-means steps')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS

    import mm_instdisc.engine  # noqa: F401
    import mm_instdisc.models  # noqa: F401
    from mm_instdisc.modules.splitmask import collect_patches
    tok_cfg = cfg.model.target_generator
    if args.mode:
        tok_cfg.mode = args.mode
    if tok_cfg.get('mode', 'random_projection') == 'random_projection':
        raise SystemExit('The random_projection tokeniser needs no data; '
                         'choose --mode random_patches or kmeans.')
    tok = MODELS.build(tok_cfg)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=True, seed=0)
    # the training augmentations draw from the global generators
    set_random_seed(tok.seed)
    loader = Runner.build_dataloader(loader_cfg, seed=tok.seed)
    patches = collect_patches(tok, preprocessor, loader, args.num_images,
                              args.max_patches, tok.seed)
    tok.fit(patches, iters=args.iters)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save({'state_dict': tok.state_dict(),
                'meta': dict(mode=tok.mode, vocab_size=tok.vocab_size,
                             patch_size=tok.patch_size, seed=tok.seed,
                             num_patches=int(patches.shape[0]),
                             config=os.path.abspath(args.config))}, args.out)
    print(f'{tok.mode} codebook {tuple(tok.codebook.shape)} from '
          f'{patches.shape[0]} patches -> {args.out}')


if __name__ == '__main__':
    main()
