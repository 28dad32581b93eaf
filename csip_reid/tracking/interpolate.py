"""Boxes for the frames between keyframes: linear interpolation of a finished tracklet (offline).

An adaptive scan (:mod:`csip_reid.pipeline.scan`) detects every ``k``-th frame while people are
tracked. Indexing is offline, so once a tracklet is finished the frames between two of its
observations are filled with boxes interpolated linearly between them. Filled observations have a
NaN score (they were not detected); crops, keypoints and thumbnails are untouched, so they still
come from detected frames only. Gaps longer than ``max_gap`` frames (a person missed for longer
than the keyframe interval explains, e.g. occluded) are left as they are, as a full scan leaves them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from csip_reid.core.tracklet import Tracklet


def fill_gaps(tracklet: Tracklet, max_gap: int, step: int = 1) -> Tracklet:
    """A copy of ``tracklet`` with the gaps between its observations filled by interpolation.

    Args:
        tracklet: A finished tracklet (``frames`` increasing).
        max_gap: Gaps of at most this many frame indices between two observations are filled.
        step: Spacing of the filled frames (the scan's stride).

    Returns:
        The tracklet itself when nothing is filled; otherwise a new one whose ``frames``,
        ``timestamps``, ``boxes`` and ``scores`` include the interpolated observations (score NaN).
    """
    frames = tracklet.frames
    if len(frames) < 2 or max_gap <= step:
        return tracklet
    gaps = np.diff(frames)
    fill = (gaps > step) & (gaps <= max_gap)
    if not fill.any():
        return tracklet
    new_frames = [frames[:1]]
    for i in range(len(gaps)):
        if fill[i]:
            new_frames.append(np.arange(frames[i] + step, frames[i + 1], step, dtype=np.int64))
        new_frames.append(frames[i + 1 : i + 2])
    out_frames = np.concatenate(new_frames)
    boxes = np.stack([np.interp(out_frames, frames, tracklet.boxes[:, j]) for j in range(4)], 1)
    timestamps = np.interp(out_frames, frames, tracklet.timestamps)
    detected = np.isin(out_frames, frames)
    # keep the detector's exact values on observed frames
    boxes[detected] = tracklet.boxes
    timestamps[detected] = tracklet.timestamps
    scores = None
    if tracklet.scores is not None:
        scores = np.full(len(out_frames), np.nan, np.float32)
        scores[detected] = tracklet.scores
    return replace(tracklet, frames=out_frames, timestamps=timestamps, boxes=boxes.astype(np.float32),
                   scores=scores)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (N, 4) arrays of ``x1, y1, x2, y2`` boxes."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 1)
    area = np.prod(a[:, 2:] - a[:, :2], 1) + np.prod(b[:, 2:] - b[:, :2], 1) - inter
    return np.where(area > 0, inter / np.maximum(area, 1e-9), 0.0)


def coverage(reference: Tracklet, candidate: Tracklet, iou: float = 0.5) -> float:
    """Share of ``reference``'s frames on which ``candidate`` has a box with IoU >= ``iou``."""
    if not len(reference):
        return 0.0
    common, ri, ci = np.intersect1d(reference.frames, candidate.frames, return_indices=True)
    if not len(common):
        return 0.0
    hits = box_iou(reference.boxes[ri], candidate.boxes[ci]) >= iou
    return float(np.count_nonzero(hits)) / len(reference)


def match_scans(reference: list[Tracklet], candidate: list[Tracklet], iou: float = 0.5) -> list[tuple[int, float]]:
    """For each reference tracklet, the candidate covering it best: ``(candidate index, coverage)``.

    Used to compare an adaptive scan with a full one (``candidate index`` -1 when none overlaps).
    """
    out = []
    for ref in reference:
        scores = [coverage(ref, c, iou) for c in candidate]
        best = int(np.argmax(scores)) if scores else -1
        out.append((best, scores[best] if scores else 0.0))
    return out
