"""evaluate_features / evaluate_embedder: frame choice per sampling mode, cameras, dense averaging,
skeleton checks, and the reference figure on real mini-MARS with the OSNet ONNX model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.embedder import Embedder, l2_normalize
from csip_reid.core.errors import DatasetError, SkeletonFormatError
from csip_reid.data import build_dataset
from csip_reid.data.sampling import dense_clips, evenly_spaced_indices, rrs_test_indices
from csip_reid.data.skeleton_io import write_skeleton_json
from csip_reid.engine.evaluate import embed_records, evaluate_embedder, evaluate_features
from csip_reid.pipeline.embed import create_embedder

# person -> [(split, "<camera>_<tracklet>", n_frames)]
TREE = {"ann": [("query", "cam1_1", 11), ("gallery", "cam2_2", 6)],
        "ben": [("query", "cam2_3", 3), ("gallery", "cam1_4", 9), ("gallery", "cam2_5", 4)]}


@pytest.fixture
def coded_root(tmp_path: Path) -> Path:
    """Custom-layout tree whose frame i is a uniform PNG of value 20 i + 5."""
    root = tmp_path / "coded"
    for person, items in TREE.items():
        for split, folder, n in items:
            d = root / split / person / folder
            d.mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(d / f"{i}.png"), np.full((8, 4, 3), 20 * i + 5, np.uint8))
    return root


@dataclass
class RecordingEmbedder(Embedder):
    """Embeds an item as l2([1, mean frame number]) and records what it was given."""

    dim: int = 2
    calls: list = field(default_factory=list)

    def embed_crops(self, crops, cameras=None, skeletons=None):
        frames = [[int(round((c[0, 0, 0] - 5) / 20)) for c in item] for item in crops]
        self.calls.append((frames, list(cameras), skeletons))
        return l2_normalize(np.array([[1.0, np.mean(f)] for f in frames]))


def _seen(emb: RecordingEmbedder) -> tuple[list, list]:
    frames = [f for call in emb.calls for f in call[0]]
    cams = [c for call in emb.calls for c in call[1]]
    return frames, cams


def test_evaluate_features_keys_and_perfect_case():
    f = np.eye(3, dtype=np.float32)
    out = evaluate_features(f, f, [0, 1, 2], [0, 1, 2], [0, 0, 0], [1, 1, 1])
    assert set(out) >= {"mAP", "r1", "r5", "r10", "r20", "num_valid_queries"}
    assert out["mAP"] == 1.0 and out["r1"] == 1.0 and out["num_valid_queries"] == 3
    swapped = evaluate_features(f, f[[1, 2, 0]], [0, 1, 2], [0, 1, 2], [0, 0, 0], [1, 1, 1])
    assert swapped["r1"] == 0.0 and swapped["r5"] == 1.0


@pytest.mark.parametrize("sampling", ["rrs", "even", "stride", "all"])
def test_frames_and_cameras_per_sampling_mode(coded_root, sampling):
    ds = build_dataset("custom", coded_root)
    emb = RecordingEmbedder(spec="fake")
    evaluate_embedder(emb, ds, sampling=sampling, seq_len=4, stride=3, batch_size=2, progress=False)
    frames, cams = _seen(emb)
    records = ds.query + ds.gallery
    expected = {
        "rrs": [rrs_test_indices(len(r), 4).tolist() for r in records],
        "even": [evenly_spaced_indices(len(r), 4).tolist() for r in records],
        "stride": [list(range(0, len(r), 3)) for r in records],
        "all": [list(range(len(r))) for r in records],
    }[sampling]
    assert frames == expected
    assert cams == [r.camid for r in records]
    assert all(len(call[0]) <= 2 for call in emb.calls)  # batch_size items per call


def test_dense_averages_clips_per_tracklet(coded_root):
    ds = build_dataset("custom", coded_root)
    emb = RecordingEmbedder(spec="fake")
    feats = embed_records(emb, ds.gallery, sampling="dense", seq_len=4, batch_size=3, progress=False)
    frames, _ = _seen(emb)
    clips = [c.tolist() for r in ds.gallery for c in dense_clips(len(r), 4)]
    assert frames == clips
    start = 0
    for i, r in enumerate(ds.gallery):
        k = len(dense_clips(len(r), 4))
        own = l2_normalize(np.array([[1.0, np.mean(c)] for c in clips[start : start + k]]))
        np.testing.assert_allclose(feats[i], l2_normalize(own.sum(0)), rtol=1e-6)
        start += k


def test_skeleton_embedders(coded_root):
    ds = build_dataset("custom", coded_root)
    needy = RecordingEmbedder(spec="fake", needs_skeleton=True, skeleton_format="h36m17-3d")
    with pytest.raises(DatasetError, match="skeletons"):
        evaluate_embedder(needy, ds, progress=False)
    rec = ds.query[1]  # ben, 3 frames: skeletons for frames 0 and 2 only
    for i in (0, 2):
        write_skeleton_json(Path(rec.frames[i]).with_suffix(".json"), np.arange(51.0).reshape(17, 3) + i,
                            "h36m17-2d-conf")
    ds2 = build_dataset("custom", coded_root)
    assert ds2.skeleton_format == "h36m17-2d-conf"
    with pytest.raises(SkeletonFormatError, match="h36m17-3d"):
        evaluate_embedder(needy, ds2, progress=False)
    needy.skeleton_format = "h36m17-2d-conf"
    embed_records(needy, [ds2.query[1]], sampling="all", progress=False, skeleton_format=ds2.skeleton_format)
    skel = needy.calls[-1][2][0]
    assert skel.shape == (3, 17, 3)
    assert np.isnan(skel[1]).all() and not np.isnan(skel[[0, 2]]).any()
    np.testing.assert_allclose(skel[0, 5, :2], [15.0, 15.0])  # x, y centred on joint 0 ...
    np.testing.assert_allclose(skel[2, :, 2], np.arange(17) * 3 + 2 + 2)  # ... confidence kept


@pytest.mark.slow
def test_reference_figure_minimars_osnet(mini_mars, osnet_path):
    """OSNet x0.25 (MSMT17), every 4th frame, mean of unit frame features, cosine: r1 0.696, mAP 0.743."""
    out = evaluate_embedder(create_embedder(f"onnx:{osnet_path}"), build_dataset("minimars", mini_mars),
                            sampling="stride", stride=4, progress=False)
    assert out["num_valid_queries"] == 23 and out["num_skipped_queries"] == 9
    assert out["r1"] == pytest.approx(0.696, abs=0.005)
    assert out["mAP"] == pytest.approx(0.743, abs=0.005)
