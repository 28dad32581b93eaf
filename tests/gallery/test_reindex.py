"""``reid gallery reindex``: the user chooses the compressed kind, on-disk lists and the limits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.synthetic import ClusteredSphere
from csip_reid.cli import main
from csip_reid.core.video import cut_clip
from csip_reid.gallery import Gallery, IndexPolicy
from csip_reid.gallery.compressed import lists_file
from tests.helpers.gallery import add_video, fake_embedder_info

DIM = 64
ON_DISK = ["--compressed", "ivfsq8", "--compressed-above", "500", "--exact-below", "300", "--on-disk"]


def reid(*args: str, code: int = 0, env: dict | None = None) -> str:
    r = CliRunner().invoke(main, list(args), env=env)
    assert r.exit_code == code, f"reid {' '.join(args)} -> {r.exit_code}:\n{r.output}\n{r.exception!r}"
    return r.output


@pytest.fixture()
def vectors() -> np.ndarray:
    vecs, _ = ClusteredSphere(DIM, num_ids=200, seed=5).sample(1600)
    return vecs.astype(np.float32)


@pytest.fixture()
def gallery(tmp_path: Path, vectors: np.ndarray) -> Path:
    """An exact gallery (default policy) of 1,200 vectors in 3 videos."""
    root = tmp_path / "g"
    with Gallery.create(root, fake_embedder_info(dim=DIM)) as g:
        for i in range(3):
            add_video(g, f"{i}.mp4", vectors[i * 400:(i + 1) * 400])
        assert g.index.kind == "flat"
    return root


def _finds_itself(g: Gallery) -> None:
    ids, vecs = g.vectors()
    hits = g.search(vecs[::50], k=1)
    assert [h[0].tracklet_id for h in hits] == list(ids[::50])


def test_reindex_flat_to_on_disk_and_back(gallery: Path, vectors: np.ndarray) -> None:
    out = reid("gallery", "reindex", "--gallery", str(gallery), *ON_DISK)
    line = out.strip().splitlines()[-1]
    assert line.startswith("index: ivfsq8  vectors: 1200  nlist: ") and "bytes/vector: 72" in line
    sidecar = json.loads((gallery / "index.json").read_text())
    lists = sorted(p.name for p in gallery.glob("lists-*.ivfdata"))
    assert lists == [sidecar["lists_file"]] and f"lists on disk: {lists[0]}" in line
    stored = json.loads((gallery / "manifest.json").read_text())["index_policy"]
    p = IndexPolicy.from_dict(stored)
    assert (p.compressed, p.on_disk, p.compressed_max, p.exact_max) == ("ivfsq8", True, 500, 300)
    info = reid("gallery", "info", "--gallery", str(gallery))
    assert "index: ivfsq8 (1200 vectors; exact up to 300)" in info
    assert "index policy: ivfsq8 above 500 vectors, lists on disk" in info

    with Gallery.open(gallery) as g:  # the manifest's policy, the saved on-disk index
        assert g.policy.on_disk and g.index.kind == "ivfsq8"
        assert lists_file(g.index.index) == lists[0]
        _finds_itself(g)
        add_video(g, "3.mp4", vectors[1200:1600])  # a following add goes into the same lists
        assert g.index.ntotal == 1600 and lists_file(g.index.index) == lists[0]
        _finds_itself(g)
    with Gallery.open(gallery) as g:
        assert g.index.kind == "ivfsq8" and g.index.ntotal == 1600 and g.policy.compressed_max == 500
        assert json.loads((gallery / "manifest.json").read_text())["index_policy"] == stored

    d = json.loads(reid("gallery", "reindex", "--gallery", str(gallery), "--in-memory", "--json"))
    assert d["kind"] == "ivfsq8" and d["lists_file"] is None and d["ntotal"] == 1600
    assert d["bytes_per_vector"] == 72 and d["policy"]["compressed_max"] == 500  # other options kept
    assert not list(gallery.glob("lists-*.ivfdata"))
    with Gallery.open(gallery) as g:
        assert not g.policy.on_disk and g.index.kind == "ivfsq8" and lists_file(g.index.index) is None
        _finds_itself(g)
    d = json.loads(reid("gallery", "reindex", "--gallery", str(gallery), "--compressed-above", "auto",
                        "--exact-below", "auto", "--json"))
    assert d["kind"] == "flat" and d["exact_max"] == 50_000 * 512 // DIM


def test_interrupted_reindex_is_finished_by_the_next_writer(gallery: Path, vectors: np.ndarray) -> None:
    """The manifest commits the choice: an index that does not follow it is rebuilt by the next writer."""
    reid("gallery", "reindex", "--gallery", str(gallery), "--compressed-above", "500", "--exact-below", "300")
    manifest = json.loads((gallery / "manifest.json").read_text())
    manifest["index_policy"].update(compressed="ivfpq", on_disk=True)  # as if the rebuild had crashed
    (gallery / "manifest.json").write_text(json.dumps(manifest))
    with Gallery.open(gallery) as g:
        assert g.index.kind == "ivfsq8"  # readers keep the saved index
        add_video(g, "3.mp4", vectors[1200:1300])
        assert g.index.kind == "ivfpq" and lists_file(g.index.index) is not None


def test_nlist_factor_sets_the_partition(gallery: Path) -> None:
    """More lists per sqrt(N) (the 10M benchmark's remedy for weakly clustered galleries) is stored and used."""
    base = json.loads(reid("gallery", "reindex", "--gallery", str(gallery), *ON_DISK, "--json"))
    more = json.loads(reid("gallery", "reindex", "--gallery", str(gallery), "--nlist-factor", "0.5", "--json"))
    assert base["nlist"] == IndexPolicy().nlist_for(1200) == 30  # capped at 40 vectors per list
    assert more["nlist"] == IndexPolicy(nlist_factor=0.5).nlist_for(1200) == 17
    assert more["policy"]["nlist_factor"] == 0.5 and more["policy"]["on_disk"]  # other choices kept
    with Gallery.open(gallery) as g:
        assert g.policy.nlist_factor == 0.5 and g.index.nlist == 17
        _finds_itself(g)


@pytest.mark.parametrize(("args", "message"), [
    (["--compressed", "ivfflat"], "--compressed must be one of ivfsq8, ivfpq, ivfhnsw-sq8, not 'ivfflat'"),
    (["--compressed-above", "lots"], "--compressed-above must be a number of vectors"),
    (["--exact-below", "-5"], "--exact-below must be >= 0"),
    (["--nlist-factor", "0"], "--nlist-factor must be in (0, 256], not 0.0"),
])
def test_bad_values_are_one_line_errors(gallery: Path, args: list[str], message: str) -> None:
    before = (gallery / "manifest.json").read_bytes()
    out = reid("gallery", "reindex", "--gallery", str(gallery), *args, code=2)
    lines = [x for x in out.splitlines() if x.strip()]
    assert lines == [f"error: {lines[0][7:]}"] and message in lines[0], out
    assert (gallery / "manifest.json").read_bytes() == before


def test_not_a_gallery(tmp_path: Path) -> None:
    out = reid("gallery", "reindex", "--gallery", str(tmp_path / "none"), "--on-disk", code=2)
    assert out.startswith("error: ") and "does not exist" in out


def test_reid_index_keeps_the_chosen_policy(tmp_path: Path, videos_dir: Path, models_dir: Path) -> None:
    """`reid index` into a reindexed gallery stores and uses the policy the user chose."""
    src = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not src.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    env = {"REID_WEIGHTS_DIR": str(models_dir), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1",
           "REID_CACHE_DIR": str(tmp_path / "cache")}
    offline = ["--detector", "yolox:yolox_nano", "--embedder", "onnx:osnet_x0_25_msmt17", "-q", "--scan", "full",
               "--stride", "4"]
    cut_clip(src, tmp_path / "a.mp4", 230, 262)
    cut_clip(src, tmp_path / "b.mp4", 300, 332)
    root = tmp_path / "g"
    reid("index", str(tmp_path / "a.mp4"), "--gallery", str(root), *offline, env=env)
    reid("gallery", "reindex", "--gallery", str(root), "--compressed", "ivfpq", "--on-disk",
         "--compressed-above", "700", "--exact-below", "600", env=env)
    chosen = json.loads((root / "manifest.json").read_text())["index_policy"]
    reid("index", str(tmp_path / "b.mp4"), "--gallery", str(root), *offline, env=env)
    assert json.loads((root / "manifest.json").read_text())["index_policy"] == chosen
    with Gallery.open(root) as g:
        assert len(g.videos()) == 2 and len(g) > 0 and (g.policy.compressed, g.policy.on_disk) == ("ivfpq", True)
        assert (g.policy.exact_limit(g.dim), g.policy.compressed_limit(g.dim)) == (600, 700)
    assert "index policy: ivfpq above 700 vectors, lists on disk" in reid("gallery", "info", "--gallery", str(root))
