"""Fixtures of the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run the toy-sized models single-threaded.

    Their ops are so small that intra-op threading only adds synchronisation; on a busy 2-core
    machine two OpenMP threads made each step about 5x slower than one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
