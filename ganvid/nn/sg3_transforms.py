"""The one place that says how a StyleGAN3 input transform is written down.

A user (and `ganvid/face`) speaks of a similarity motion of the image: rotation `angle_deg` and
translation (`tx_frac`, `ty_frac`) in units of the image width (1.0 = the whole image). The
matrix built from them is the *user matrix* (NVIDIA's `make_transform`):

    [[cos a,  sin a, tx],
     [-sin a, cos a, ty],
     [0,      0,     1]]      with a = radians(angle_deg)

The synthesis network stores the INVERSE of the user matrix in `synthesis.input.transform`
(same convention as NVIDIA's gen_images.py and stylegan3-editing). Everything below works on
numpy float64 and on torch tensors with a leading batch dimension.
"""

from __future__ import annotations

import numpy as np
import torch

# the numpy form lives with the face geometry that produces it (face/ must not import nn/)
from ganvid.face.transforms import (  # noqa: F401  (re-exported)
    IDENTITY,
    input_transform,
    params_from_input_transform,
    params_from_user_matrix,
    user_matrix,
)


def input_transforms(params: np.ndarray) -> torch.Tensor:
    """Batch version: params [N,3] (angle_deg, tx_frac, ty_frac) -> float32 tensor [N,3,3]."""
    params = np.asarray(params, dtype=np.float64).reshape(-1, 3)
    mats = [input_transform(*row) for row in params]
    stacked = np.stack(mats) if mats else np.zeros((0, 3, 3))
    return torch.from_numpy(stacked.astype(np.float32))
