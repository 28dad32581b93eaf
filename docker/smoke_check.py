"""Check the JSON of `reid index` and `reid query` run inside the image (the test stage).

Usage: python3 smoke_check.py INDEX_JSON QUERY_JSON VIDEO. Exits non-zero with a one-line reason.
Then prints which optional stacks import in the image (a torch/torchvision pair from different
builds, for example, breaks the ultralytics detectors and CSIP-ReID but not the ONNX path tested).
"""

import importlib
import json
import sys

#: What each stack enables; imported one by one, failures reported, not fatal.
STACKS = {
    "torchvision": "ultralytics YOLO detectors/pose, CSIP-ReID (timm)",
    "ultralytics.models.yolo": "ultralytics detector and yolo-pose back-ends",
    "timm": "CSIP-ReID model (train, eval, csip embedder)",
    "ai_edge_litert.interpreter": "MoveNet pose",
    "fastapi": "reid serve",
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
    for module, purpose in STACKS.items():
        try:
            importlib.import_module(module)
            print(f"  imports: {module:28s} ok      ({purpose})")
        except Exception as e:  # noqa: BLE001 - any failure is what we report
            print(f"  imports: {module:28s} FAILED  ({purpose}): {type(e).__name__}: {str(e)[:120]}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
