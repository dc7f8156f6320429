"""The one head of the self-supervised algorithms: a loss built from the
registry, as mmpretrain's heads build theirs.

The instance-discrimination losses (:mod:`mm_instdisc.modules`) compute their
own logits from what the algorithm hands them (a memory bank, a queue, the
adversarial negatives, the decoder's tokens), so a head has nothing left to
do but own its loss: ``head=dict(type='LossHead', loss=dict(type='NPIDLoss',
mode='nce', num_negatives=4096))``. The loss is ``head.loss_module``, so the
checkpoint keys (``head.loss_module.log_z``, the parametric classifier
``head.loss_module.weight``, SplitMask's ``head.loss_module.predictor``)
are those of the per-method heads this class replaced.
"""
from typing import List, Optional, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class LossHead(BaseModule):
    """A head that builds ``loss`` from the registry and computes it.

    Args:
        loss (dict): Config of a registered loss module, e.g.
            ``dict(type='NPIDLoss', mode='nce', num_negatives=4096)``,
            ``AdCoLoss``, ``ExemplarLoss``, ``ParametricInstanceLoss`` or
            ``SplitMaskLoss``; every argument is the loss's.
        init_cfg (dict or list[dict], optional): Initialization config.

    Example:
        >>> import torch
        >>> import mm_instdisc.models  # noqa: F401 (registers the losses)
        >>> head = MODELS.build(dict(type='LossHead', loss=dict(
        ...     type='NPIDLoss', mode='softmax', temperature=0.07)))
        >>> f = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
        >>> head.loss(f, torch.arange(4), f).shape
        torch.Size([])
    """

    def __init__(self, loss: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **unknown) -> None:
        if unknown or not isinstance(loss, dict) or 'type' not in loss:
            keys = ', '.join(f'{k}={v!r}' for k, v in unknown.items())
            raise TypeError(
                'LossHead takes loss=dict(type=<registered loss>, ...) and '
                f'init_cfg only; got loss={loss!r}'
                + (f' and {keys}: the loss\'s arguments go in loss=dict(...)'
                   ' (in --cfg-options: model.head.loss.<key>=...)'
                   if unknown else ''))
        super().__init__(init_cfg=init_cfg)
        self.loss_module = MODELS.build(loss)

    def loss(self, *args, **kwargs):
        """The loss module's forward: see the loss class for its inputs."""
        return self.loss_module(*args, **kwargs)


# the per-method heads LossHead replaced -> their loss; an old config gets
# the equivalent new one in the error
REPLACED = {'NPIDHead': 'NPIDLoss', 'AdCoHead': 'AdCoLoss',
            'ExemplarHead': 'ExemplarLoss',
            'ParametricInstanceHead': 'ParametricInstanceLoss',
            'SplitMaskHead': 'SplitMaskLoss'}


def _replaced(old: str, new: str):

    def build(**kwargs):
        kwargs.pop('init_cfg', None)
        if 'loss_mode' in kwargs:  # NPIDHead's name of NPIDLoss's mode
            kwargs['mode'] = kwargs.pop('loss_mode')
        args = ''.join(f', {k}={v!r}' for k, v in kwargs.items())
        raise TypeError(
            f"head type '{old}' was replaced by LossHead, which builds its "
            f"loss from the registry: head=dict(type='LossHead', "
            f"loss=dict(type='{new}'{args}))")

    build.__name__ = old
    return build


for _old, _new in REPLACED.items():
    MODELS.register_module(name=_old, module=_replaced(_old, _new))
