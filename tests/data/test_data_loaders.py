"""Train/test loaders: the dict contract, frame choice (read back from pixel-coded frames), skeletons."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from csip_reid.core.errors import ConfigError, DatasetError
from csip_reid.data import build_dataset, build_test_loader, build_train_loader
from csip_reid.data.records import VideoReIDDataset
from csip_reid.data.sampling import dense_clips, rrs_test_indices
from tests.helpers.datasets import decode_values

KEYS = {"images", "skeletons", "skeleton_mask", "pid", "camid", "index"}
RAW = dict(height=8, width=4, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # pixels come back as value/255


def frame_numbers(images: torch.Tensor) -> np.ndarray:
    """Frame numbers of a [B, T, 3, H, W] batch of coded frames."""
    return decode_values(images[:, :, 0, 0, 0].numpy() * 255.0)


def check_contract(batch: dict, b: int, t: int, h: int, w: int) -> None:
    assert set(batch) == KEYS
    assert batch["images"].shape == (b, t, 3, h, w) and batch["images"].dtype == torch.float32
    assert batch["skeletons"].shape == (b, t, 17, 3) and batch["skeletons"].dtype == torch.float32
    assert batch["skeleton_mask"].shape == (b, t, 17) and batch["skeleton_mask"].dtype == torch.bool
    for k in ("pid", "camid", "index"):
        assert batch[k].shape == (b,) and batch[k].dtype == torch.long


def test_pk_train_loader(coded_custom):
    ds = build_dataset("custom", coded_custom)
    loader = build_train_loader(ds, seq_len=4, batch_size=4, num_instances=2, augment=False, **RAW)
    assert len(loader) >= 1
    for batch in loader:
        check_contract(batch, 4, 4, 8, 4)
        counts = Counter(batch["pid"].tolist())
        assert len(counts) == 2 and set(counts.values()) == {2}
        frames = frame_numbers(batch["images"])
        for row, ri in enumerate(batch["index"].tolist()):
            rec = ds.train[ri]
            assert batch["pid"][row] == rec.pid and batch["camid"][row] == rec.camid
            n = len(rec)
            size = math.ceil(n / 4)
            for k, f in enumerate(frames[row]):  # one frame from each restricted-random chunk
                assert min(k * size, n - 1) <= f <= min(k * size + size - 1, n - 1)


def test_train_loader_seeded(coded_custom):
    ds = build_dataset("custom", coded_custom)

    def first(seed: int, workers: int = 0) -> dict:
        loader = build_train_loader(ds, seq_len=4, batch_size=4, num_instances=2, augment=True, seed=seed,
                                    num_workers=workers, height=16, width=8)
        return next(iter(loader))

    a, b, c = first(0), first(0), first(1)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["index"], b["index"])
    assert not torch.equal(a["images"], c["images"])
    w1, w2 = first(0, workers=2), first(0, workers=2)
    assert torch.equal(w1["images"], w2["images"])


def test_shuffle_sampler_drops_last(coded_custom):
    ds = build_dataset("custom", coded_custom)
    loader = build_train_loader(ds, seq_len=2, batch_size=3, sampler="shuffle", **RAW)
    batches = list(loader)
    assert len(batches) == 2 == len(loader)  # 8 tracklets, batches of 3
    seen = torch.cat([b["index"] for b in batches]).tolist()
    assert len(set(seen)) == 6


def test_rrs_test_loader_frames_and_order(coded_custom):
    ds = build_dataset("custom", coded_custom)
    loader = build_test_loader(ds.gallery, seq_len=4, mode="rrs", batch_size=2, **RAW)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [2, 1]
    index = torch.cat([b["index"] for b in batches]).tolist()
    frames = np.concatenate([frame_numbers(b["images"]) for b in batches])
    assert index == [0, 1, 2]
    for ri, f in zip(index, frames, strict=True):
        assert f.tolist() == rrs_test_indices(len(ds.gallery[ri]), 4).tolist()


def test_dense_test_loader_one_item_per_clip(coded_custom):
    ds = build_dataset("custom", coded_custom)
    loader = build_test_loader(ds.train, seq_len=3, mode="dense", batch_size=5, **RAW)
    items = [(ri, f.tolist()) for b in loader for ri, f in zip(b["index"].tolist(), frame_numbers(b["images"]),
                                                                 strict=True)]
    expected = [(ri, c.tolist()) for ri, r in enumerate(ds.train) for c in dense_clips(len(r), 3)]
    assert items == expected and len(items) == sum(math.ceil(len(r) / 3) for r in ds.train)


def test_skeletons_loaded_centred_and_masked(coded_custom):
    ds = build_dataset("custom", coded_custom)
    bob = next(i for i, r in enumerate(ds.train) if r.name == "train/bob/lobby_3")
    batch = next(iter(build_test_loader([ds.train[bob]], seq_len=9, mode="dense", **RAW)))
    check_contract(batch, 1, 9, 8, 4)
    mask = batch["skeleton_mask"][0]
    present = [bool(mask[t].all()) for t in range(9)]
    assert present == [True, False, True, False, False, False, True, False, True]  # frame 4 is all-zero
    assert not mask[[1, 3, 4, 5, 7]].any()
    sk = batch["skeletons"][0]
    assert (sk[[1, 3, 4, 5, 7]] == 0).all()
    # files hold joint j at (10 t + j, 2 j, 3 j): root-centred that is (j, 2 j, 3 j) in every frame
    expect = torch.stack([torch.arange(17.0), 2 * torch.arange(17.0), 3 * torch.arange(17.0)], 1)
    for t in (0, 2, 6, 8):
        torch.testing.assert_close(sk[t], expect)
    off = next(iter(build_test_loader([ds.train[bob]], seq_len=9, mode="dense", skeletons=False, **RAW)))
    assert not off["skeleton_mask"].any() and (off["skeletons"] == 0).all()


def test_loader_errors(coded_custom):
    ds = build_dataset("custom", coded_custom)
    with pytest.raises(ConfigError, match="sampler"):
        build_train_loader(ds, sampler="random")
    with pytest.raises(ConfigError, match="mode"):
        build_test_loader(ds.query, mode="stride")
    with pytest.raises(DatasetError, match="full batch"):
        build_train_loader(ds, batch_size=16, sampler="shuffle")
    empty = VideoReIDDataset("x", [], ds.query, ds.gallery, 0, 3)
    with pytest.raises(DatasetError, match="no training"):
        build_train_loader(empty)


def test_minimars_train_batch(mini_mars):
    ds = build_dataset("minimars", mini_mars)
    loader = build_train_loader(ds, seq_len=8, batch_size=8, num_instances=4)
    batch = next(iter(loader))
    check_contract(batch, 8, 8, 256, 128)
    img = batch["images"]
    assert -2.2 < float(img.min()) < 0 < float(img.max()) < 2.7  # ImageNet-normalised
    assert not batch["skeleton_mask"].any()  # mini-MARS has no skeletons
    assert len(set(batch["pid"].tolist())) == 2
