"""Still images on disk: read as uint8 RGB, encode and write atomically (PNG lossless, JPEG q95).

Photos the user names and frames in a work dir are read by the same code; only the error
differs (a user's file that is missing is an InputError, a work dir's a WorkdirError).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ganvid.errors import InputError
from ganvid.files import atomic_write_bytes


def decode_rgb(path: str | os.PathLike) -> np.ndarray | None:
    """uint8 [H, W, 3] RGB from an image file, or None when it cannot be read as an image."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[:, :, ::-1])


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """uint8 [H, W, 3] RGB of a user's photo; InputError when missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image")
    rgb = decode_rgb(path)
    if rgb is None:
        raise InputError(f"{path}: not an image OpenCV can read (PNG, JPEG, ...)")
    return rgb


def encode_image(rgb: np.ndarray, ext: str = ".png") -> bytes:
    """uint8 [H,W,3] RGB -> encoded file bytes (PNG lossless, JPEG quality 95)."""
    import cv2

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 [H,W,3], got {rgb.dtype} {rgb.shape}")
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    ok, data = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise ValueError(f"could not encode an image as {ext}")
    return data.tobytes()


def write_image(path: str | os.PathLike, rgb: np.ndarray, ext: str | None = None) -> None:
    """Write uint8 RGB atomically as `ext` (default: the path's extension, .png or .jpg)."""
    atomic_write_bytes(path, encode_image(rgb, ext or Path(path).suffix.lower()))
