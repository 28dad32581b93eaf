"""The table of index kinds: every row is checked against the index it makes (as back-ends are)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner

from csip_reid.gallery.compressed import lists_file, memory_bytes_per_vector, move_lists_to_disk, new_ivf
from csip_reid.gallery.index import VectorIndex
from csip_reid.gallery.kinds import COMPRESSED_KINDS, IVF_KINDS, KINDS, IndexPolicy, kind
from csip_reid.gallery.rebuild import build_in_memory
from tests.helpers.gallery import unit_vectors

DIM, N = 32, 800


def _policy(name: str, **kw) -> IndexPolicy:
    """A policy that chooses ``name`` at N vectors."""
    if name == "flat":
        return IndexPolicy(exact_max=N + 1, **kw)
    compressed = {"compressed_max": 100, "compressed": name} if name in COMPRESSED_KINDS else {}
    return IndexPolicy(exact_max=300, train_per_list=10, **compressed, **kw)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_kind_row_matches_its_index(name: str, tmp_path: Path) -> None:
    row = kind(name)
    vecs = unit_vectors(N, dim=DIM, seed=3)
    ids = np.arange(1, N + 1, dtype=np.int64) * 7
    index = row.factory(DIM, 16)
    assert isinstance(index, faiss.IndexIVF) == row.needs_training == (name in IVF_KINDS)
    assert index.is_trained != row.needs_training
    if row.needs_training:
        index.train(vecs)
        assert row.bytes_per_vector(DIM) == index.code_size + 8
    else:
        assert row.bytes_per_vector(DIM) == 4 * DIM + 8
    assert memory_bytes_per_vector(name, DIM) == row.bytes_per_vector(DIM)
    if row.lists_on_disk:
        name_on_disk = move_lists_to_disk(index, tmp_path)
        assert lists_file(index) == name_on_disk
    index.add_with_ids(vecs, ids)
    assert (tmp_path / str(lists_file(index))).is_file() == row.lists_on_disk
    _, found = index.search(vecs[:5], 1) if not row.needs_training else _search_all_lists(index, vecs[:5])
    assert found[:, 0].tolist() == ids[:5].tolist()  # every vector finds itself


def _clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 40 centres: what IVF is for (each reaches the recall target on them)."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(40, dim=DIM, seed=seed + 100)
    v = centres[rng.integers(0, 40, n)] + 0.05 * rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _search_all_lists(index: faiss.IndexIVF, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index.nprobe = index.nlist
    return index.search(q, 1)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_gallery_builds_and_reloads_each_kind(name: str, tmp_path: Path) -> None:
    row = kind(name)
    vecs = _clustered(N, seed=4)
    ids = np.arange(1, N + 1, dtype=np.int64)
    policy = _policy(name, on_disk=row.lists_on_disk)
    built = build_in_memory(ids, vecs, DIM, policy, directory=tmp_path)
    assert built.kind == name and built.ntotal == N
    assert (lists_file(built.index) is not None) == row.lists_on_disk
    built.save(tmp_path, {"count": N, "max_id": N, "id_sum": int(ids.sum()), "generation": 1})
    loaded = VectorIndex.load(tmp_path, DIM, policy)
    assert loaded is not None and loaded[0].kind == name and loaded[1]["kind"] == name
    assert not loaded[0].wants_rebuild(N, policy)


@pytest.mark.parametrize("name", sorted(IVF_KINDS))
def test_unreachable_recall_falls_back_only_where_the_table_says(name: str) -> None:
    vecs = unit_vectors(N, dim=DIM, seed=5)
    policy = _policy(name, recall_target=1.01)  # no nprobe can reach it
    built = build_in_memory(np.arange(1, N + 1), vecs, DIM, policy)
    expected = "flat" if kind(name).falls_back_to_exact else name
    assert built.kind == expected and built.trained_size == N and built.ntotal == N
    assert built.tuned_recall is not None and built.tuned_recall < 1.01


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown index kind 'hnsw'; known: flat, ivf, ivfsq8, ivfpq"):
        kind("hnsw")
    with pytest.raises(ValueError, match="unknown IVF kind 'flat'"):
        new_ivf("flat", DIM, 4)


def test_cli_help_and_check_read_the_table() -> None:
    from csip_reid.cli import main

    runner = CliRunner()
    text = " ".join(runner.invoke(main, ["gallery", "reindex", "--help"]).output.split())
    for name in COMPRESSED_KINDS:
        assert f"{name} ({KINDS[name].help})" in text
    bad = runner.invoke(main, ["gallery", "reindex", "--gallery", "nowhere", "--compressed", "flat"])
    assert bad.exit_code != 0 and f"--compressed must be one of {', '.join(COMPRESSED_KINDS)}" in bad.output


def test_the_table_is_read_without_faiss() -> None:
    """The CLI builds its help from the table: loading it (and the CLI) must not load FAISS."""
    code = ("import sys, csip_reid.cli, csip_reid.gallery.kinds as k; "
            "print(len(k.KINDS), 'faiss' in sys.modules, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(KINDS)), "False", "False"]
