"""An EM-like raw image from a label volume.

Not a physical simulation; enough that a segmentation network sees the cues it relies on in
serial-section EM: dark membranes where labels change, a different grey level per object,
textured extracellular space, blur that is stronger across sections (z) than within them,
shot-like noise, and (optionally) missing or dark sections.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros((8, 32, 32), np.uint32); labels[:, 4:16, 4:28] = 1; labels[:, 16:28, 4:28] = 2
>>> raw = em_raw(labels, voxel_nm=(40, 8, 8), seed=0)
>>> raw.dtype, raw.shape
(dtype('uint8'), (8, 32, 32))
>>> bool(raw[:, 16, 10].mean() < raw[:, 10, 10].mean())  # the membrane between 1 and 2 is dark
True
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mogen.augment.render import boundaries


def em_raw(
    labels: np.ndarray,
    voxel_nm: tuple[float, float, float] = (40, 8, 8),
    membrane_nm: float = 20.0,
    blur_nm: tuple[float, float, float] = (30.0, 10.0, 10.0),
    noise: float = 0.06,
    missing_sections: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """uint8 raw [z, y, x] for a label volume [z, y, x].

    Parameters
    ----------
    labels : integer volume, 0 = extracellular space / unlabelled neuropil.
    voxel_nm : voxel size (z, y, x) in nm; membrane width and blur are given in nm.
    membrane_nm : membrane thickness drawn at every label boundary (at least one voxel).
    blur_nm : Gaussian blur sigma (z, y, x) in nm, the point-spread of imaging plus sectioning.
    noise : Gaussian noise sigma, in units of the full intensity range.
    missing_sections : probability that a z-section is missing (set to black, as in a lost or
        failed section).
    """
    rng = np.random.default_rng(seed)
    vox = np.asarray(voxel_nm, float)
    ids = np.unique(labels)
    # per-object grey level (cytoplasm), plus a textured extracellular space
    level = dict(zip(ids.tolist(), rng.uniform(0.55, 0.8, len(ids))))
    lut_keys = np.asarray(ids)
    lut_vals = np.asarray([level[i] for i in ids.tolist()], np.float32)
    img = lut_vals[np.searchsorted(lut_keys, labels)]
    texture = ndimage.gaussian_filter(rng.normal(size=labels.shape).astype(np.float32), sigma=np.maximum(60.0 / vox, 0.5))
    texture /= texture.std() + 1e-8
    img = np.where(labels == 0, 0.45 + 0.08 * texture, img + 0.03 * texture)
    # membranes: a band of boundary voxels, widened to membrane_nm in-plane
    mem = boundaries(labels)
    width = np.maximum(np.round(membrane_nm / vox / 2).astype(int), 0)
    if width.any():
        struct = np.ones(2 * width + 1, bool)
        mem = ndimage.binary_dilation(mem, structure=struct)
    img[mem] = 0.15
    img = ndimage.gaussian_filter(img, sigma=np.asarray(blur_nm, float) / vox)
    img = img + rng.normal(scale=noise, size=img.shape).astype(np.float32)
    if missing_sections > 0:
        img[rng.random(img.shape[0]) < missing_sections] = 0.0
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
