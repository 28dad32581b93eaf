"""Identities from a gallery: constraints, the label-free threshold, labels, incremental builds."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from csip_reid.gallery import Gallery
from csip_reid.identity import LabelError, build_identities, identity_of, label, labels, list_identities
from tests.helpers.identity import add, crowd_gallery, fake_info, people, sighting

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "gallery_v0_1"


def _pure(groups: list[list[int]], truth: dict[int, int]) -> bool:
    return all(len({truth[t] for t in g}) == 1 for g in groups)


def _groups(g: Gallery) -> list[list[int]]:
    return [sorted(t["tracklet_id"] for t in p["tracklets"]) for p in list_identities(g)]


def test_build_finds_people_across_cameras_with_automatic_threshold(tmp_path: Path) -> None:
    g, truth = crowd_gallery(tmp_path / "g", num_people=5, cameras=3)
    with g:
        rep = build_identities(g)
        assert rep["threshold_source"] == "known-different pairs" and rep["known_different_pairs"] == 30
        assert "normal fit" in rep["threshold_reason"] and 0.0 < rep["threshold"] < 0.9
        assert (rep["tracklets"], rep["identities"], rep["multi"]) == (15, 5, 5)
        people_ = list_identities(g)
        assert _pure(_groups(g), truth) and [p["size"] for p in people_] == [3, 3, 3, 3, 3]
        p = people_[0]
        assert set(p) >= {"identity", "name", "tracklets", "cameras", "first_seen", "last_seen"}
        assert p["cameras"] == ["cam0", "cam1", "cam2"] and p["name"] is None
        assert set(p["tracklets"][0]) >= {"tracklet_id", "video", "camera", "start_s", "end_s", "start_time",
                                          "end_time"}
        assert p["first_seen"] == "2024-05-01T08:00:05+00:00" and p["last_seen"] == "2024-05-01T08:20:40+00:00"
        assert [t["camera"] for t in p["tracklets"]] == ["cam0", "cam1", "cam2"]  # in time order
        ids = [t["tracklet_id"] for t in p["tracklets"]]
        assert identity_of(g, [*ids, 9999]) == {**dict.fromkeys(ids, p["identity"]), 9999: None}
    with Gallery.open(tmp_path / "g") as g:  # stored: survives reopening
        assert _groups(g) == [sorted(x) for x in _groups(g)] and len(list_identities(g)) == 5


def test_same_video_overlap_is_never_one_person(tmp_path: Path) -> None:
    c = people(1)[0]
    with Gallery.create(tmp_path / "g", fake_info()) as g:
        # the same look twice at the same time in one video: two people (twins, uniforms)
        add(g, "a.mp4", "cam1", [sighting(c, "a.mp4", "cam1", 1, 0, 10, noise=0.01, seed=1),
                                 sighting(c, "a.mp4", "cam1", 2, 5, 15, noise=0.01, seed=2),
                                 sighting(c, "a.mp4", "cam1", 3, 20, 30, noise=0.01, seed=3)])
        rep = build_identities(g, threshold=0.5)
        assert rep["threshold_source"] == "given" and rep["refused"] >= 1
        groups = _groups(g)
        assert sorted(len(x) for x in groups) == [1, 2]
        assert not any({1, 2} <= set(x) for x in groups)


def test_wall_clock_rules_and_cameras_file(tmp_path: Path) -> None:
    c = people(1)[0]
    with Gallery.create(tmp_path / "g", fake_info()) as g:
        add(g, "a.mp4", "cam1", [sighting(c, "a.mp4", "cam1", 1, 0, 10, noise=0.01, seed=1)],
            start_time="2024-05-01T08:00:00")
        add(g, "b.mp4", "cam2", [sighting(c, "b.mp4", "cam2", 1, 0, 10, noise=0.01, seed=2)],
            start_time="2024-05-01T08:00:05")  # overlaps cam1 in wall-clock time
        add(g, "c.mp4", "cam3", [sighting(c, "c.mp4", "cam3", 1, 0, 10, noise=0.01, seed=3)],
            start_time="2024-05-01T08:00:30")  # 20 s after cam1 ends
        build_identities(g, threshold=0.5)
        assert sorted(len(x) for x in _groups(g)) == [1, 2]  # cam1 + cam3, cam2 alone (same moment)
        build_identities(g, threshold=0.5, min_transition_s=60, rebuild=True)
        assert sorted(len(x) for x in _groups(g)) == [1, 1, 1]  # 20 s is too fast a transition
        cams = tmp_path / "cams.yaml"
        cams.write_text("overlap: [[cam1, cam2]]\n")
        rep = build_identities(g, threshold=0.5, cameras=str(cams), rebuild=True)
        assert [len(x) for x in _groups(g)] == [3] and rep["cameras"]["overlap"] == [["cam1", "cam2"]]


def test_labels_are_kept_and_contradictions_refused(tmp_path: Path) -> None:
    g, truth = crowd_gallery(tmp_path / "g", num_people=4, cameras=2)
    with g:
        build_identities(g)
        by_person: dict[int, list[int]] = {}
        for t, p in truth.items():
            by_person.setdefault(p, []).append(t)
        a0, a1 = sorted(by_person[0])
        b0, b1 = sorted(by_person[1])
        out = label(g, a0, not_same=a1)  # the user says the algorithm was wrong
        assert out["identity"] != out["other_identity"]
        label(g, a0, name="Suspect A")
        label(g, b0, same_as=a1)  # and insists on a wrong merge: labels win over vectors
        db_before = (tmp_path / "g" / "gallery.db").read_bytes()
        with pytest.raises(LabelError, match="labelled different"):
            label(g, a1, same_as=a0)
        with pytest.raises(LabelError, match="labelled the same person"):
            label(g, b0, not_same=a1)
        with pytest.raises(LabelError, match="no tracklet 9999"):
            label(g, 9999, same_as=a0)
        with pytest.raises(LabelError, match="exactly one"):
            label(g, a0)
        assert len(labels(g)) == 3 and (tmp_path / "g" / "gallery.db").read_bytes() == db_before
        for rebuild in (False, True):
            rep = build_identities(g, rebuild=rebuild)
            assert rep["confirmed"] >= 2
            of = identity_of(g, [a0, a1, b0, b1])
            assert of[a0] != of[a1] and of[b0] == of[a1]
            named = [p for p in list_identities(g) if p["name"] == "Suspect A"]
            assert len(named) == 1 and a0 in [t["tracklet_id"] for t in named[0]["tracklets"]]
        kinds = [(x["a"], x["b"], x["kind"]) for x in labels(g)]
        assert kinds == [(a0, a1, "not"), (a0, None, "name"), (b0, a1, "same")]


def test_same_label_across_overlap_is_refused(tmp_path: Path) -> None:
    c = people(2)
    with Gallery.create(tmp_path / "g", fake_info()) as g:
        add(g, "a.mp4", "cam1", [sighting(c[0], "a.mp4", "cam1", 1, 0, 10), sighting(c[1], "a.mp4", "cam1", 2, 5, 15)])
        t1, t2 = (r.id for r in g.iter_tracklets())
        with pytest.raises(LabelError, match="same video at the same time"):
            label(g, t1, same_as=t2)
        assert labels(g) == []


def test_incremental_build_keeps_confirmed_identities(tmp_path: Path) -> None:
    g, truth = crowd_gallery(tmp_path / "g", num_people=4, cameras=2)
    centres = people(4)
    with g:
        build_identities(g)
        first = {p["identity"]: sorted(t["tracklet_id"] for t in p["tracklets"]) for p in list_identities(g)}
        confirmed_id, members = next(iter(first.items()))
        label(g, members[0], name="Confirmed")
        # a third camera is indexed later: its tracklets attach to the existing identities
        ts = [sighting(centres[p], "c9.mp4", "cam9", p + 1, 5.0 + p, 40.0 + p, seed=900 + p) for p in range(4)]
        add(g, "c9.mp4", "cam9", ts, start_time="2024-05-01T09:00:00")
        rep = build_identities(g)
        assert rep["new_tracklets"] == 4 and rep["attached"] == 4 and rep["new_identities"] == 0
        now = {p["identity"]: sorted(t["tracklet_id"] for t in p["tracklets"]) for p in list_identities(g)}
        assert set(now) == set(first)  # identity ids are stable
        assert set(first[confirmed_id]) < set(now[confirmed_id]) and len(now[confirmed_id]) == 3
        # even a threshold that would merge everyone keeps the confirmed identity apart from the rest
        build_identities(g, threshold=-1.0, rebuild=True)
        assert set(now[confirmed_id]) in [set(x) for x in _groups(g)]


def test_legacy_gallery_has_no_identities_until_built(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    with Gallery.open(root) as g:
        assert list_identities(g) == [] and labels(g) == [] and identity_of(g, [1]) == {1: None}
    assert sqlite3.connect(root / "gallery.db").execute("PRAGMA user_version").fetchone()[0] == 1
    with Gallery.open(root) as g:
        rep = build_identities(g)
        assert rep["tracklets"] == 2 and rep["threshold_source"] == "default"
        assert sum(p["size"] for p in list_identities(g)) == 2
    assert sqlite3.connect(root / "gallery.db").execute("PRAGMA user_version").fetchone()[0] == 3


def test_new_tracklet_ids_after_reindex_drop_their_memberships(tmp_path: Path) -> None:
    g, truth = crowd_gallery(tmp_path / "g", num_people=3, cameras=2)
    with g:
        build_identities(g)
        n = sum(p["size"] for p in list_identities(g))
        g.remove_video("/videos/cam0/c0.mp4")
        assert sum(p["size"] for p in list_identities(g)) == n - 3
        assert np.all([p["cameras"] == ["cam1"] for p in list_identities(g)])


def test_identities_survive_a_merge_and_start_times_travel(tmp_path: Path) -> None:
    from csip_reid.gallery.merge import merge_galleries

    g, truth = crowd_gallery(tmp_path / "g", num_people=3, cameras=2)
    centres = people(3)
    with g:
        build_identities(g)
        before = _groups(g)
    with Gallery.create(tmp_path / "other", fake_info()) as o:
        ts = [sighting(centres[p], "c7.mp4", "cam7", p + 1, 5.0 + p, 40.0 + p, seed=700 + p) for p in range(3)]
        add(o, "c7.mp4", "cam7", ts, start_time="2024-05-01T10:00:00")
    merge_galleries(tmp_path / "g", [tmp_path / "other"], progress=False)
    with Gallery.open(tmp_path / "g") as g:
        assert _groups(g) == before  # the merged tracklets wait for the next build
        assert [v.start_time for v in g.videos() if v.camera == "cam7"] == ["2024-05-01T10:00:00+00:00"]
        rep = build_identities(g)
        assert rep["attached"] == 3 and rep["identities"] == 3
        assert all(len(p["cameras"]) == 3 for p in list_identities(g))


def test_a_label_interrupted_half_way_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import importlib

    labels_mod = importlib.import_module("csip_reid.identity.labels")  # the name `labels` is the function

    g, truth = crowd_gallery(tmp_path / "g", num_people=3, cameras=2)
    with g:
        build_identities(g)
        before = _groups(g)
        t = sorted(x for x, p in truth.items() if p == 0)  # one person in two cameras

        def crash(*args, **kwargs):
            raise KeyboardInterrupt  # Ctrl-C after the label row was inserted, before its effect

        monkeypatch.setattr(labels_mod, "_apply", crash)
        with pytest.raises(KeyboardInterrupt):
            label(g, t[0], same_as=t[1])
        assert labels(g) == [] and _groups(g) == before
