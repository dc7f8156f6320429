"""Reading mmengine data samples (torch only)."""
from typing import List, Optional

import torch
from torch import Tensor


def sample_indices(data_samples: Optional[List],
                   device: torch.device) -> Tensor:
    """Each sample's dataset index (``sample_idx`` metainfo). Shape (B, )."""
    if not data_samples:
        raise ValueError('NPID needs data samples carrying `sample_idx` to '
                         'address the memory bank, got none.')
    idx = []
    for i, ds in enumerate(data_samples):
        if 'sample_idx' not in ds:
            raise ValueError(
                f"Data sample {i} has no 'sample_idx' (keys: "
                f'{sorted(ds.metainfo_keys())}). NPID addresses its memory '
                "bank with it: keep 'sample_idx' in PackInputs' meta_keys "
                '(it is there by default) and use a dataset derived from '
                "mmengine's BaseDataset, which sets it.")
        idx.append(int(ds.sample_idx))
    return torch.tensor(idx, dtype=torch.long, device=device)
