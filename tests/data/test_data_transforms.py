"""Clip transforms: resize, clip-consistent flip, random erasing, normalisation, skeleton flip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csip_reid.data.transforms import (
    H36M_FLIP_PERM,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipTransform,
    RandomErasing,
    flip_skeleton,
    resize_frames,
    to_tensor,
)
from tests.helpers.datasets import skeleton_frame


def half_frame(h: int = 32, w: int = 16) -> np.ndarray:
    """Left half black, right half white."""
    f = np.zeros((h, w, 3), np.uint8)
    f[:, w // 2 :] = 255
    return f


def no_skeleton(t: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((t, 17, 3), np.float32), np.zeros((t, 17), bool)


def test_resize_and_normalise():
    frames = [np.full((50, 30, 3), v, np.uint8) for v in (0, 128, 255)]
    out = resize_frames(frames, 256, 128)
    assert all(f.shape == (256, 128, 3) for f in out)
    t = to_tensor(out)
    assert t.shape == (3, 3, 256, 128) and t.dtype == torch.float32
    for i, v in enumerate((0, 128, 255)):
        expect = (v / 255.0 - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
        np.testing.assert_allclose(t[i, :, 5, 5].numpy(), expect, rtol=1e-5)


def test_test_transform_is_deterministic_and_unflipped():
    tf = ClipTransform(height=32, width=16, augment=False)
    img, _, _ = tf([half_frame()] * 4, *no_skeleton(4), np.random.default_rng(0))
    assert (img[:, 0, :, :8] < 0).all() and (img[:, 0, :, 8:] > 0).all()


def test_flip_is_the_same_for_the_whole_clip():
    tf = ClipTransform(height=32, width=16, augment=True, erasing=RandomErasing(p=0.0))
    rng = np.random.default_rng(1)
    flipped = []
    for _ in range(200):
        img, _, _ = tf([half_frame()] * 6, *no_skeleton(6), rng)
        left_white = (img[:, 0, :, :8] > 0).flatten(1).all(1)
        assert left_white.all() or not left_white.any()  # all frames flipped, or none
        flipped.append(bool(left_white[0]))
    assert 0.35 < np.mean(flipped) < 0.65


def test_skeleton_follows_a_flipped_clip():
    sk = np.stack([skeleton_frame(0.0) - skeleton_frame(0.0)[0]] * 2)
    mask = np.ones((2, 17), bool)
    mask[:, 1] = False  # right hip missing
    always = ClipTransform(height=32, width=16, augment=True, flip_p=1.0, erasing=RandomErasing(p=0.0))
    _, s, m = always([half_frame()] * 2, sk, mask, np.random.default_rng(0))
    # joint 4 (left hip) of the mirror is joint 1 (right hip) of the original, x negated
    np.testing.assert_allclose(s[:, 4], sk[:, 1] * [-1, 1, 1])
    np.testing.assert_allclose(s[:, 14], sk[:, 11] * [-1, 1, 1])
    assert not m[:, 4].any() and m[:, 1].all()
    csip = ClipTransform(height=32, width=16, augment=True, flip_p=1.0, erasing=RandomErasing(p=0.0),
                         flip_skeletons=False)
    _, s2, m2 = csip([half_frame()] * 2, sk, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(s2, sk)
    np.testing.assert_array_equal(m2, mask)


def test_flip_perm_is_an_involution_on_h36m_pairs():
    perm = np.asarray(H36M_FLIP_PERM)
    assert (perm[perm] == np.arange(17)).all()
    assert {(1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)} <= {(i, int(perm[i])) for i in range(17)}
    sk = skeleton_frame(3.0)[None]
    twice, _ = flip_skeleton(*flip_skeleton(sk, np.ones((1, 17), bool)))
    np.testing.assert_allclose(twice, sk)


def test_random_erasing_pastes_one_rectangle_where_sampled():
    er = RandomErasing(p=1.0)
    rng = np.random.default_rng(5)
    base = np.full((256, 128, 3), 7, np.uint8)
    corners = set()
    for _ in range(100):
        out = er(base, rng)
        changed = (out != base).any(-1)
        ys, xs = np.nonzero(changed)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        box = out[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3)
        assert (box == box[0]).all()  # one solid colour filling the bounding box
        area = (y1 - y0 + 1) * (x1 - x0 + 1) / (256 * 128)
        assert 0.015 < area < 0.21
        corners.add((int(y0), int(x0)))
    assert (base == 7).all()  # input untouched
    assert len(corners) > 90  # positions vary freely (CSIP pasted at (w, h) of the patch)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_random_erasing_probability_is_p(p):
    er = RandomErasing(p=p)
    rng = np.random.default_rng(2)
    base = np.zeros((64, 32, 3), np.uint8)
    rate = np.mean([(er(base, rng) != base).any() for _ in range(2000)])
    assert abs(rate - p) < 0.04  # CSIP's U(-1, 1) <= p draw would give 0.75 for p = 0.5
