"""``reid export-onnx``: a CSIP-ReID checkpoint as a self-describing ONNX clip embedder."""

from __future__ import annotations

import json

import click

from csip_reid.cli.common import json_option


@click.command("export-onnx")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False),
              help="Stage-2 checkpoint written by `reid train` (best.pt).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--dynamic-batch", is_flag=True, help="Dynamic batch dimension (default: batch 1).")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(17))
@json_option("Print the export summary as JSON.")
def export_onnx(checkpoint: str, out: str, dynamic_batch: bool, opset: int, as_json: bool) -> None:
    """Export the inference path (T crops in, one unit vector out) with its preprocessing in the
    file's metadata; use it as `--embedder onnx:OUT`. The export is checked against PyTorch."""
    from csip_reid.models.export_onnx import export_onnx as run_export

    s = run_export(checkpoint, out, dynamic_batch=dynamic_batch, opset=opset)
    if as_json:
        click.echo(json.dumps(s, indent=2))
    else:
        shape = "x".join(str(d) for d in s["input_shape"])
        click.echo(f"wrote {s['out']}: clips {shape} -> {s['feature_dim']}-d, {s['nodes']} nodes, "
                   f"max |onnx - torch| = {s['max_abs_diff']:.2e}; use --embedder onnx:{s['out']}")
