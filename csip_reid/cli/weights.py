"""``reid weights`` and ``reid backends``: the named weights and the back-ends this install can run."""

from __future__ import annotations

import json

import click

from csip_reid.cli.common import json_option


@click.command("weights")
def weights() -> None:
    """List the named weights and where each one is found (or that it would be downloaded)."""
    from csip_reid.core.weights import KNOWN_WEIGHTS, find_local, is_offline, weights_dirs
    from csip_reid.pipeline.backends import all_registries

    all_registries()  # back-end modules register their own named weights on import
    seen = set()
    click.echo(f"weights folders: {', '.join(str(d) for d in weights_dirs())}  offline: {is_offline()}")
    for info in KNOWN_WEIGHTS.values():
        if info.name in seen:
            continue
        seen.add(info.name)
        local = find_local(info.name)
        where = str(local) if local else ("download on first use" if not is_offline() else "MISSING (offline)")
        click.echo(f"  {info.name:<22} {info.filename:<44} {where}")
        click.echo(f"  {'':<22} {info.description}")


@click.command("backends")
@json_option("Print {kind: [names]} as JSON.")
def backends(as_json: bool) -> None:
    """List the back-ends (detectors, trackers, pose, embedders, datasets, models) and the spec grammar."""
    from csip_reid.pipeline.backends import all_registries, listing

    click.echo(json.dumps(all_registries(), indent=2) if as_json else listing())
