"""Check the JSON of `reid index` and `reid query` run inside the image (the test stage).

Usage: python3 smoke_check.py INDEX_JSON QUERY_JSON VIDEO. Exits non-zero with a one-line reason.
Then prints which optional stacks load in the image (a torch/torchvision pair from different
builds, for example, breaks the ultralytics detectors and CSIP-ReID but not the ONNX path tested).
"""

import json
import subprocess
import sys

#: What each stack enables, and a line that loads it (no downloads); run one by one, failures reported.
STACKS = {
    "torchvision": ("import torchvision", "CSIP-ReID (timm), ultralytics"),
    "ultralytics YOLO": ("import numpy as np; from ultralytics import YOLO; "
                         "YOLO('yolo11n.yaml').predict(np.zeros((64, 64, 3), np.uint8), verbose=False)",
                         "ultralytics detector and yolo-pose (a random-weight model, one frame)"),
    "timm": ("import timm", "CSIP-ReID model (train, eval, csip embedder)"),
    "ai-edge-litert": ("import ai_edge_litert.interpreter", "MoveNet pose"),
    "fastapi": ("import fastapi, uvicorn", "reid serve"),
}


def main(index_json: str, query_json: str, video: str) -> None:
    """Assert one video indexed into one tracklet, and the query finds that tracklet first."""
    index = json.load(open(index_json))
    query = json.load(open(query_json))
    problems = []
    if (index.get("indexed"), index.get("failed"), index.get("tracklets")) != (1, 0, 1):
        problems.append(f"index: expected 1 video indexed, 0 failed, 1 tracklet; got {index}")
    hits = query.get("hits") or []
    if not hits:
        problems.append("query: no hits")
    elif hits[0]["video"] != video or hits[0]["score"] < 0.99:
        problems.append(f"query: best hit {hits[0]['video']} score {hits[0]['score']}, expected {video} >= 0.99")
    if problems:
        sys.exit("smoke test failed: " + "; ".join(problems))
    print(f"smoke test passed: {index['frames']} frames, {index['tracklets']} tracklet, "
          f"best hit score {hits[0]['score']:.3f}")
    for name, (code, purpose) in STACKS.items():  # each in a fresh interpreter: one failure must not mask another
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        why = (p.stderr.strip().splitlines() or ["?"])[-1][:120]
        print(f"  loads: {name:18s} " + ("ok     " if p.returncode == 0 else "FAILED ") + f" ({purpose})"
              + ("" if p.returncode == 0 else f": {why}"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
