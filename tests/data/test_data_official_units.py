"""Data-layer details that follow the official CSIP-ReID code, and mini_mars_full's disjoint train split."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from csip_reid.core.embedder import CropPreprocess
from csip_reid.data import build_dataset, build_train_loader
from csip_reid.data.datasets.ilidsvid import window_starts
from csip_reid.data.records import SequenceRecord, VideoReIDDataset
from csip_reid.data.transforms import resize_frames
from csip_reid.models import load_config
from csip_reid.models.config import Stage1Config


@pytest.mark.parametrize(("n", "starts"), [(16, [0, 4]), (17, [0, 4, 8]), (12, [0]), (9, [0]), (8, None), (5, None)])
def test_ilids_window_starts_are_the_official_range(n: int, starts: list[int] | None) -> None:
    """Official: ``range(0, n - 8, 4)``, and a sequence without any window stays whole."""
    assert window_starts(n, 8, 4) == starts
    if starts is not None:
        assert starts == list(range(0, n - 8, 4))


def test_stage1_keeps_the_last_batch_except_on_ilids(tmp_path: Path) -> None:
    assert Stage1Config().drop_last is False and load_config("csip_mars").stage1.drop_last is False
    assert load_config("csip_ilidsvid").stage1.drop_last is True
    frames = []
    for i in range(3):
        f = tmp_path / f"f{i}.png"
        Image.fromarray(np.full((16, 8, 3), 40 * i, np.uint8)).save(f)
        frames.append(str(f))
    recs = [SequenceRecord(frames, pid, pid % 2, None, f"t{pid}") for pid in range(5)]
    ds = VideoReIDDataset("five", recs, [], [], num_train_pids=5, num_cameras=2)
    kw = dict(seq_len=2, height=16, width=8, batch_size=2, sampler="shuffle", skeletons=False)
    assert [len(b["pid"]) for b in build_train_loader(ds, drop_last=False, **kw)] == [2, 2, 1]
    assert [len(b["pid"]) for b in build_train_loader(ds, drop_last=True, **kw)] == [2, 2]


def test_stage1_loop_passes_its_drop_last(monkeypatch: pytest.MonkeyPatch) -> None:
    import csip_reid.engine.stage1 as stage1

    seen = {}

    def fake_loader(dataset, **kw):  # type: ignore[no-untyped-def]
        seen.update(kw)
        raise StopIteration

    monkeypatch.setattr(stage1, "build_train_loader", fake_loader)
    cfg = load_config("csip_tiny")
    cfg.stage1.epochs = 1

    class Ctx:
        def __init__(self) -> None:
            self.cfg, self.dataset = cfg, None

        def loader_kwargs(self) -> dict:
            return {}

    model = SimpleNamespace(freeze_visual=lambda frozen: None)
    optimizer = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "base_lr": 0.1}], lr=0.1)
    with pytest.raises(StopIteration):
        stage1.run_stage1(Ctx(), model, optimizer, None)  # type: ignore[arg-type]
    assert seen["drop_last"] is False


def test_frames_shrink_antialiased_as_pil_bilinear() -> None:
    """A 1-pixel checkerboard shrunk 4x is flat grey with PIL's filter, not the aliased OpenCV sample."""
    board = (np.indices((64, 32)).sum(0) % 2 * 255).astype(np.uint8)
    frame = np.repeat(board[..., None], 3, axis=2)
    out = resize_frames([frame], 16, 8)[0]
    assert out.shape == (16, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(frame).resize((8, 16), Image.Resampling.BILINEAR)))
    assert abs(float(out[2:-2, 2:-2].mean()) - 127.5) < 3 and float(out[2:-2, 2:-2].std()) < 3
    # inference (CropPreprocess "pil_bilinear", BGR crops) resizes exactly as the training loader
    pre = CropPreprocess(height=16, width=8, mean=(0, 0, 0), std=(1, 1, 1), scale=1.0, interpolation="pil_bilinear")
    rgb = np.random.default_rng(0).integers(0, 256, (50, 23, 3), dtype=np.uint8)
    got = pre([np.ascontiguousarray(rgb[..., ::-1])])[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(got, resize_frames([rgb], 16, 8)[0].astype(np.float32))


def test_mini_mars_full_trains_on_other_people(mini_mars_full: Path) -> None:
    ds = build_dataset("minimars", mini_mars_full, skeletons="none")
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (32, 32, 32)
    assert sum(len(r) for r in ds.train) == 1719 and ds.num_train_pids == 16
    assert sorted({r.pid for r in ds.train}) == list(range(16))  # relabelled for the classifiers
    train_people = {int(Path(r.frames[0]).parent.name) for r in ds.train}
    test_people = {r.pid for r in ds.query + ds.gallery}
    assert len(train_people) == 16 and len(test_people) == 16 and not train_people & test_people
    assert all("/bbox_train/" in r.frames[0] for r in ds.train)
    assert not {f for r in ds.train for f in r.frames} & {f for r in ds.query + ds.gallery for f in r.frames}
