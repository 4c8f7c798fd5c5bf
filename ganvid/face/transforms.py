"""The StyleGAN3 input transform that turns the aligned render into the unaligned crop.

Both crops are quads over the same frame (see `ganvid.face.align` for the conventions), so the
transform follows from the two quads exactly; nothing is re-detected.

SG3's frame (nvidia-sg3.md §2.5): an image of side S spans [-0.5, 0.5]² in units of its width,
centred, y pointing down like pixel rows; pixel j has its centre at p = (j + 0.5)/S − 0.5, the
same point as continuous crop coordinate j + 0.5. SynthesisInput evaluates its Fourier features
at T·p with T = (learned rotation/translation)·`transform`, and `transform` holds the inverse of
the user matrix U = [[c, s, tx], [−s, c, ty]] (`user_matrix` below). Hence, with
A(q) the image rendered with the identity (the aligned pose), the render with U is
out(p) = A(U⁻¹·p): the aligned point q appears at p = U·q.

A quad maps SG3 coordinates to frame pixel-index coordinates by f = c + B·q, where c is the
quad's centre and B = [top edge | left edge] (columns q3−q0 and q1−q0). The same frame point
seen from the aligned crop (q) and from the unaligned crop (p) gives
p = B_U⁻¹·B_A·q + B_U⁻¹·(c_A − c_U), so

    U = [[B_U⁻¹·B_A, B_U⁻¹·(c_A − c_U)], [0, 0, 1]].

B_U⁻¹·B_A is k·R(angle) with R = [[cos, sin], [−sin, cos]]: a positive angle turns the face
counter-clockwise on screen (like PIL's `Image.rotate`), and k is the face's size in the
unaligned crop relative to the aligned one. SG3's transform has no scale, so k is reported (it
is 1 when the window has the aligned quad's side) and the translation is chosen so that the
aligned crop's centre lands exactly where it belongs. With k = 1 this equals stylegan3-editing's
rule (rotation by arccos with the 360−r rule, translation = (left eye in the unaligned crop −
left eye of the rotated aligned crop) / width), without its re-detection error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ganvid.face.align import frame_to_quad_matrix, quad_to_frame_matrix

# ----------------------------------------------------------------------------- the SG3 convention
# A similarity motion of the image: rotation `angle_deg` and translation (`tx_frac`, `ty_frac`)
# in image widths. Its matrix is the *user matrix* (NVIDIA's `make_transform`); the synthesis
# network stores its INVERSE in `synthesis.input.transform` (`ganvid.nn.sg3_transforms` adds
# the batched torch form).

IDENTITY = np.eye(3, dtype=np.float64)


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


@dataclass(frozen=True)
class CropTransform:
    """SG3 input transform of one frame: aligned render -> unaligned crop."""

    angle_deg: float
    """Counter-clockwise turn of the face on screen, degrees."""
    tx_frac: float
    """Horizontal shift of the aligned crop's centre, in unaligned-crop widths (+ = right)."""
    ty_frac: float
    """Vertical shift, in unaligned-crop widths (+ = down)."""
    scale: float = 1.0
    """Face size in the unaligned crop / in the aligned crop (SG3 cannot render it; 1 = exact)."""

    @property
    def params(self) -> tuple[float, float, float]:
        """(angle_deg, tx_frac, ty_frac), the arguments of `input_transform`."""
        return (self.angle_deg, self.tx_frac, self.ty_frac)

    def user_matrix(self) -> np.ndarray:
        """[3,3] user matrix (NVIDIA `make_transform`)."""
        return user_matrix(*self.params)

    def input_transform(self) -> np.ndarray:
        """[3,3] matrix for `synthesis.input.transform` (the inverse of the user matrix)."""
        return input_transform(*self.params)


def quad_basis(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre [2], B [2,2]) with frame point = centre + B @ q for SG3 crop coordinates q."""
    quad = np.asarray(quad, dtype=np.float64)
    basis = np.stack([quad[3] - quad[0], quad[1] - quad[0]], axis=1)
    return quad.mean(axis=0), basis


def transform_from_quads(aligned_quad: np.ndarray, unaligned_quad: np.ndarray) -> CropTransform:
    """The exact transform between two quads over the same frame (formula in the module doc)."""
    c_a, b_a = quad_basis(aligned_quad)
    c_u, b_u = quad_basis(unaligned_quad)
    b_u_inv = np.linalg.inv(b_u)
    linear = b_u_inv @ b_a
    translation = b_u_inv @ (c_a - c_u)
    # closest k·R to `linear` ([[k c, k s], [-k s, k c]]): average the two estimates of each entry
    kc = (linear[0, 0] + linear[1, 1]) / 2
    ks = (linear[0, 1] - linear[1, 0]) / 2
    return CropTransform(
        angle_deg=math.degrees(math.atan2(ks, kc)),
        tx_frac=float(translation[0]),
        ty_frac=float(translation[1]),
        scale=float(math.hypot(kc, ks)),
    )


def _sg3_from_pixels(size: int) -> np.ndarray:
    """[3,3]: crop pixel-index coords -> SG3 coords ((j + 0.5)/size − 0.5)."""
    offset = 0.5 / size - 0.5
    return np.array([[1 / size, 0, offset], [0, 1 / size, offset], [0, 0, 1]], dtype=np.float64)


def render_matrix(transform: CropTransform, size: int) -> np.ndarray:
    """[3,3] map from aligned-crop pixel-index coords to where SG3 puts them in its render.

    `cv2.warpAffine(aligned, M[:2], (size, size))` shows what the generator draws with this
    transform, if it drew the aligned crop (scale ignored, as SG3 ignores it).
    """
    to_sg3 = _sg3_from_pixels(size)
    return np.linalg.inv(to_sg3) @ transform.user_matrix() @ to_sg3


def aligned_to_unaligned_matrix(
    aligned_quad: np.ndarray, unaligned_quad: np.ndarray, size: int
) -> np.ndarray:
    """[3,3] exact map aligned-crop pixel coords -> unaligned-crop pixel coords (scale kept)."""
    return frame_to_quad_matrix(unaligned_quad, size) @ quad_to_frame_matrix(aligned_quad, size)


def params_array(transforms: list[CropTransform]) -> np.ndarray:
    """[N,3] float64 (angle_deg, tx_frac, ty_frac) rows."""
    return np.array([t.params for t in transforms], dtype=np.float64).reshape(-1, 3)


def input_transforms(params: np.ndarray) -> np.ndarray:
    """[N,3] params -> [N,3,3] float64 matrices for `synthesis.input.transform`."""
    params = np.asarray(params, dtype=np.float64).reshape(-1, 3)
    return np.stack([input_transform(*row) for row in params]).reshape(-1, 3, 3)


def params_from_input_transforms(matrices: np.ndarray) -> np.ndarray:
    """[N,3,3] stored (inverse) matrices -> [N,3] params; inverse of `input_transforms`."""
    matrices = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    rows = [params_from_input_transform(m) for m in matrices]
    return np.array(rows, dtype=np.float64).reshape(-1, 3)
