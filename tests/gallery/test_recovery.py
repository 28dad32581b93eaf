"""The FAISS index is a cache: missing, corrupt or stale index files are repaired from SQLite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from csip_reid.core.errors import GalleryError
from csip_reid.gallery import Gallery
from csip_reid.gallery.index import VectorIndex
from tests.helpers.gallery import POLICIES, add_video, fake_embedder_info, unit_vectors

INFO = fake_embedder_info()


def _index_file(root: Path) -> Path:
    return root / json.loads((root / "index.json").read_text())["file"]


def _snapshot(root: Path, dest: Path) -> None:
    """Copy the committed index (sidecar + file), as a crash before the next save would leave it."""
    dest.mkdir()
    shutil.copy2(root / "index.json", dest / "index.json")
    shutil.copy2(_index_file(root), dest / _index_file(root).name)


def _restore(snapshot: Path, root: Path) -> None:
    for p in root.glob("index*"):
        p.unlink()
    for p in snapshot.iterdir():
        shutil.copy2(p, root / p.name)


def _check_consistent(root: Path, vecs, expected_videos: list[str]) -> None:
    with Gallery.open(root) as g:
        assert g.index.ntotal == len(g) == sum(1 for _ in g.iter_tracklets())
        tops = g.search(vecs, k=1)
        names = {h[0].video_name for h, v in zip(tops, vecs, strict=True) if h[0].score > 0.999}
        assert names == set(expected_videos)


@pytest.fixture(params=sorted(POLICIES))
def built(request, tmp_path: Path):
    """A gallery with two videos of 150 tracklets, of each index kind."""
    vecs = unit_vectors(600)
    root = tmp_path / "g"
    with Gallery.create(root, INFO, policy=POLICIES[request.param]) as g:
        add_video(g, "a.mp4", vecs[:150])
        add_video(g, "b.mp4", vecs[150:300])
        assert g.index.kind == request.param
    return root, vecs


def test_missing_index_file_rebuilt(built) -> None:
    root, vecs = built
    _index_file(root).unlink()
    _check_consistent(root, vecs[:300], ["a.mp4", "b.mp4"])
    assert _index_file(root).is_file()  # the reader that rebuilt it saved it (no writer was busy)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "sidecar"])
def test_corrupt_index_rebuilt(built, damage: str) -> None:
    root, vecs = built
    f = _index_file(root)
    if damage == "garbage":
        f.write_bytes(b"\x00not a faiss index" * 50)
    elif damage == "truncated":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:
        (root / "index.json").write_text("{ half a sidecar")
    _check_consistent(root, vecs[:300], ["a.mp4", "b.mp4"])


def test_stale_index_catches_up_additions(built, tmp_path: Path) -> None:
    root, vecs = built
    _snapshot(root, tmp_path / "snap")
    with Gallery.open(root) as g:
        add_video(g, "c.mp4", vecs[300:450])
    _restore(tmp_path / "snap", root)
    _check_consistent(root, vecs[:450], ["a.mp4", "b.mp4", "c.mp4"])


def test_stale_index_catches_up_removals(built, tmp_path: Path) -> None:
    root, vecs = built
    _snapshot(root, tmp_path / "snap")
    with Gallery.open(root) as g:
        g.remove_video("a.mp4")
        add_video(g, "c.mp4", vecs[300:450])
    _restore(tmp_path / "snap", root)
    _check_consistent(root, vecs[:450], ["b.mp4", "c.mp4"])


def test_reader_sees_later_writes(built) -> None:
    root, vecs = built
    with Gallery.open(root) as reader, Gallery.open(root) as writer:
        assert reader.search(vecs[400], k=1)[0][0].score < 0.999
        add_video(writer, "c.mp4", vecs[300:450])
        writer.remove_video("a.mp4")
        hit = reader.search(vecs[400], k=1)[0][0]
        assert hit.video_name == "c.mp4" and hit.score == pytest.approx(1.0, abs=1e-5)
        assert reader.index.ntotal == 300
        assert reader.search(vecs[0], k=1)[0][0].video_name != "a.mp4"


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    vecs = unit_vectors(4)
    with Gallery.create(tmp_path / "g", INFO) as first:
        add_video(first, "a.mp4", vecs[:2])
        second = Gallery.open(tmp_path / "g", lock_timeout=0.0)
        with pytest.raises(GalleryError, match=r"being written by another process \(pid \d+"):
            add_video(second, "b.mp4", vecs[2:])
        assert second.search(vecs[0], k=1)[0][0].video_name == "a.mp4"  # reading is fine
    add_video(second, "b.mp4", vecs[2:])  # the first writer closed: the lock is free
    assert len(second) == 4
    second.close()


def test_stale_lock_file_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "g"
    Gallery.create(root, INFO).close()
    (root / "write.lock").write_text("pid 999999\nhost elsewhere\nsince 2020-01-01T00:00:00+00:00\n")
    with Gallery.open(root, lock_timeout=0.0) as g:
        add_video(g, "a.mp4", unit_vectors(2))
        assert len(g) == 2


def test_crash_between_commit_and_index_save(built, monkeypatch: pytest.MonkeyPatch) -> None:
    """The video's rows are committed but the process dies before the index is written."""
    root, vecs = built

    def die(*args, **kwargs):
        raise KeyboardInterrupt("simulated death before the index save")

    g = Gallery.open(root)
    monkeypatch.setattr(VectorIndex, "save", die)
    with pytest.raises(KeyboardInterrupt):
        add_video(g, "c.mp4", vecs[300:450])
    g.lock.release()  # what the kernel does when the process dies
    g._db.close()  # the connection dies with the process too (the test plays the kernel)
    monkeypatch.undo()
    _check_consistent(root, vecs[:450], ["a.mp4", "b.mp4", "c.mp4"])


def test_writer_removes_crash_leftovers(built) -> None:
    root, vecs = built
    orphan = root / "thumbs" / "deadbeef-0000"
    orphan.mkdir()
    (orphan / "00000_1.jpg").write_bytes(b"half a jpeg")
    (root / "index-00000099-abcd.faiss.tmp").write_bytes(b"half an index")
    with Gallery.open(root) as g:
        assert orphan.exists()  # readers touch nothing
        add_video(g, "c.mp4", vecs[300:301])
    assert not orphan.exists()
    assert not (root / "index-00000099-abcd.faiss.tmp").exists()
    assert len(list((root / "thumbs").iterdir())) == 3
