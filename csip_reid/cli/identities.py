"""``reid identities build|list|label``: people across videos and cameras."""

from __future__ import annotations

import json
from typing import Any

import click

from csip_reid.cli.common import gallery_option, json_option, open_gallery


@click.group()
def identities() -> None:
    """People across videos and cameras: build identities from a gallery, list them, label them."""


@identities.command("build")
@gallery_option()
@click.option("--threshold", type=click.FloatRange(-1, 1), help="Merge threshold (cosine); default: chosen "
              "without labels from pairs known to be different people.")
@click.option("--false-merge-rate", "rate", default=0.01, show_default=True, type=click.FloatRange(0.0001, 0.5),
              help="Target rate of the automatic threshold: the share of known-different pairs above it.")
@click.option("--cameras", type=click.Path(dir_okay=False), help="YAML/JSON: overlap (groups of cameras with "
              "overlapping views), min_transition_s, transitions ({'camA|camB': seconds}).")
@click.option("--min-transition", "min_transition", type=click.FloatRange(0), help="Least seconds to walk between "
              "two non-overlapping cameras (default 0: only being in two at once is ruled out).")
@click.option("--neighbours", "k", default=10, show_default=True, type=click.IntRange(1, 200),
              help="Neighbours per tracklet in the similarity graph.")
@click.option("--skeleton-weight", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Weight of skeleton similarity when the gallery has skeleton vectors.")
@click.option("--rebuild", is_flag=True, help="Re-cluster every identity nobody confirmed (default: keep the last "
              "build's identities and attach new tracklets to them).")
@json_option()
def build(gallery_dir: str, threshold: float | None, rate: float, cameras: str | None, min_transition: float | None,
          k: int, skeleton_weight: float, rebuild: bool, as_json: bool) -> None:
    """Cluster every tracklet of the gallery into identities (people) and store them."""
    from csip_reid.identity import build_identities

    with open_gallery(gallery_dir) as g:
        rep = build_identities(g, threshold, rate=rate, k=k, cameras=cameras, min_transition_s=min_transition,
                               skeleton_weight=skeleton_weight, rebuild=rebuild)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    click.echo(f"identities: {rep['identities']} from {rep['tracklets']} tracklets "
               f"({rep.get('multi', 0)} seen more than once, {rep.get('confirmed', 0)} confirmed)")
    if rep.get("threshold") is not None:
        click.echo(f"threshold: {rep['threshold']:.3f} ({rep['threshold_source']})")
        click.echo(f"  why: {rep['threshold_reason']}")
        click.echo(f"new tracklets: {rep['new_tracklets']} ({rep['attached']} attached to existing identities); "
                   f"merges refused by constraints: {rep['refused']}; time: {rep['seconds']['total']:.1f}s")


def _when(p: dict[str, Any]) -> str:
    if p.get("first_seen"):
        return f"{p['first_seen']} .. {p['last_seen']}"
    return "time unknown (set it: reid gallery set-time)"


@identities.command("list")
@gallery_option()
@click.option("--identity", "identity", type=int, help="Only this identity.")
@click.option("--min-size", default=1, show_default=True, type=click.IntRange(1),
              help="Only identities with at least this many tracklets.")
@json_option('Print {"identities": [...]}.')
def list_cmd(gallery_dir: str, identity: int | None, min_size: int, as_json: bool) -> None:
    """Show the identities: where (cameras, videos) and when (wall-clock) each person was seen."""
    from csip_reid.core.errors import GalleryError
    from csip_reid.identity import list_identities

    with open_gallery(gallery_dir) as g:
        people = [p for p in list_identities(g, identity) if p["size"] >= min_size]
    if identity is not None and not people:
        raise GalleryError(f"no identity {identity} in gallery {gallery_dir} (see `reid identities list`)")
    if as_json:
        click.echo(json.dumps({"identities": people}, indent=2))
        return
    if not people:
        click.echo("no identities yet: run `reid identities build --gallery ...`")
        return
    for p in people:
        name = f" {p['name']!r}" if p["name"] else ""
        mark = " (confirmed)" if p.get("confirmed") else ""
        click.echo(f"identity {p['identity']}{name}{mark}: {p['size']} tracklets, cameras {', '.join(p['cameras'])}; "
                   f"{_when(p)}")
        for t in p["tracklets"]:
            wall = f"{t['start_time']} .. {t['end_time']}" if t["start_time"] else ""
            click.echo(f"  tracklet {t['tracklet_id']:>6}  {t['camera']:<12} {t['video']}  "
                       f"{t['start_s']:.1f}-{t['end_s']:.1f}s  {wall}")


@identities.command("label")
@click.argument("tracklet", type=int)
@gallery_option()
@click.option("--same-as", "same_as", type=int, help="TRACKLET and this one are the same person.")
@click.option("--not", "not_same", type=int, help="TRACKLET and this one are different people.")
@click.option("--name", help="Name the identity of TRACKLET.")
@json_option()
def label_cmd(tracklet: int, gallery_dir: str, same_as: int | None, not_same: int | None, name: str | None,
              as_json: bool) -> None:
    """Confirm (--same-as), reject (--not) or name (--name) a match; every later build keeps it."""
    from csip_reid.identity import label

    with open_gallery(gallery_dir) as g:
        out = label(g, tracklet, same_as=same_as, not_same=not_same, name=name)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    lb = out["label"]
    what = {"same": f"same person as {lb['b']}", "not": f"not the same person as {lb['b']}",
            "name": f"named {lb.get('name')!r}"}[lb["kind"]]
    click.echo(f"tracklet {tracklet}: {what} (label {lb['id']}); identity {out['identity']}")
