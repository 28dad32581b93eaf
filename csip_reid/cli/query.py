"""``reid query``: search a gallery for the person in a clip, a photo or a folder of crops."""

from __future__ import annotations

import json
from pathlib import Path

import click

from csip_reid.cli.common import device_option, gallery_option, json_option, quiet_option


def _seconds(text: str) -> float:
    """``90``, ``90.5``, ``1:30`` or ``0:01:30`` → seconds."""
    try:
        parts = [float(p) for p in str(text).split(":")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time (seconds or [h:]mm:ss)") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise click.BadParameter(f"{text!r} is not a time (seconds or [h:]mm:ss)")
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


@click.command()
@click.argument("clip", metavar="SOURCE", type=click.Path())
@gallery_option()
@click.option("--top-k", "top_k", default=10, show_default=True, type=click.IntRange(1))
@json_option("Print JSON: {query, hits: [...]}.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write an HTML report with thumbnails.")
@click.option("--track-id", type=int, help="Query this track of the clip (default: the longest).")
@click.option("--all-tracks", is_flag=True, help="Query every track of the clip.")
@click.option("--mode", type=click.Choice(["appearance", "skeleton", "fused"]), default="appearance", show_default=True)
@click.option("--fuse-weight", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Weight of the skeleton similarity in --mode fused.")
@click.option("--start", "start_s", type=_seconds, help="Only this part of CLIP: start time (seconds or [h:]mm:ss).")
@click.option("--end", "end_s", type=_seconds, help="End time (seconds or [h:]mm:ss).")
@click.option("--box", help="Photo queries: the person's box x1,y1,x2,y2 (default: the largest person detected).")
@click.option("--group", type=click.Choice(["tracklet", "person"]), default="tracklet", show_default=True,
              help="person: one row per identity (run `reid identities build` first).")
@click.option("--since", help="Only hits seen from this wall-clock time on (ISO 8601).")
@click.option("--until", help="Only hits seen up to this wall-clock time (ISO 8601).")
@click.option("--expand", is_flag=True, help="Search again with the members of the best hit's identity.")
@click.option("--rerank", is_flag=True, help="k-reciprocal re-ranking of the top 100 hits; off by default: it did not help on mini-MARS "
              "(bench/README.md, Identities).")
@click.option("--detector", help="Override the gallery's detector (e.g. the same weights at a new path).")
@click.option("--camera", help="Camera name of CLIP, looked up in the gallery's camera map (default: its file stem).")
@device_option("cpu, cuda or cuda:N.")
@quiet_option()
def query(clip: str, gallery_dir: str, top_k: int, as_json: bool, report: str | None, track_id: int | None,
          all_tracks: bool, mode: str, fuse_weight: float, start_s: float | None, end_s: float | None,
          box: str | None, group: str, since: str | None, until: str | None, expand: bool, rerank: bool,
          detector: str | None, camera: str | None, device: str | None, quiet: bool) -> None:
    """Search the gallery for the person in SOURCE: a clip (the longest track unless told otherwise),
    a photo (the largest person, or --box) or a folder of crops of one person."""
    from csip_reid.pipeline.query import format_table, run_query

    if track_id is not None and all_tracks:
        raise click.UsageError("use either --track-id or --all-tracks")
    results = run_query(gallery_dir, clip, top_k=top_k, track_id=track_id, all_tracks=all_tracks, mode=mode,
                        fuse_weight=fuse_weight, progress=not quiet and not as_json, start_s=start_s, end_s=end_s,
                        box=box, group=group, since=since, until=until, expand=expand, rerank=rerank,
                        detector=detector, device=device, camera=camera)
    reports = []
    if report:
        from csip_reid.gallery.report import write_report

        context = {"gallery": str(Path(gallery_dir).resolve()), "mode": mode, "top-k": top_k}
        for r in results:
            out = Path(report)
            if len(results) > 1:
                out = out.with_name(f"{out.stem}_t{r.query['track_id']}{out.suffix}")
            reports.append(str(write_report(out, r.query, r.hits, context=context).resolve()))
    if as_json:
        payload = results[0].to_dict() if len(results) == 1 and not all_tracks else \
            {"queries": [r.to_dict() for r in results]}
        if reports:
            payload["reports"] = reports
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo("\n\n".join(format_table(r) for r in results))
        for rp in reports:
            click.echo(f"report: {rp}")
