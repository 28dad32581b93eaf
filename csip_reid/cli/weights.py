"""``reid weights`` and ``reid backends``: the named weights and the back-ends this install can run."""

from __future__ import annotations

import json

import click

from csip_reid.cli.common import json_option


@click.command("weights")
@click.option("--permissive", is_flag=True,
              help="Only weights a product may ship: permissive licence, training data that allow commercial use.")
@click.option("--licence", "--license", "licence", help="Only weights under this licence (e.g. Apache-2.0).")
@click.option("--task", type=click.Choice(["reid", "detector", "pose"]), help="Only weights of this task.")
@json_option("Print the rows as JSON (licence, SHA-256, URL, local path).")
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
@json_option("Print {kind: [names]} as JSON.")
def backends(as_json: bool) -> None:
    """List the back-ends (detectors, trackers, pose, embedders, datasets, models) and the spec grammar."""
    from csip_reid.pipeline.backends import all_registries, listing

    click.echo(json.dumps(all_registries(), indent=2) if as_json else listing())
