"""A long, mostly empty 1080p25 H.264 recording made from the Intel sample clip (for ``bench/archive.py``).

The Intel clip (768x432, 10 fps) shows an empty corridor between six people who walk through it one
at a time. The generated file repeats its empty background (with a slow change of brightness, as
daylight gives) and plays each person's stretch at a known time, upscaled to 1920x1080 at 25 fps
(each source frame once, so people walk 2.5x faster than in the source). People are in the picture
for ``people_share`` of the time or less. Encoded with PyAV's libx264 (``ultrafast``, one keyframe
every ``gop_s`` seconds, no scene-cut keyframes), cached by its parameters.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The six person stretches of the Intel clip (source frames, half-open), from its README.
INTEL_PEOPLE = ((70, 190), (230, 440), (510, 690), (750, 860), (940, 1190), (1240, 1350))
#: An empty source frame used as the background.
INTEL_EMPTY = 20


@dataclass(frozen=True)
class ArchiveSpec:
    """What to generate.

    Attributes:
        minutes: Length of the recording.
        fps: Frame rate.
        gop_s: Seconds between keyframes.
        width: Frame width.
        height: Frame height.
        people_share: Largest share of the time with a person in the picture.
    """

    minutes: float = 10.0
    fps: int = 25
    gop_s: float = 2.0
    width: int = 1920
    height: int = 1080
    people_share: float = 0.10

    @property
    def frames(self) -> int:
        return round(self.minutes * 60 * self.fps)

    def name(self) -> str:
        return (f"archive_{self.minutes:g}min_{self.height}p{self.fps}_gop{self.gop_s:g}s_"
                f"p{self.people_share:g}.mp4")


def plan(spec: ArchiveSpec) -> list[tuple[int, int, int]]:
    """Where each person stretch goes: ``(start frame, source start, source end)``, spread evenly.

    Stretches are repeated in turn until ``people_share`` of the frames is used, each at the middle
    of its own equal slot of the recording.
    """
    budget = int(spec.frames * spec.people_share)
    chosen: list[tuple[int, int]] = []
    used, i = 0, 0
    while True:
        a, b = INTEL_PEOPLE[i % len(INTEL_PEOPLE)]
        if used + (b - a) > budget:
            break
        chosen.append((a, b))
        used += b - a
        i += 1
    slot = spec.frames // max(1, len(chosen))
    return [(k * slot + (slot - (b - a)) // 2, a, b) for k, (a, b) in enumerate(chosen)]


def generate(source: Path, spec: ArchiveSpec, cache: Path) -> tuple[Path, list[tuple[int, int]]]:
    """The recording (made once per spec) and its person stretches as output frame ranges."""
    import av
    import cv2

    cache.mkdir(parents=True, exist_ok=True)
    out = cache / spec.name()
    meta = out.with_suffix(".json")
    stretches = [(s, s + (b - a)) for s, a, b in plan(spec)]
    if out.is_file() and meta.is_file() and json.loads(meta.read_text()).get("spec") == asdict(spec):
        return out, stretches
    cap = cv2.VideoCapture(str(source))
    src = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        src.append(f)
    cap.release()
    size = (spec.width, spec.height)
    background = cv2.resize(src[INTEL_EMPTY], size, interpolation=cv2.INTER_LINEAR)
    starts = {s: (a, b) for s, a, b in plan(spec)}
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as c:
        st = c.add_stream("libx264", rate=spec.fps)
        st.width, st.height, st.pix_fmt = spec.width, spec.height, "yuv420p"
        gop = str(round(spec.gop_s * spec.fps))
        st.options = {"g": gop, "keyint_min": gop, "sc_threshold": "0", "preset": "ultrafast", "crf": "26"}
        quiet: dict[float, object] = {}  # one converted frame per light level: only the encoder works
        i = 0
        while i < spec.frames:
            if i in starts:
                a, b = starts[i]
                for j in range(a, b):
                    frame = av.VideoFrame.from_ndarray(cv2.resize(src[j], size, interpolation=cv2.INTER_LINEAR),
                                                       format="bgr24")
                    _encode(c, st, frame, i)
                    i += 1
                continue
            gain = round(1.0 + 0.04 * np.sin(2 * np.pi * i / (spec.fps * 600)), 2)  # ten-minute light cycle
            if gain not in quiet:
                quiet[gain] = av.VideoFrame.from_ndarray(cv2.convertScaleAbs(background, alpha=gain),
                                                         format="bgr24").reformat(format="yuv420p")
            _encode(c, st, quiet[gain], i)
            i += 1
        for p in st.encode():
            c.mux(p)
    tmp.replace(out)
    meta.write_text(json.dumps({"spec": asdict(spec), "stretches": stretches}))
    return out, stretches


def _encode(container: Any, stream: Any, frame: Any, index: int) -> None:
    from fractions import Fraction

    frame.pts, frame.time_base = index, Fraction(1, stream.codec_context.framerate)
    for p in stream.encode(frame):
        container.mux(p)
