"""Which frames of a tracklet a clip uses, and which tracklets a training batch holds.

Frame sampling (all functions return int64 indices into the tracklet's frames):

* :func:`rrs_train_indices`: restricted random sampling (CSIP-ReID / TF-CLIP ``rrs_train``). Pad
  the tracklet to a multiple of ``T`` by repeating its last frame, cut it into ``T`` equal
  consecutive chunks and draw one random frame from each.
* :func:`rrs_test_indices`: the same chunks, first frame of each (``rrs_test``; deterministic).
* :func:`evenly_spaced_indices`: ``T`` indices evenly spread from the first to the last frame.
* :func:`stride_indices`: every ``k``-th frame, starting at frame 0 (variable length).
* :func:`dense_clips`: all frames in consecutive ``T``-frame clips (TF-CLIP's ``dense`` test mode).
* :func:`sample_clips`: the test-time modes above by name.

Batch sampling: :class:`RandomIdentitySampler` (P identities x K tracklets per batch).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from csip_reid.core.arrays import evenly_spaced_indices
from csip_reid.core.errors import ConfigError, DatasetError

#: Test-time modes giving fixed-length clips (batchable by the test loader).
CLIP_MODES = ("rrs", "even", "dense")
#: All test-time modes (``evaluate_embedder``); ``stride`` and ``all`` give variable lengths.
TEST_MODES = ("rrs", "even", "stride", "dense", "all")


def _chunks(n: int, seq_len: int) -> np.ndarray:
    """``(seq_len, ceil(n/seq_len))`` frame indices: padded with the last frame, split in order."""
    if n < 1:
        raise ValueError("a tracklet needs at least one frame")
    if seq_len < 1:
        raise ValueError("seq_len must be >= 1")
    size = -(-n // seq_len)
    idx = np.minimum(np.arange(size * seq_len), n - 1)
    return idx.reshape(seq_len, size)


def rrs_train_indices(n: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Restricted random sampling: one uniformly random frame from each of ``seq_len`` chunks.

    A tracklet of ``n`` frames is padded to ``ceil(n/T)*T`` by repeating its last frame, so a
    tracklet shorter than ``T`` yields all its frames followed by copies of the last one.

    Args:
        n: Number of frames in the tracklet.
        seq_len: ``T``, the number of frames returned.
        rng: Source of randomness.
    """
    chunks = _chunks(n, seq_len)
    pick = rng.integers(0, chunks.shape[1], size=seq_len)
    return chunks[np.arange(seq_len), pick].astype(np.int64)


def rrs_test_indices(n: int, seq_len: int) -> np.ndarray:
    """The first frame of each restricted-random-sampling chunk (deterministic)."""
    return _chunks(n, seq_len)[:, 0].astype(np.int64)


def stride_indices(n: int, stride: int) -> np.ndarray:
    """Every ``stride``-th frame: ``0, stride, 2*stride, ...`` (``ceil(n/stride)`` indices)."""
    if stride < 1:
        raise ValueError("stride must be >= 1")
    return np.arange(0, n, stride, dtype=np.int64)


def dense_clips(n: int, seq_len: int) -> list[np.ndarray]:
    """All frames in consecutive ``seq_len``-frame clips.

    The last, partial clip is filled by cycling over its own frames (as TF-CLIP's dense sampler
    does), so every frame is used and every clip has exactly ``seq_len`` indices.
    """
    if n < 1:
        raise ValueError("a tracklet needs at least one frame")
    clips = []
    for start in range(0, n, seq_len):
        own = np.arange(start, min(start + seq_len, n), dtype=np.int64)
        clips.append(np.resize(own, seq_len))
    return clips


def sample_clips(mode: str, n: int, seq_len: int = 8, stride: int = 4) -> list[np.ndarray]:
    """Deterministic frame selections of an ``n``-frame tracklet for testing.

    Args:
        mode: ``rrs`` (first frame of each chunk), ``even``, ``dense`` (one array per clip),
            ``stride`` (every ``stride``-th frame) or ``all``.
        n: Number of frames.
        seq_len: Frames per clip (``rrs``, ``even``, ``dense``).
        stride: Frame step (``stride``).

    Returns:
        One index array, or one per clip for ``dense``.
    """
    if n < 1:
        raise ValueError("a tracklet needs at least one frame")
    if mode == "rrs":
        return [rrs_test_indices(n, seq_len)]
    if mode == "even":
        return [evenly_spaced_indices(n, seq_len)]
    if mode == "dense":
        return dense_clips(n, seq_len)
    if mode == "stride":
        return [stride_indices(n, stride)]
    if mode == "all":
        return [np.arange(n, dtype=np.int64)]
    raise ConfigError(f"unknown frame sampling {mode!r}; choose one of: {', '.join(TEST_MODES)}")


class RandomIdentitySampler(Sampler[int]):
    """P x K batches: ``batch_size // num_instances`` identities, ``num_instances`` tracklets each.

    Every epoch each identity's tracklets are shuffled and cut into groups of K (an identity with
    fewer than K tracklets is filled by drawing from its own tracklets with replacement; a last
    partial group is dropped). Then P random identities that still have groups left are taken at
    a time, and one group of each is emitted, until fewer than P identities remain. Consecutive
    runs of ``batch_size`` indices therefore form P x K batches; use the sampler with
    ``DataLoader(batch_size=batch_size, drop_last=True)``.

    Each epoch's order is a pure function of ``(seed, epoch)``. The epoch counter advances on
    every ``__iter__``; :meth:`set_epoch` sets it (e.g. on resume). ``len()`` is exact.

    Args:
        pids: Identity of each dataset item.
        batch_size: ``P * K``.
        num_instances: ``K``, tracklets per identity in a batch.
        seed: Base seed.
    """

    def __init__(self, pids: Sequence[int], batch_size: int = 16, num_instances: int = 4, seed: int = 0) -> None:
        if num_instances < 1 or batch_size < num_instances or batch_size % num_instances:
            raise ConfigError(
                f"batch_size ({batch_size}) must be a positive multiple of num_instances ({num_instances})"
            )
        self.num_instances = num_instances
        self.num_pids_per_batch = batch_size // num_instances
        self.seed = seed
        self.epoch = 0
        self._by_pid: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(pids):
            self._by_pid[int(pid)].append(i)
        self._pids = sorted(self._by_pid)
        if len(self._pids) < self.num_pids_per_batch:
            raise DatasetError(
                f"P x K sampling needs at least {self.num_pids_per_batch} identities per batch, "
                f"the training set has {len(self._pids)}"
            )
        self._cache: tuple[int, list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``__iter__`` produce the order of ``epoch``."""
        self.epoch = epoch

    def _order(self, epoch: int) -> list[int]:
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        k = self.num_instances
        groups: dict[int, list[list[int]]] = {}
        for pid in self._pids:
            idxs = np.asarray(self._by_pid[pid])
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            idxs = rng.permutation(idxs)
            groups[pid] = [idxs[s : s + k].tolist() for s in range(0, len(idxs) - k + 1, k)]
        available = list(self._pids)
        order: list[int] = []
        while len(available) >= self.num_pids_per_batch:
            chosen = rng.choice(len(available), size=self.num_pids_per_batch, replace=False)
            for pid in [available[c] for c in chosen]:
                order.extend(groups[pid].pop())
                if not groups[pid]:
                    available.remove(pid)
        self._cache = (epoch, order)
        return order

    def __iter__(self) -> Iterator[int]:
        order = self._order(self.epoch)
        self.epoch += 1
        return iter(order)

    def __len__(self) -> int:
        return len(self._order(self.epoch))
