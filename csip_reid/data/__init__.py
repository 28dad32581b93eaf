"""Video ReID data: dataset readers, frame sampling, clip transforms and loaders."""

from csip_reid.data.datasets import build_dataset, list_datasets
from csip_reid.data.loaders import build_test_loader, build_train_loader
from csip_reid.data.records import SequenceRecord, VideoReIDDataset
from csip_reid.data.sampling import RandomIdentitySampler

__all__ = [
    "RandomIdentitySampler",
    "SequenceRecord",
    "VideoReIDDataset",
    "build_dataset",
    "build_test_loader",
    "build_train_loader",
    "list_datasets",
]
