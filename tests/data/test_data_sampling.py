"""Frame sampling modes and the P x K identity sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from csip_reid.core.errors import ConfigError, DatasetError
from csip_reid.data.sampling import (
    RandomIdentitySampler,
    dense_clips,
    evenly_spaced_indices,
    rrs_test_indices,
    rrs_train_indices,
    sample_clips,
    stride_indices,
)


def test_rrs_train_one_frame_per_chunk():
    # 20 frames, T=8: padded to 24 with frame 19, chunks of 3: [0-2] [3-5] ... [18,19,19] [19,19,19]
    rng = np.random.default_rng(0)
    seen = [set() for _ in range(8)]
    for _ in range(300):
        idx = rrs_train_indices(20, 8, rng)
        assert idx.shape == (8,) and idx.dtype == np.int64
        for k, i in enumerate(idx):
            assert min(3 * k, 19) <= i <= min(3 * k + 2, 19)
            seen[k].add(int(i))
    assert seen[0] == {0, 1, 2} and seen[6] == {18, 19} and seen[7] == {19}


def test_rrs_short_tracklet_pads_with_last_frame():
    assert rrs_train_indices(5, 8, np.random.default_rng(1)).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert rrs_test_indices(5, 8).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]


def test_rrs_test_first_of_each_chunk():
    assert rrs_test_indices(20, 8).tolist() == [0, 3, 6, 9, 12, 15, 18, 19]
    assert rrs_test_indices(16, 8).tolist() == [0, 2, 4, 6, 8, 10, 12, 14]


def test_evenly_spaced():
    assert evenly_spaced_indices(15, 8).tolist() == [0, 2, 4, 6, 8, 10, 12, 14]
    short = evenly_spaced_indices(3, 5)  # linspace(0, 2, 5) = 0, .5, 1, 1.5, 2
    assert short.tolist() == [0, 0, 1, 2, 2]


def test_stride_and_dense():
    assert stride_indices(10, 4).tolist() == [0, 4, 8]
    assert stride_indices(3, 1).tolist() == [0, 1, 2]
    clips = dense_clips(10, 4)
    assert [c.tolist() for c in clips] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]
    assert [c.tolist() for c in dense_clips(3, 8)] == [[0, 1, 2, 0, 1, 2, 0, 1]]


def test_sample_clips_by_name():
    assert [len(c) for c in sample_clips("dense", 17, 8)] == [8, 8, 8]
    assert sample_clips("all", 4)[0].tolist() == [0, 1, 2, 3]
    assert sample_clips("stride", 9, stride=3)[0].tolist() == [0, 3, 6]
    with pytest.raises(ConfigError, match="dense"):
        sample_clips("random", 4)


# -- P x K sampler --------------------------------------------------------------------------------
PIDS = [0] * 6 + [1] * 4 + [2] * 2 + [3] * 5 + [4] * 1 + [5] * 9


def test_pk_batches_have_p_identities_k_each():
    s = RandomIdentitySampler(PIDS, batch_size=8, num_instances=2, seed=3)
    n = len(s)
    order = list(iter(s))
    assert len(order) == n and n % 8 == 0 and n > 0
    for b in range(0, n, 8):
        counts = Counter(PIDS[i] for i in order[b : b + 8])
        assert len(counts) == 4 and set(counts.values()) == {2}


def test_pk_small_identity_filled_with_replacement():
    s = RandomIdentitySampler(PIDS, batch_size=12, num_instances=4, seed=0)
    # pid 4 has one tracklet: if it is drawn, its group is that tracklet 4 times
    for epoch in range(20):
        s.set_epoch(epoch)
        order = list(iter(s))
        where = [i for i in order if PIDS[i] == 4]
        assert where in ([], [17] * 4)


def test_pk_reproducible_and_epochs_differ():
    a = RandomIdentitySampler(PIDS, batch_size=8, num_instances=2, seed=7)
    b = RandomIdentitySampler(PIDS, batch_size=8, num_instances=2, seed=7)
    e0a, e1a = list(iter(a)), list(iter(a))
    e0b = list(iter(b))
    assert e0a == e0b and e0a != e1a
    b.set_epoch(1)
    assert list(iter(b)) == e1a
    c = RandomIdentitySampler(PIDS, batch_size=8, num_instances=2, seed=8)
    assert list(iter(c)) != e0a


def test_pk_errors():
    with pytest.raises(ConfigError, match="multiple"):
        RandomIdentitySampler(PIDS, batch_size=10, num_instances=4)
    with pytest.raises(DatasetError, match="at least 8 identities"):
        RandomIdentitySampler(PIDS, batch_size=32, num_instances=4)
