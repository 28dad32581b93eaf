"""Torch datasets and data loaders over :class:`~csip_reid.data.records.SequenceRecord` lists.

Every loader yields dicts of batched tensors:

==================  ==================  =====================================================
key                 shape / dtype       content
==================  ==================  =====================================================
``images``          [B,T,3,H,W] float   RGB, ``(x/255 - mean) / std``
``skeletons``       [B,T,17,3] float    root-centred joints, zeros where missing
``skeleton_mask``   [B,T,17] bool       True where the joint is present
``pid``             [B] long            person id of the record
``camid``           [B] long            0-based camera of the record
``index``           [B] long            position of the record in the list given to the loader
==================  ==================  =====================================================

Frames are read with OpenCV (BGR) and converted to RGB before normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, get_worker_info

from csip_reid.core.errors import ConfigError, DatasetError
from csip_reid.data.records import SequenceRecord, VideoReIDDataset
from csip_reid.data.sampling import CLIP_MODES, RandomIdentitySampler, rrs_train_indices, sample_clips
from csip_reid.data.skeleton_io import HMR_FORMAT, NUM_JOINTS, load_skeleton_sequence
from csip_reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform

#: Training sampling mode (a fresh restricted random sample at every access).
TRAIN_MODE = "rrs_train"


def read_bgr(path: str) -> np.ndarray:
    """Read one frame as a BGR uint8 image, or raise :class:`DatasetError` naming the file."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot read frame {path}")
    return img


class SequenceDataset(Dataset):
    """Clips of tracklet records as tensors.

    Args:
        records: The tracklets.
        seq_len: Frames per clip (``T``).
        mode: ``rrs_train`` (a new random RRS sample at every access, one item per record),
            ``rrs`` / ``even`` (one deterministic clip per record) or ``dense`` (one item per
            consecutive ``T``-frame clip; ``index`` tells which record it belongs to).
        transform: Resize/augment/normalise transform.
        skeletons: Read skeleton files; when False (or a record has none) skeletons are zeros
            and the mask is all False.
        skeleton_format: Format assumed for skeleton files without a ``format`` key.
        seed: Seed of the augmentation/sampling generator (reseeded per worker, see
            :func:`seed_worker`).
    """

    def __init__(
        self,
        records: Sequence[SequenceRecord],
        *,
        seq_len: int = 8,
        mode: str = TRAIN_MODE,
        transform: ClipTransform | None = None,
        skeletons: bool = True,
        skeleton_format: str | None = HMR_FORMAT,
        seed: int = 0,
    ) -> None:
        if mode != TRAIN_MODE and mode not in CLIP_MODES:
            raise ConfigError(f"unknown sampling mode {mode!r}; choose one of: {TRAIN_MODE}, {', '.join(CLIP_MODES)}")
        self.records = list(records)
        for r in self.records:
            if not r.frames:
                raise DatasetError(f"tracklet {r.name} has no frames")
        self.seq_len = seq_len
        self.mode = mode
        self.transform = transform or ClipTransform()
        self.skeletons = skeletons
        self.skeleton_format = skeleton_format
        self.rng = np.random.default_rng(seed)
        self.items: list[tuple[int, np.ndarray | None]] = []
        for i, r in enumerate(self.records):
            if mode == TRAIN_MODE:
                self.items.append((i, None))
            else:
                self.items.extend((i, clip) for clip in sample_clips(mode, len(r), seq_len))

    def __len__(self) -> int:
        return len(self.items)

    def _read_clip(self, rec: SequenceRecord, idx: np.ndarray) -> list[np.ndarray]:
        cache: dict[int, np.ndarray] = {}
        for i in idx.tolist():
            if i not in cache:
                cache[i] = cv2.cvtColor(read_bgr(rec.frames[i]), cv2.COLOR_BGR2RGB)
        return [cache[i] for i in idx.tolist()]

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        ri, idx = self.items[k]
        rec = self.records[ri]
        if idx is None:
            idx = rrs_train_indices(len(rec), self.seq_len, self.rng)
        frames = self._read_clip(rec, idx)
        if self.skeletons and rec.skeletons is not None:
            skel, mask = load_skeleton_sequence([rec.skeletons[i] for i in idx.tolist()], self.skeleton_format)
        else:
            skel = np.zeros((len(idx), NUM_JOINTS, 3), np.float32)
            mask = np.zeros((len(idx), NUM_JOINTS), bool)
        images, skel, mask = self.transform(frames, skel, mask, self.rng)
        return {
            "images": images,
            "skeletons": torch.from_numpy(np.ascontiguousarray(skel, np.float32)),
            "skeleton_mask": torch.from_numpy(np.ascontiguousarray(mask, bool)),
            "pid": torch.tensor(rec.pid, dtype=torch.long),
            "camid": torch.tensor(rec.camid, dtype=torch.long),
            "index": torch.tensor(ri, dtype=torch.long),
        }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker's dataset its own reproducible generator.

    ``get_worker_info().seed`` derives from the loader's seeded generator and the worker id, so a
    run with the same seed and the same number of workers sees the same augmentations.
    """
    info = get_worker_info()
    if info is not None and isinstance(info.dataset, SequenceDataset):
        info.dataset.rng = np.random.default_rng(info.seed)


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def build_train_loader(
    dataset: VideoReIDDataset,
    *,
    seq_len: int = 8,
    height: int = 256,
    width: int = 128,
    batch_size: int = 16,
    sampler: str = "pk",
    num_instances: int = 4,
    augment: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    num_workers: int = 0,
    seed: int = 0,
    skeletons: bool = True,
    flip_skeletons: bool = True,
    drop_last: bool = True,
) -> DataLoader:
    """Training loader over ``dataset.train`` with restricted random sampling.

    Args:
        dataset: The dataset; its ``train`` split is used.
        seq_len: Frames per clip.
        height: Frame height after resizing.
        width: Frame width after resizing.
        batch_size: Tracklets per batch (``P x K`` with the ``pk`` sampler).
        sampler: ``pk`` (:class:`RandomIdentitySampler`) or ``shuffle`` (plain random order).
        num_instances: ``K``, tracklets per identity in a ``pk`` batch.
        augment: Clip flip and random erasing (CSIP's stage 1 trains without them).
        mean: Normalisation mean (RGB).
        std: Normalisation std (RGB).
        num_workers: DataLoader worker processes.
        seed: Seed of the batch order and of the augmentations.
        skeletons: Read skeleton files (False: zeros and an all-False mask).
        flip_skeletons: Mirror the skeletons of flipped clips (False reproduces CSIP's code).
        drop_last: Drop the epoch's last, smaller batch (stage 2 always; stage 1 as configured).

    Returns:
        A DataLoader yielding the dicts described in the module docstring.
    """
    records = dataset.train
    if not records:
        raise DatasetError(f"dataset {dataset.name} has no training tracklets")
    transform = ClipTransform(height=height, width=width, augment=augment, mean=tuple(mean), std=tuple(std),
                              flip_skeletons=flip_skeletons)
    ds = SequenceDataset(records, seq_len=seq_len, mode=TRAIN_MODE, transform=transform, skeletons=skeletons,
                         skeleton_format=dataset.skeleton_format, seed=seed)
    order: Sampler[int]
    if sampler == "pk":
        order = RandomIdentitySampler([r.pid for r in records], batch_size, num_instances, seed)
    elif sampler == "shuffle":
        order = RandomSampler(ds, generator=_generator(seed))
    else:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of: pk, shuffle")
    loader = DataLoader(ds, batch_size=batch_size, sampler=order, num_workers=num_workers, drop_last=drop_last,
                        worker_init_fn=seed_worker, generator=_generator(seed),
                        pin_memory=torch.cuda.is_available())
    if len(loader) == 0:
        raise DatasetError(
            f"dataset {dataset.name}: {len(records)} training tracklets give no full batch of {batch_size}"
        )
    return loader


def build_test_loader(
    records: Sequence[SequenceRecord],
    *,
    seq_len: int = 8,
    height: int = 256,
    width: int = 128,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    mode: str = "rrs",
    batch_size: int = 16,
    num_workers: int = 0,
    skeletons: bool = True,
    skeleton_format: str | None = HMR_FORMAT,
) -> DataLoader:
    """Deterministic loader over ``records`` in order, no augmentation, no dropped items.

    Args:
        records: Query or gallery tracklets.
        seq_len: Frames per clip.
        height: Frame height after resizing.
        width: Frame width after resizing.
        mean: Normalisation mean (RGB).
        std: Normalisation std (RGB).
        mode: ``rrs`` (first frame of each of ``T`` chunks, CSIP's ``rrs_test``), ``even`` or
            ``dense`` (every frame, one item per ``T``-frame clip; average the clip features of
            equal ``index`` to get one feature per record).
        batch_size: Items per batch.
        num_workers: DataLoader worker processes.
        skeletons: Read skeleton files.
        skeleton_format: Format assumed for skeleton files without a ``format`` key.
    """
    transform = ClipTransform(height=height, width=width, augment=False, mean=tuple(mean), std=tuple(std))
    ds = SequenceDataset(records, seq_len=seq_len, mode=mode, transform=transform, skeletons=skeletons,
                         skeleton_format=skeleton_format)
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False,
                      pin_memory=torch.cuda.is_available())

