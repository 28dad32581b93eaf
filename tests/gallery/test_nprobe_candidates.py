"""The ``nprobe`` values that tuning tries: powers of two up to half the lists, then half."""

from __future__ import annotations

import pytest

from csip_reid.gallery.index import nprobe_candidates


@pytest.mark.parametrize("nlist", [8, 10, 100, 2000, 6325, 8192])
def test_unchanged_where_half_the_lists_is_at_most_4096(nlist: int) -> None:
    before = [c for c in (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048) if c < nlist // 2] + [nlist // 2]
    assert nprobe_candidates(nlist) == before


def test_many_lists_get_the_powers_beyond_2048() -> None:
    assert nprobe_candidates(27_713)[-4:] == [2048, 4096, 8192, 13_856]  # ivfhnsw-sq8 at 3M
    assert nprobe_candidates(50_600)[-3:] == [8192, 16_384, 25_300]  # ... and at 10M
    for nlist in (1, 2, 3, 27_713, 50_600):
        found = nprobe_candidates(nlist)
        assert found == sorted(set(found)) and found[-1] == max(1, nlist // 2)
