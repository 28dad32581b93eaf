"""``reid train``, ``reid eval``, ``reid export-dataset``, ``reid skeletons``, ``reid weights``, ``reid backends``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from csip_reid.cli_common import RegistryChoice, default_device

DATASET_CHOICES = RegistryChoice("dataset")


@click.command()
@click.option("--config", "config", required=True, help="Model/training YAML (configs/csip_<dataset>.yaml) or a config name.")
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="Dataset root folder.")
@click.option("--dataset", type=DATASET_CHOICES, help="Dataset layout (default: from the config).")
@click.option("--stage", type=click.Choice(["1", "2", "all"]), default="all", show_default=True)
@click.option("--output", type=click.Path(file_okay=False), default="runs/csip", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUTPUT/last.pt.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
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
@click.option("--chunks", is_flag=True,
              help="iLIDS-VID: every 8-frame window (stride 4) is its own query/gallery item (the official CSIP protocol).")
@click.option("--device", default=None)
@click.option("--json", "as_json", is_flag=True)
def evaluate(checkpoint: str | None, embedder: str | None, dataset: str, data_root: str, sampling: str,
             seq_len: int | None,
             frame_stride: int, split: int, chunks: bool, device: str | None, as_json: bool) -> None:
    """Evaluate an embedder on a dataset: mAP and CMC rank-1/5/10/20 (market1501 protocol)."""
    from csip_reid.data import build_dataset
    from csip_reid.engine.evaluate import evaluate_embedder
    from csip_reid.pipeline.embed import create_embedder

    if bool(checkpoint) == bool(embedder):
        raise click.UsageError("give exactly one of --checkpoint or --embedder")
    spec = f"csip:{checkpoint}" if checkpoint else embedder
    emb = create_embedder(spec, device=device or default_device())
    kw: dict[str, Any] = {"split": split} if dataset in ("ilidsvid", "prid") else {}
    if chunks:
        if dataset != "ilidsvid":
            raise click.UsageError("--chunks is the iLIDS-VID protocol; use it with --dataset ilidsvid")
        kw["eval_chunks"] = True
    ds = build_dataset(dataset, data_root, **kw)
    seq_len = seq_len or (emb.max_frames if checkpoint else None) or 8
    res = evaluate_embedder(emb, ds, sampling=sampling, seq_len=seq_len, stride=frame_stride, progress=not as_json)
    res = {"embedder": spec, "dataset": dataset, "sampling": sampling, **({"chunks": True} if chunks else {}), **res}
    if as_json:
        click.echo(json.dumps(res, indent=2, default=float))
    else:
        click.echo(f"{dataset} ({sampling}) with {spec}: mAP {res['mAP']:.4f}  R1 {res['r1']:.4f}  "
                   f"R5 {res['r5']:.4f}  R10 {res['r10']:.4f}  R20 {res['r20']:.4f}  "
                   f"queries {res.get('num_valid_queries')}")


@click.command("export-dataset")
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--labels", type=click.Path(dir_okay=False), help="CSV tracklet_id,person (and optional split).")
def export_dataset(gallery_dir: str, out: str, labels: str | None) -> None:
    """Write a gallery's tracklets (crops + skeleton JSON) in the custom training layout.

    Without --labels every tracklet becomes its own provisional identity and OUT/labels_template.csv
    lists them for labelling; rerun with --labels once it is filled in.
    """
    from csip_reid.pipeline.export import export_gallery

    s = export_gallery(gallery_dir, out, labels=labels)
    click.echo(json.dumps(s, indent=2))


@click.command("skeletons")
@click.option("--dataset", required=True, type=DATASET_CHOICES)
@click.option("--data-root", required=True, type=click.Path(file_okay=False))
@click.option("--pose", default="movenet", show_default=True, help="Pose back-end spec.")
@click.option("--device", default=None)
@click.option("--limit", type=int, help="Only the first N tracklets (trial runs).")
@click.option("--out", type=click.Path(file_okay=False), help="Write here instead of DATA_ROOT/skeletons (read-only datasets).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def skeletons(dataset: str, data_root: str, pose: str, device: str | None, limit: int | None, out: str | None,
              quiet: bool) -> None:
    """Write CSIP-format skeleton JSON for a dataset's frames (resumable)."""
    from csip_reid.pipeline.skeletonize import skeletonize_dataset

    s = skeletonize_dataset(dataset, data_root, pose=pose, device=device or default_device(), limit=limit,
                            out=out, progress=not quiet)
    click.echo(json.dumps(s, indent=2))


@click.command("weights")
@click.option("--permissive", is_flag=True,
              help="Only weights a product may ship: permissive licence, training data that allow commercial use.")
@click.option("--licence", "--license", "licence", help="Only weights under this licence (e.g. Apache-2.0).")
@click.option("--task", type=click.Choice(["reid", "detector", "pose"]), help="Only weights of this task.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON (licence, SHA-256, URL, local path).")
def weights(permissive: bool, licence: str | None, task: str | None, as_json: bool) -> None:
    """List the named weights: licence, commercial use, and where each one is found (or downloaded from)."""
    from csip_reid.core.weights import is_offline, weights_dirs, weights_rows
    from csip_reid.pipeline.backends import all_registries

    all_registries()  # back-end modules register their own named weights on import
    try:
        rows = weights_rows(permissive=permissive, licence=licence, task=task)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"weights folders: {', '.join(str(d) for d in weights_dirs())}  offline: {is_offline()}")
    click.echo(f"  {'NAME':<36} {'TASK':<8} {'LICENCE':<14} {'COMMERCIAL':<10} WHERE")
    where = {"download": "download on first use", "missing": "MISSING (offline)" if is_offline() else "MISSING"}
    for r in rows:
        click.echo(f"  {r['name']:<36} {r['task']:<8} {r['licence'] or '?':<14} "
                   f"{'yes' if r['commercial_use'] else 'no':<10} {r['local'] or where[r['status']]}")
        click.echo(f"  {'':<36} {r['description']}; trained on {r['training_data'] or '?'}")


@click.command("backends")
@click.option("--json", "as_json", is_flag=True, help="Print {kind: [names]} as JSON.")
def backends(as_json: bool) -> None:
    """List the back-ends (detectors, trackers, pose, embedders, datasets, models) and the spec grammar."""
    from csip_reid.pipeline.backends import all_registries, listing

    click.echo(json.dumps(all_registries(), indent=2) if as_json else listing())


def register(group: click.Group) -> None:
    """Attach the commands of this module to the ``reid`` group."""
    for cmd in (train, evaluate, export_dataset, skeletons, weights, backends):
        group.add_command(cmd)
