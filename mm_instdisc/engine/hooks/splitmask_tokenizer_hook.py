from typing import Optional

import torch
from mmengine.dist import broadcast, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from mm_instdisc.modules.splitmask import SplitMaskTokenizer, collect_patches
from mm_instdisc.utils.checkpoint import unwrap_model


@HOOKS.register_module()
class SplitMaskTokenizerHook(Hook):
    """Fits a data-dependent SplitMask tokeniser before training.

    For ``mode='random_patches'`` or ``'kmeans'``: if the model's
    ``target_generator`` is not fitted yet (a resumed or loaded checkpoint
    brings a fitted codebook, and then nothing happens), rank 0 collects
    patches of ``num_images`` training images, fits the codebook and
    broadcasts it to every rank. Random-projection tokenisers need nothing.
    The codebook is a persistent buffer: saved with every checkpoint.

    Args:
        num_images (int): Training images to sample patches from. Defaults
            to 10000.
        max_patches (int): Patches kept for fitting. Defaults to 500000.
        iters (int): k-means iterations. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, num_images: int = 10000, max_patches: int = 500000,
                 iters: int = 10) -> None:
        self.num_images = int(num_images)
        self.max_patches = int(max_patches)
        self.iters = int(iters)

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        tok: Optional[SplitMaskTokenizer] = getattr(model, 'target_generator',
                                                    None)
        if not isinstance(tok, SplitMaskTokenizer):
            raise TypeError('SplitMaskTokenizerHook needs a model whose '
                            'target_generator is a SplitMaskTokenizer, got '
                            f'{type(tok).__name__}.')
        if tok.is_fitted:
            return
        if get_rank() == 0:
            patches = collect_patches(tok, model.data_preprocessor,
                                      runner.train_dataloader,
                                      self.num_images, self.max_patches,
                                      tok.seed)
            tok.fit(patches, iters=self.iters)
            print_log(f'SplitMaskTokenizerHook: fitted a {tok.mode} codebook '
                      f'of {tok.vocab_size} from {patches.shape[0]} patches.',
                      logger='current')
        broadcast(tok.codebook, src=0)
        fitted = tok.fitted.to(torch.uint8)  # gloo has no bool
        broadcast(fitted, src=0)
        tok.fitted.copy_(fitted.bool())
