"""Clip transforms: a list of RGB uint8 frames (plus its skeletons) → a normalised tensor.

The training recipe of CSIP-ReID / TF-CLIP, in order:

1. bilinear resize of every frame to ``height x width`` (PIL's antialiased filter, as the official loaders);
2. horizontal flip with p = 0.5, drawn once per clip (every frame of a clip flips together);
3. per-frame random erasing (p = 0.5, area 2-20 %, aspect 0.3-3.33, one random RGB colour);
4. to tensor (``/255``) and mean/std normalisation (ImageNet by default; CSIP's config lists 0.5
   but its code uses ImageNet values).

Test clips get steps 1 and 4 only.

Skeletons of flipped clips: CSIP-ReID's code flips the images but not the skeletons, so a flipped
clip is paired with the mirror image of its true pose. Here the skeleton is flipped too by default
(``flip_skeletons=True``): after root-centring, x is negated and the left/right Human3.6M joints
are swapped (:data:`H36M_FLIP_PERM`). Set ``flip_skeletons=False`` to reproduce CSIP's behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from csip_reid.core.embedder import IMAGENET_MEAN, IMAGENET_STD

#: Joint j of a mirrored H36M-17 skeleton is joint ``H36M_FLIP_PERM[j]`` of the original:
#: right hip/knee/ankle (1-3) <-> left (4-6), left shoulder/elbow/wrist (11-13) <-> right (14-16).
H36M_FLIP_PERM = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)


def resize_frames(frames: Sequence[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """Resize every frame to ``height x width`` as the official loaders do (frames already that size are kept).

    PIL's bilinear filter, which widens its support when it shrinks (antialiased), unlike OpenCV's
    ``INTER_LINEAR``, which samples 2x2 pixels whatever the scale.
    """
    return [
        f if f.shape[:2] == (height, width)
        else np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR))
        for f in frames
    ]


def flip_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Mirror every frame left-right."""
    return [np.ascontiguousarray(f[:, ::-1]) for f in frames]


def flip_skeleton(skeleton: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror root-centred H36M-17 skeletons: negate x and swap left/right joints.

    Args:
        skeleton: ``(T, 17, C)`` root-centred joints, channel 0 = x.
        mask: ``(T, 17)`` joint presence.

    Returns:
        The mirrored ``(skeleton, mask)`` (new arrays).
    """
    perm = list(H36M_FLIP_PERM)
    out = np.array(skeleton[:, perm], np.float32, copy=True)
    out[..., 0] = -out[..., 0]
    return out, np.array(mask[:, perm], copy=True)


@dataclass(frozen=True)
class RandomErasing:
    """Per-frame random erasing with a solid random colour (CSIP-ReID's ``RandomSizedEarser``).

    With probability ``p`` a rectangle of ``area`` fraction of the frame and ``aspect``
    (height/width) ratio, both drawn uniformly, is filled with one random RGB colour.

    The TF-CLIP/CSIP implementation draws ``U(0, 1)`` against ``p``, so its p = 0.5 erases 50 % of
    the frames, as here. One bug of it is fixed: it pastes the colour patch at the offset
    ``(patch width, patch height)`` instead of at the sampled corner ``(x1, y1)``; here the patch
    lands where it was sampled.

    Attributes:
        p: Probability of erasing a frame.
        area: Range of the erased fraction of the frame area.
        aspect: Range of the rectangle's height/width ratio.
        max_tries: Draws before giving up on a frame (a draw fails when it does not fit).
    """

    p: float = 0.5
    area: tuple[float, float] = (0.02, 0.2)
    aspect: tuple[float, float] = (0.3, 3.33)
    max_tries: int = 100

    def __call__(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Erase (in a copy of) one ``H x W x 3`` uint8 frame, or return it unchanged."""
        if rng.random() >= self.p:
            return frame
        h_img, w_img = frame.shape[:2]
        for _ in range(self.max_tries):
            target = rng.uniform(*self.area) * h_img * w_img
            ratio = rng.uniform(*self.aspect)
            h = int(round(np.sqrt(target * ratio)))
            w = int(round(np.sqrt(target / ratio)))
            if 0 < h < h_img and 0 < w < w_img:
                y1 = int(rng.integers(0, h_img - h + 1))
                x1 = int(rng.integers(0, w_img - w + 1))
                out = frame.copy()
                out[y1 : y1 + h, x1 : x1 + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
                return out
        return frame


def to_tensor(
    frames: Sequence[np.ndarray],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Equal-size RGB uint8 frames → ``(T, 3, H, W)`` float32, ``(x/255 - mean) / std``."""
    arr = np.stack(frames).astype(np.float32) / 255.0
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


@dataclass(frozen=True)
class ClipTransform:
    """Resize, optional augmentation, and normalisation of one clip and its skeletons.

    Attributes:
        height: Output height.
        width: Output width.
        augment: Apply the clip flip and the per-frame random erasing.
        mean: Normalisation mean (RGB, 0-1 scale).
        std: Normalisation std.
        flip_p: Probability of flipping a clip (when ``augment``).
        erasing: The random erasing applied to each frame (when ``augment``).
        flip_skeletons: Mirror the skeletons of flipped clips (see the module docstring).
    """

    height: int = 256
    width: int = 128
    augment: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    flip_p: float = 0.5
    erasing: RandomErasing = RandomErasing()
    flip_skeletons: bool = True

    def __call__(
        self,
        frames: Sequence[np.ndarray],
        skeleton: np.ndarray,
        mask: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Transform a clip.

        Args:
            frames: ``T`` RGB uint8 frames of any size.
            skeleton: ``(T, 17, 3)`` root-centred skeletons (zeros where missing).
            mask: ``(T, 17)`` joint presence.
            rng: Source of randomness for the augmentations.

        Returns:
            ``(images (T, 3, H, W) float32 tensor, skeleton, mask)``.
        """
        out = resize_frames(frames, self.height, self.width)
        if self.augment:
            if rng.random() < self.flip_p:
                out = flip_frames(out)
                if self.flip_skeletons:
                    skeleton, mask = flip_skeleton(skeleton, mask)
            out = [self.erasing(f, rng) for f in out]
        return to_tensor(out, self.mean, self.std), skeleton, mask
