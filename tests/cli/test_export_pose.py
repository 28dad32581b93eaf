"""Skeletons from real video through `reid index --pose`, `reid export-dataset`, and training on the export."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from tests.helpers.cli import cut_clip, gallery_info, run_reid

pytestmark = pytest.mark.slow

# three single-person spans of the Intel clip
SPANS = [(80, 180), (250, 420), (960, 1160)]


@pytest.fixture(scope="module")
def pose_gallery(videos_dir, offline_env, tmp_path_factory):
    work = tmp_path_factory.mktemp("export")
    folder = work / "videos"
    folder.mkdir()
    for i, (a, b) in enumerate(SPANS):
        cut_clip(videos_dir / "intel_one-by-one-person-detection.mp4", folder / f"person{i}.mp4", a, b)
    gallery = work / "gallery"
    run_reid("index", str(folder), "--gallery", str(gallery), "--detector", "yolox:yolox_nano", "--embedder",
             "onnx:osnet_x0_25_msmt17", "--pose", "movenet", "--camera", "cam-a", "-q",
             env_extra=offline_env, check=True)
    return work, gallery


def _records(gallery):
    from csip_reid.gallery.store import Gallery

    g = Gallery.open(gallery)
    try:
        return list(g.iter_tracklets())
    finally:
        g.close()


def test_index_stores_skeletons_for_every_tracklet(pose_gallery):
    _, gallery = pose_gallery
    info = gallery_info(gallery)
    assert info["num_tracklets"] >= 3 and info["skeleton_format"] == "h36m17-2d-conf"
    for r in _records(gallery):
        assert r.skeleton_format == "h36m17-2d-conf"
        assert r.skeleton.shape == (len(r.sample_frames), 17, 3)
        finite = np.isfinite(r.skeleton).all(-1)
        assert finite.mean() > 0.5, "MoveNet should find most joints of a walking person"
        # root-centred: the pelvis is at the origin wherever present
        pelvis = r.skeleton[finite[:, 0], 0, :2]
        np.testing.assert_allclose(pelvis, 0.0, atol=1e-6)


def test_export_without_labels_writes_template_and_layout(pose_gallery, offline_env):
    work, gallery = pose_gallery
    out = work / "export_unlabelled"
    p = run_reid("export-dataset", "--gallery", str(gallery), "--out", str(out), env_extra=offline_env, check=True)
    s = json.loads(p.stdout)
    recs = _records(gallery)
    rows = list(csv.DictReader((out / "labels_template.csv").open()))
    assert sorted(int(r["tracklet_id"]) for r in rows) == sorted(r.id for r in recs)
    jpgs = sorted((out / "train").rglob("*.jpg"))
    assert s["frames"] == len(jpgs) == sum(len(r.sample_frames) for r in recs)
    assert s["skeleton_files"] == len(list((out / "train").rglob("*.json"))) == len(jpgs)
    assert s["tracklets"]["train"] == len(recs) and s["persons"]["train"] == len(recs)
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["skeleton_format"] == "h36m17-2d-conf"


def test_labelled_export_loads_and_trains_one_step(pose_gallery, offline_env):
    from csip_reid.data import build_dataset, build_train_loader
    from csip_reid.models import build_model
    from csip_reid.models.config import load_config
    from csip_reid.models.losses import symmetric_supcon

    work, gallery = pose_gallery
    recs = _records(gallery)
    labels = work / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tracklet_id", "person", "split"])
        for r in recs:
            w.writerow([r.id, r.video_name.split(".")[0], "train"])
    out = work / "export_labelled"
    run_reid("export-dataset", "--gallery", str(gallery), "--out", str(out), "--labels", str(labels),
             env_extra=offline_env, check=True)
    ds = build_dataset("custom", out)
    assert ds.num_train_pids == len(SPANS)
    assert ds.skeleton_format == "h36m17-2d-conf"
    assert all(r.skeletons is not None for r in ds.train)

    cfg = load_config("csip_tiny")
    torch.manual_seed(0)
    loader = build_train_loader(ds, seq_len=cfg.input.seq_len, height=cfg.input.height, width=cfg.input.width,
                                batch_size=len(ds.train), sampler="shuffle", augment=False)
    batch = next(iter(loader))
    assert batch["skeleton_mask"].any()
    model = build_model(cfg, num_classes=ds.num_train_pids, num_cameras=max(ds.num_cameras, 1))
    model.freeze_visual()
    params = [p for p in model.skeleton.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-3)
    out_ = model.forward_stage1(batch["images"], batch["skeletons"], batch["camid"], batch["skeleton_mask"])
    terms = symmetric_supcon(out_["v"], out_["s"], batch["pid"], 1.0)
    loss = terms["v2s"] + terms["s2v"]
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, params))


@pytest.mark.mmpose
def test_rtmpose_random_weights_through_index(videos_dir, offline_env, tmp_path):
    pytest.importorskip("mmpose", reason="mmpose stack not installed (make mmpose)")
    clip = cut_clip(videos_dir / "intel_one-by-one-person-detection.mp4", tmp_path / "c.mp4", 250, 330)
    gallery = tmp_path / "g"
    run_reid("index", str(clip), "--gallery", str(gallery), "--detector", "yolox:yolox_nano", "--embedder",
             "onnx:osnet_x0_25_msmt17", "--pose", "rtmpose-t:random", "-q", env_extra=offline_env, check=True)
    recs = _records(gallery)
    assert recs
    for r in recs:
        assert r.skeleton is not None and r.skeleton.shape == (len(r.sample_frames), 17, 3)
        assert r.skeleton_format == "h36m17-2d-conf"
