"""Losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from csip_reid.models.config import LossConfig
from csip_reid.models.losses import (
    batch_hard_triplet,
    label_smooth_ce,
    stage2_losses,
    supcon_loss,
    symmetric_supcon,
)


def test_supcon_hand_case() -> None:
    # a = [[1,0],[0,1]], c = [[1,0],[0,1],[1,1]], labels a=[0,1], c=[0,1,0], tau = 1.
    # anchor 0: logits [1,0,1], positives {0,2}: log_softmax = 1 - log(2e + 1) for both.
    # anchor 1: logits [0,1,1], positive {1}: 1 - log(1 + 2e).
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = -(1 - math.log(2 * math.e + 1))
    got = supcon_loss(a, c, torch.tensor([0, 1]), torch.tensor([0, 1, 0]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_supcon_temperature_and_symmetry() -> None:
    g = torch.Generator().manual_seed(0)
    v, s = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    t = symmetric_supcon(v, s, y, temperature=0.5)
    assert t["v2s"].item() == pytest.approx(supcon_loss(v / 0.5, s, y, y).item(), rel=1e-5)
    assert t["s2v"].item() == pytest.approx(supcon_loss(s, v, y, y, 0.5).item(), rel=1e-5)
    assert t["v2s"].item() != pytest.approx(t["s2v"].item())


def test_supcon_anchor_without_positive_is_ignored() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    only_first = supcon_loss(a[:1], c, torch.tensor([0]), torch.tensor([0, 1]))
    both = supcon_loss(a, c, torch.tensor([0, 5]), torch.tensor([0, 1]))
    assert both.item() == pytest.approx(only_first.item())


def test_label_smooth_ce_hand_case() -> None:
    # logits [0, log 3] → p = [1/4, 3/4]; eps 0.1, N 2 → targets for class 1: [0.05, 0.95].
    logits = torch.tensor([[0.0, math.log(3.0)]])
    expected = -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    assert label_smooth_ce(logits, torch.tensor([1]), 0.1).item() == pytest.approx(expected, rel=1e-6)
    assert label_smooth_ce(logits, torch.tensor([1]), 0.0).item() == pytest.approx(-math.log(0.75), rel=1e-6)


def test_batch_hard_triplet_hand_case() -> None:
    # Points on a line: ids 0 at 0 and 1, id 1 at 3 and 7.
    # anchor 0: d_ap 1, d_an 3 → relu(1-3+0.3)=0;  anchor 1: d_ap 1, d_an 2 → 0
    # anchor 3: d_ap 4, d_an 2 → 2.3;             anchor 7: d_ap 4, d_an 6 → 0
    f = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet(f, y, 0.3).item() == pytest.approx(2.3 / 4, rel=1e-5)


def test_batch_hard_triplet_without_negatives_is_zero_with_grad() -> None:
    f = torch.randn(4, 3, requires_grad=True)
    loss = batch_hard_triplet(f, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and f.grad is not None


def test_stage2_total_is_the_weighted_sum() -> None:
    g = torch.Generator().manual_seed(1)
    b, n, t = 4, 5, 3
    out = {k: torch.randn(b, n, generator=g) for k in ("cls_logits", "proj_logits", "tp_logits", "csip_logits")}
    out["frame_logits"] = torch.randn(b * t, n, generator=g)
    out.update(feat_cls=torch.randn(b, 8, generator=g), feat_proj=torch.randn(b, 6, generator=g),
               feat_tp=torch.randn(b, 8, generator=g))
    pids = torch.tensor([0, 0, 3, 3])
    cfg = LossConfig()
    total, terms = stage2_losses(out, pids, cfg, t)
    assert set(terms) == {"id_cls", "id_proj", "id_tp", "tri_cls", "tri_proj", "tri_tp", "csip", "frame"}
    expected = (0.25 * (terms["id_cls"] + terms["id_proj"] + terms["id_tp"])
                + terms["tri_cls"] + terms["tri_proj"] + terms["tri_tp"] + terms["csip"] + 1.3 / t * terms["frame"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    # The frame loss repeats each tracklet label over its T frames (b-major order).
    assert terms["frame"].item() == pytest.approx(
        label_smooth_ce(out["frame_logits"], pids.repeat_interleave(t)).item(), rel=1e-6)
    assert all(torch.isfinite(v) for v in terms.values())
