"""``reid export-dataset`` and ``reid skeletons``: training data from a gallery, skeletons for a dataset."""

from __future__ import annotations

import json

import click

from csip_reid.cli.common import DATASET_CHOICES, default_device, device_option, gallery_option, quiet_option


@click.command("export-dataset")
@gallery_option()
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
@device_option()
@click.option("--limit", type=int, help="Only the first N tracklets (trial runs).")
@click.option("--out", type=click.Path(file_okay=False), help="Write here instead of DATA_ROOT/skeletons (read-only datasets).")
@quiet_option("No progress bar.")
def skeletons(dataset: str, data_root: str, pose: str, device: str | None, limit: int | None, out: str | None,
              quiet: bool) -> None:
    """Write CSIP-format skeleton JSON for a dataset's frames (resumable)."""
    from csip_reid.pipeline.skeletonize import skeletonize_dataset

    s = skeletonize_dataset(dataset, data_root, pose=pose, device=device or default_device(), limit=limit,
                            out=out, progress=not quiet)
    click.echo(json.dumps(s, indent=2))
