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

import math

import numpy as np
import torch


def user_matrix(angle_deg: float, tx_frac: float, ty_frac: float) -> np.ndarray:
    """[3,3] float64 user matrix for one frame."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, tx_frac], [-s, c, ty_frac], [0.0, 0.0, 1.0]], dtype=np.float64)


def input_transform(angle_deg: float, tx_frac: float, ty_frac: float) -> np.ndarray:
    """[3,3] float64 matrix to store in `synthesis.input.transform` (inverse of the user matrix)."""
    return np.linalg.inv(user_matrix(angle_deg, tx_frac, ty_frac))


def params_from_user_matrix(m: np.ndarray) -> tuple[float, float, float]:
    """(angle_deg, tx_frac, ty_frac) of a user matrix (rotation part assumed orthonormal)."""
    m = np.asarray(m, dtype=np.float64)
    angle = math.degrees(math.atan2(m[0, 1], m[0, 0]))
    return angle, float(m[0, 2]), float(m[1, 2])


def params_from_input_transform(m: np.ndarray) -> tuple[float, float, float]:
    """(angle_deg, tx_frac, ty_frac) of a matrix as stored in `synthesis.input.transform`."""
    return params_from_user_matrix(np.linalg.inv(np.asarray(m, dtype=np.float64)))


def input_transforms(params: np.ndarray) -> torch.Tensor:
    """Batch version: params [N,3] (angle_deg, tx_frac, ty_frac) -> float32 tensor [N,3,3]."""
    params = np.asarray(params, dtype=np.float64).reshape(-1, 3)
    mats = [input_transform(*row) for row in params]
    stacked = np.stack(mats) if mats else np.zeros((0, 3, 3))
    return torch.from_numpy(stacked.astype(np.float32))


IDENTITY = np.eye(3, dtype=np.float64)
