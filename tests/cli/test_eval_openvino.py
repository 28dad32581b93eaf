"""`reid eval` compares an OpenVINO model in one command, like an ONNX one.

Reference: Intel person-reidentification-retail-0277, mean-pooled crops, cosine, same person in the
same camera left out: mAP 0.858, rank-1 0.783 over the 23 mini-MARS queries (measured outside this
project with every crop; `reid eval`'s default 8 crops per tracklet gives 0.860 / 0.783,
bench/README.md "Models")."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_reid

pytest.importorskip("openvino", reason="the openvino package is not installed")


def test_eval_openvino_model_by_name(mini_mars, models_dir, offline_env):
    if not (models_dir / "person-reidentification-retail-0277.xml").is_file():
        pytest.skip("person-reidentification-retail-0277 missing")
    p = run_reid("eval", "--embedder", "openvino:person-reidentification-retail-0277", "--dataset", "minimars",
                 "--data-root", str(mini_mars), "--json", env_extra=offline_env, check=True)
    res = json.loads(p.stdout)
    assert res["embedder"] == "openvino:person-reidentification-retail-0277" and res["num_valid_queries"] == 23
    assert res["mAP"] == pytest.approx(0.858, abs=0.02) and res["r1"] == pytest.approx(0.783, abs=0.05)
