"""The ONNX embedder on the real OSNet weights and real MARS crops."""

from __future__ import annotations

import cv2
import numpy as np

from csip_reid.core.arrays import evenly_spaced_indices
from csip_reid.core.embedder import CropPreprocess, l2_normalize
from csip_reid.core.tracklet import Tracklet
from csip_reid.pipeline.embed import create_embedder


def test_preprocess_matches_manual():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (50, 20, 3), dtype=np.uint8)
    pre = CropPreprocess(height=8, width=4)
    got = pre([crop])[0]
    rgb = cv2.resize(crop, (4, 8), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32) / 255
    want = ((rgb - np.array(pre.mean)) / np.array(pre.std)).transpose(2, 0, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def even_indices(n: int, k: int):
    return evenly_spaced_indices(n, min(n, k))


def test_even_indices():
    assert even_indices(3, 8).tolist() == [0, 1, 2]
    idx = even_indices(100, 5)
    assert idx[0] == 0 and idx[-1] == 99 and len(idx) == 5 and np.all(np.diff(idx) > 0)


def test_osnet_embeds_same_person_closer(osnet_path, mini_mars):
    emb = create_embedder(f"onnx:{osnet_path}")
    assert emb.dim == 512 and (emb.preprocess.height, emb.preprocess.width) == (256, 128)
    def load(pid, cam):
        files = sorted((mini_mars / "bbox_test" / pid).glob(f"{pid}C{cam}*.jpg"))[:8]
        assert files, f"no crops for {pid} C{cam}"
        return [cv2.imread(str(f)) for f in files]
    pids = sorted(p.name for p in (mini_mars / "bbox_test").iterdir())[:2]
    cams = {p: sorted({f.name[5] for f in (mini_mars / "bbox_test" / p).glob("*.jpg")}) for p in pids}
    a1, a2 = load(pids[0], cams[pids[0]][0]), load(pids[0], cams[pids[0]][1])
    b1 = load(pids[1], cams[pids[1]][0])
    f = emb.embed_crops([a1, a2, b1])
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    assert f[0] @ f[1] > f[0] @ f[2]
    # embed_tracklets pools the same crops the same way and sets .embedding
    t = Tracklet("v", "c", 1, frames=range(len(a1)), timestamps=np.arange(len(a1)) / 10.0,
                 boxes=np.ones((len(a1), 4)), sample_frames=range(len(a1)), crops=a1)
    e = emb.embed_tracklets([t])
    np.testing.assert_allclose(e[0], f[0], atol=1e-5)
    assert t.embedding is not None and emb.fingerprint() == create_embedder(f"onnx:{osnet_path}").fingerprint()


def test_l2_normalize_zero_safe():
    x = l2_normalize(np.zeros((2, 3)))
    assert np.all(np.isfinite(x))
