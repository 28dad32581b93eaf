"""Check the JSON of `reid index` and `reid query` run inside the image (the test stage).

Usage: python3 smoke_check.py INDEX_JSON QUERY_JSON VIDEO. Exits non-zero with a one-line reason.
"""

import json
import sys


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


if __name__ == "__main__":
    main(*sys.argv[1:4])
