"""``reid train`` and ``reid eval``: train CSIP-ReID, evaluate any embedder on a dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from csip_reid.cli.common import DATASET_CHOICES, default_device, device_option, json_option


@click.command()
@click.option("--config", "config", required=True, help="Model/training YAML (configs/csip_<dataset>.yaml) or a config name.")
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="Dataset root folder.")
@click.option("--dataset", type=DATASET_CHOICES, help="Dataset layout (default: from the config).")
@click.option("--stage", type=click.Choice(["1", "2", "all"]), default="all", show_default=True)
@click.option("--output", type=click.Path(file_okay=False), default="runs/csip", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUTPUT/last.pt.")
@device_option("cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--epochs", type=int, help="Override the number of epochs of each stage run.")
@click.option("--max-steps", type=int, help="Stop each epoch after this many steps (smoke runs).")
@click.option("--split", type=click.IntRange(0, 9), help="iLIDS-VID/PRID split (default 0).")
@click.option("--skeletons", "skeleton_dir", help="Skeleton folder: auto (default), none, or a folder written by `reid skeletons --out`.")
def train(config: str, data_root: str, dataset: str | None, stage: str, output: str, resume: bool,
          device: str | None, epochs: int | None, max_steps: int | None, split: int | None,
          skeleton_dir: str | None) -> None:
    """Train CSIP-ReID: stage 1 (skeleton-image pretraining), prototypes, stage 2."""
    from csip_reid.engine.train import train as run_train
    from csip_reid.models.config import load_config

    cfg = load_config(config)
    dev = device or default_device()
    name = dataset or getattr(cfg, "dataset", None) or "custom"
    override = None if epochs is None else {"stage1": epochs, "stage2": epochs}
    opts: dict[str, Any] = {"split": split} if split is not None and name in ("ilidsvid", "prid") else {}
    if skeleton_dir:
        opts["skeletons"] = skeleton_dir if skeleton_dir in ("auto", "none") else str(Path(skeleton_dir).resolve())
    summary = run_train(cfg, data_root=data_root, dataset=name, output=output, stage=stage, resume=resume,
                        device=dev, epochs_override=override, max_steps=max_steps, dataset_options=opts or None)
    click.echo(json.dumps(summary, indent=2, default=str))


@click.command("eval")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="CSIP-ReID checkpoint (same as --embedder csip:CKPT).")
@click.option("--embedder", help="Any embedder spec, e.g. onnx:osnet_x0_25_msmt17.")
@click.option("--dataset", required=True, type=DATASET_CHOICES)
@click.option("--data-root", required=True, type=click.Path(file_okay=False))
@click.option("--sampling", type=click.Choice(["rrs", "even", "stride", "dense", "all"]), default="rrs", show_default=True,
              help="Frames per tracklet: rrs (first of T chunks), even (T evenly spaced), stride (every k-th), dense, all.")
@click.option("--seq-len", type=click.IntRange(1), help="Frames per tracklet for rrs/even (default: the model's T, else 8).")
@click.option("--frame-stride", "frame_stride", default=4, show_default=True, type=click.IntRange(1), help="k for --sampling stride.")
@click.option("--split", default=0, show_default=True, type=click.IntRange(0, 9), help="iLIDS-VID/PRID split.")
@click.option("--chunks/--no-chunks", default=None,
              help="iLIDS-VID: every 8-frame window (stride 4) is its own query/gallery item (the official CSIP "
                   "protocol, default); --no-chunks: one item per sequence.")
@device_option()
@json_option()
def evaluate(checkpoint: str | None, embedder: str | None, dataset: str, data_root: str, sampling: str,
             seq_len: int | None,
             frame_stride: int, split: int, chunks: bool | None, device: str | None, as_json: bool) -> None:
    """Evaluate an embedder on a dataset: mAP and CMC rank-1/5/10/20 (market1501 protocol)."""
    from csip_reid.data import build_dataset
    from csip_reid.engine.evaluate import evaluate_embedder
    from csip_reid.pipeline.embed import create_embedder

    if bool(checkpoint) == bool(embedder):
        raise click.UsageError("give exactly one of --checkpoint or --embedder")
    spec = f"csip:{checkpoint}" if checkpoint else embedder
    emb = create_embedder(spec, device=device or default_device())
    kw: dict[str, Any] = {"split": split} if dataset in ("ilidsvid", "prid") else {}
    if chunks is not None:
        if dataset != "ilidsvid":
            raise click.UsageError("--chunks/--no-chunks is the iLIDS-VID protocol; use it with --dataset ilidsvid")
        kw["eval_chunks"] = chunks
    ds = build_dataset(dataset, data_root, **kw)
    seq_len = seq_len or (emb.max_frames if checkpoint else None) or 8
    res = evaluate_embedder(emb, ds, sampling=sampling, seq_len=seq_len, stride=frame_stride, progress=not as_json)
    res = {"embedder": spec, "dataset": dataset, "sampling": sampling, **({"chunks": kw.get("eval_chunks", True)} if dataset == "ilidsvid" else {}), **res}
    if as_json:
        click.echo(json.dumps(res, indent=2, default=float))
    else:
        click.echo(f"{dataset} ({sampling}) with {spec}: mAP {res['mAP']:.4f}  R1 {res['r1']:.4f}  "
                   f"R5 {res['r5']:.4f}  R10 {res['r10']:.4f}  R20 {res['r20']:.4f}  "
                   f"queries {res.get('num_valid_queries')}")
