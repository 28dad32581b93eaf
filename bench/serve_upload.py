"""Search time of one uploaded clip in ``reid serve``: models rebuilt per upload (csip-reid before
the shared query pipeline) vs built once per gallery (``query_pipeline`` + ``run_query`` with the
open gallery, what :class:`csip_reid.serve.search.UploadSearch` does), interleaved in one run.

The gallery is the Intel sample plus its frames 220-450 re-encoded (a second camera); the upload is
its frames 250-420 (the second person). Needs ``REID_TEST_DATA`` (or ``../shared/data``) and the
offline weights (``REID_WEIGHTS_DIR``).

    python bench/serve_upload.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="Uploads of each kind (interleaved).")
    ap.add_argument("--detector", default="yolox:yolox_nano")
    ap.add_argument("--embedder", default="onnx:osnet_x0_25_msmt17")
    args = ap.parse_args()

    from csip_reid.core.video import cut_clip
    from csip_reid.gallery.store import Gallery
    from csip_reid.pipeline.indexer import Indexer
    from csip_reid.pipeline.query import query_pipeline, run_query
    from csip_reid.pipeline.settings import PipelineSettings

    data = Path(os.environ.get("REID_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    video = data / "videos" / "intel_one-by-one-person-detection.mp4"
    with tempfile.TemporaryDirectory(prefix="serve-upload-") as tmp:
        door = cut_clip(video, Path(tmp) / "door.mp4", 220, 450)
        clip = cut_clip(video, Path(tmp) / "upload.mp4", 250, 420)
        settings = PipelineSettings.load(None, detector=args.detector, embedder=args.embedder)
        Indexer(Path(tmp) / "g", settings, progress=False, log=lambda _: None).index([video, door])
        gallery = Path(tmp) / "g"
        with Gallery.open(gallery) as g:
            t0 = time.perf_counter()
            pipeline = query_pipeline(g)
            build = time.perf_counter() - t0
            rebuilt, once = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                a = run_query(gallery, clip, top_k=5, group="person", thumbs=False)
                rebuilt.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                b = run_query(g, clip, top_k=5, group="person", pipeline=pipeline, thumbs=False)
                once.append(time.perf_counter() - t0)
                assert [h.tracklet_id for h in a[0].hits] == [h.tracklet_id for h in b[0].hits]
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"models built once: {build:.2f} s (first build in the process)")
    print(f"per upload, median of {args.rounds}: models rebuilt {med(rebuilt):.2f} s, built once {med(once):.2f} s, "
          f"ratio {med(rebuilt) / med(once):.2f}x (same hits: yes)")


if __name__ == "__main__":
    main()
