"""CSIP-ReID through the CLI: skeletons → train (tiny) → eval → index/query with csip: and fused modes.

The skeletons come from the real MoveNet model on the real mini-MARS crops (`reid skeletons`), the
model is the `csip_tiny` config with random initial weights, trained for one short epoch per stage.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers.cli import cut_clip, gallery_info, run_reid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(mini_mars, offline_env, tmp_path_factory):
    work = tmp_path_factory.mktemp("csip")
    sk = work / "skeletons"
    p = run_reid("skeletons", "--dataset", "minimars", "--data-root", str(mini_mars), "--pose", "movenet",
                 "--out", str(sk), "-q", env_extra=offline_env, check=True)
    s = json.loads(p.stdout[p.stdout.index("{"):])
    assert s["tracklets_written"] == 64 and s["frames_written"] == 1731 and s["format"] == "h36m17-2d-conf"
    # rerun resumes: nothing left to do
    p = run_reid("skeletons", "--dataset", "minimars", "--data-root", str(mini_mars), "--pose", "movenet",
                 "--out", str(sk), "-q", env_extra=offline_env, check=True)
    assert json.loads(p.stdout[p.stdout.index("{"):])["tracklets_skipped"] == 64
    run = work / "run"
    p = run_reid("train", "--config", "csip_tiny", "--data-root", str(mini_mars), "--dataset", "minimars",
                 "--skeletons", str(sk), "--output", str(run), "--device", "cpu", "--epochs", "1",
                 "--max-steps", "3", env_extra=offline_env, check=True)
    return run, json.loads(p.stdout[p.stdout.index("{"):])


def test_train_writes_checkpoints_and_log(trained):
    run, summary = trained
    for name in ("stage1.pt", "best.pt", "last.pt", "log.jsonl", "config.yaml"):
        assert (run / name).is_file(), name
    ckpt = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt["format"] == "csip-reid/ckpt-v1" and ckpt["stage"] == 2
    assert ckpt["skeleton_format"] == "h36m17-2d-conf"
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    stages = {ln.get("stage") for ln in lines}
    assert {1, 2} <= stages
    assert all(v == v for ln in lines for k, v in ln.items() if isinstance(v, float))  # no NaN logged


def test_eval_checkpoint_matches_training_eval(trained, mini_mars, offline_env):
    run, summary = trained
    p = run_reid("eval", "--checkpoint", str(run / "best.pt"), "--dataset", "minimars", "--data-root",
                 str(mini_mars), "--json", env_extra=offline_env, check=True)
    res = json.loads(p.stdout)
    assert res["num_valid_queries"] == 23 and 0.0 <= res["mAP"] <= 1.0
    best = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert res["mAP"] == pytest.approx(best["eval_mAP"], abs=1e-4)


def test_csip_embedder_indexes_and_queries_with_fused_modes(trained, videos_dir, offline_env, tmp_path):
    run, _ = trained
    video = videos_dir / "mmaction2_demo_skeleton.mp4"
    gallery = tmp_path / "g"
    p = run_reid("index", str(video), "--gallery", str(gallery), "--detector", "yolox:yolox_nano",
                 "--embedder", f"csip:{run / 'best.pt'}", "--pose", "movenet", "--json", "-q",
                 env_extra=offline_env, check=True)
    assert json.loads(p.stdout)["tracklets"] >= 1
    info = gallery_info(gallery)
    from csip_reid.gallery.store import Gallery
    from csip_reid.pipeline.embed import create_embedder

    assert info["skeleton_format"] == "h36m17-2d-conf"
    assert info["dim"] == create_embedder(f"csip:{run / 'best.pt'}").dim

    g = Gallery.open(gallery)
    ids, skel = g.vectors("skeleton")
    assert len(ids) == info["num_tracklets"] and skel.shape[1] > 0
    recs = list(g.iter_tracklets())
    assert all(r.skeleton is not None and r.skeleton.shape[1:] == (17, 3) for r in recs)
    g.close()
    clip = cut_clip(video, tmp_path / "q.mp4", 5, 60)
    for mode in ("appearance", "skeleton", "fused"):
        p = run_reid("query", str(clip), "--gallery", str(gallery), "--mode", mode, "--json", "-q",
                     env_extra=offline_env, check=True)
        hits = json.loads(p.stdout)["hits"]
        assert hits and all(-1.001 <= h["score"] <= 1.001 for h in hits), mode
        assert all(hits[i]["score"] >= hits[i + 1]["score"] for i in range(len(hits) - 1)), mode


def test_gallery_refuses_other_embedder(trained, videos_dir, offline_env, tmp_path):
    run, _ = trained
    clip = cut_clip(videos_dir / "mmaction2_demo_skeleton.mp4", tmp_path / "c.mp4", 0, 30)
    gallery = tmp_path / "g"
    run_reid("index", str(clip), "--gallery", str(gallery), "--detector", "yolox:yolox_nano",
             "--embedder", "onnx:osnet_x0_25_msmt17", "-q", env_extra=offline_env, check=True)
    before = gallery_info(gallery)["num_tracklets"]
    p = run_reid("index", str(clip), "--gallery", str(gallery), "--detector", "yolox:yolox_nano",
                 "--embedder", f"csip:{run / 'best.pt'}", "-q", "--force", env_extra=offline_env)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith("error: gallery") and "was built with embedder" in err
    assert gallery_info(gallery)["num_tracklets"] == before


def test_skeleton_format_mismatch_refused(trained, videos_dir, offline_env, tmp_path):
    """A skeleton model trained on 2D-conf skeletons cannot take HMR-style 3D ones (and vice versa)."""
    from csip_reid.core.errors import SkeletonFormatError
    from csip_reid.core.skeleton import check_skeleton_format

    with pytest.raises(SkeletonFormatError, match="model trained on h36m17-3d"):
        check_skeleton_format("h36m17-3d", "h36m17-2d-conf")
    run, _ = trained
    p = run_reid("index", str(videos_dir / "mmpose_demo.mp4"), "--gallery", str(tmp_path / "g"),
                 "--detector", "yolox:yolox_nano", "--embedder", f"skeleton:{run / 'best.pt'}", "-q",
                 env_extra=offline_env)
    assert p.returncode == 2 and "needs skeletons" in p.stderr


def test_eval_reproduces_reference_figure_through_cli(mini_mars, offline_env):
    """Independent figure: OSNet, every 4th frame, cosine: rank-1 0.696, mAP 0.743 over 23 queries."""
    p = run_reid("eval", "--embedder", "onnx:osnet_x0_25_msmt17", "--dataset", "minimars", "--data-root",
                 str(mini_mars), "--sampling", "stride", "--frame-stride", "4", "--json",
                 env_extra=offline_env, check=True)
    res = json.loads(p.stdout)
    assert res["num_valid_queries"] == 23
    assert res["r1"] == pytest.approx(0.696, abs=0.005)
    assert res["mAP"] == pytest.approx(0.743, abs=0.005)
