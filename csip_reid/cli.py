"""The ``reid`` command line.

Every user error is a :class:`~csip_reid.core.errors.ReidError`: printed as one line on stderr with a
non-zero exit status (``--verbose`` adds the traceback). Heavy libraries are imported inside the
commands so ``reid --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from csip_reid.cli_common import RegistryChoice
from csip_reid.core import __version__
from csip_reid.core.errors import ReidError


def _setup_env() -> None:
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


_VERBOSE = False


class _Group(click.Group):
    """Turns exceptions into one-line errors and exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `--verbose` may come anywhere (`reid index x --verbose`), not only before the command.
        global _VERBOSE
        if "--verbose" in args:
            _VERBOSE = True
            args = [a for a in args if a != "--verbose"]
        if args[:1] == ["-v"]:
            _VERBOSE = True
            args = args[1:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        verbose = _VERBOSE
        try:
            return super().invoke(ctx)
        except ReidError as e:
            if verbose:
                traceback.print_exc()
            _echo_err(f"error: {e}")
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            _echo_err("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:  # an unexpected bug: still one line unless --verbose
            if verbose:
                traceback.print_exc()
            _echo_err(f"error: unexpected {type(e).__name__}: {e} (rerun with --verbose for details)")
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reid")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors (accepted anywhere on the line).")
def main(verbose: bool) -> None:
    """Video person re-identification: index videos into a gallery, query it, train and evaluate CSIP-ReID."""
    _setup_env()


# ----------------------------------------------------------------------------------------- index
def _pipeline_options(f: Any) -> Any:
    opts = [
        click.option("--config", "config", type=click.Path(dir_okay=False), help="Pipeline YAML: a path or a shipped config's name (pipeline, offline_demo)."),
        click.option("--detector", help="Detector spec, e.g. ultralytics:yolo11n.pt or yolox:yolox_nano."),
        click.option("--tracker", type=RegistryChoice("tracker"), help="Tracker (see `reid backends`)."),
        click.option("--embedder", help="Embedder spec, e.g. onnx:osnet_x0_25_msmt17 or csip:runs/x/best.pt."),
        click.option("--pose", help="Pose back-end: none, movenet, yolo-pose, rtmpose-s ..."),
        click.option("--stride", type=click.IntRange(1), help="Process every N-th frame."),
        click.option("--scan", type=click.Choice(["adaptive", "full"]),
                     help="adaptive (default): detect motion onsets and keyframes only; full: every frame."),
        click.option("--device", help="cpu, cuda or cuda:N."),
        click.option("--decoder", type=click.Choice(["auto", "opencv", "pyav", "nvdec"]),
                     help="Video decoder: auto (default: the GPU's NVDEC with --device cuda when PyNvVideoCodec "
                          "is installed), opencv, nvdec."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _settings(config: str | None, **kw: Any) -> Any:
    from csip_reid.pipeline.settings import PipelineSettings

    return PipelineSettings.load(config, **kw)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False), help="Gallery folder (created if missing).")
@click.option("--camera", help="Camera name for these videos (default: see --camera-from).")
@click.option("--camera-from", type=click.Choice(["stem", "parent"]), default="stem", show_default=True,
              help="Without --camera: name each camera after the video's file stem or its folder (cam3/0800.mp4).")
@click.option("--camera-map", "camera_map", type=click.Path(dir_okay=False, exists=True),
              help="YAML/CSV mapping camera names to a CSIP model's training-camera indices (SIE); others get the mean camera.")
@_pipeline_options
@click.option("--start-time", help="Wall-clock start of the (one) video, ISO 8601 (2024-05-01T08:00:00+02:00).")
@click.option("--time-from-name", help="Start times from file names, strftime-style (cam3_%Y%m%d_%H%M%S); "
              "default: the container's creation_time, else unknown.")
@click.option("--force", is_flag=True, help="Re-index videos that are already in the gallery.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process; ray: Ray actors, one video each at a time (docs/scale.md).")
@click.option("--ray-address", help="Ray cluster to join: auto or ray://HOST:PORT (default: start a local Ray).")
@click.option("--workers", type=click.IntRange(1), help="Ray actors (default: as many as the cluster fits).")
@click.option("--gpus-per-worker", type=click.FloatRange(0), default=0.0, show_default=True,
              help="GPUs per Ray actor (fractions share a GPU).")
@click.option("--cpus-per-worker", type=click.FloatRange(0), default=1.0, show_default=True,
              help="CPUs per Ray actor.")
def index(paths: tuple[str, ...], gallery_dir: str, camera: str | None, camera_from: str, camera_map: str | None,
          config: str | None, detector: str | None,
          tracker: str | None, embedder: str | None, pose: str | None, stride: int | None, scan: str | None,
          device: str | None, decoder: str | None, start_time: str | None, time_from_name: str | None,
          force: bool, as_json: bool,
          quiet: bool, executor: str, ray_address: str | None, workers: int | None,
          gpus_per_worker: float, cpus_per_worker: float) -> None:
    """Detect, track and embed the people in videos (files or folders) into a gallery.

    Reruns skip videos already indexed; Ctrl-C keeps every finished video.
    """
    from csip_reid.core.errors import VideoError
    from csip_reid.core.video import iter_video_files
    from csip_reid.pipeline.indexer import Indexer

    files = iter_video_files(paths)
    if not files:
        raise VideoError(f"no video files found in: {', '.join(paths)}")
    from csip_reid.core.walltime import check_times
    from csip_reid.pipeline.camera_map import load_camera_map

    check_times(len(files), start_time, time_from_name)  # bad times fail before any work
    settings = _settings(config, detector=detector, tracker=tracker, embedder=embedder, pose=pose,
                         stride=stride, scan=scan, device=device, decoder=decoder,
                         camera_map=load_camera_map(camera_map) if camera_map else None)
    log = (lambda m: None) if as_json else (lambda m: click.echo(m, err=True))
    if executor == "local" and (ray_address or workers or gpus_per_worker):
        raise click.UsageError("--ray-address, --workers and --gpus-per-worker need --executor ray")
    if executor == "ray":
        from csip_reid.distributed import RayIndexer, RayOptions

        indexer: Any = RayIndexer(gallery_dir, settings, RayOptions(
            address=ray_address, workers=workers, cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker), progress=not quiet, log=log)
        summary = indexer.index(paths, camera=camera, force=force, camera_from=camera_from,
                                start_time=start_time, time_from_name=time_from_name)
    else:
        indexer = Indexer(gallery_dir, settings, progress=not quiet, log=log)
        summary = indexer.index(paths, camera=camera, force=force, camera_from=camera_from,
                                start_time=start_time, time_from_name=time_from_name)
    d = summary.to_dict()
    if as_json:
        click.echo(json.dumps(d, indent=2))
    else:
        click.echo(
            f"videos: {d['videos']} (indexed {d['indexed']}, no person {d['empty']}, skipped {d['skipped']}, "
            f"failed {d['failed']})  frames: {d['frames']}  tracklets: {d['tracklets']}  time: {d['seconds']:.1f}s"
        )
    if summary.interrupted:
        _echo_err("interrupted: finished videos are kept; rerun the same command to resume")
        sys.exit(130)
    if d["failed"]:
        sys.exit(1)


# ----------------------------------------------------------------------------------------- query
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


@main.command()
@click.argument("clip", metavar="SOURCE", type=click.Path())
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False))
@click.option("--top-k", "top_k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {query, hits: [...]}.")
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
@click.option("--device", help="cpu, cuda or cuda:N.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
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


# --------------------------------------------------------------------------------------- gallery
@main.group()
def gallery() -> None:
    """Inspect or edit a gallery."""


@gallery.command("info")
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def gallery_info(gallery_dir: str, as_json: bool) -> None:
    """Counts, embedder, index type and videos of a gallery."""
    from csip_reid.gallery.store import Gallery

    with Gallery.open(gallery_dir) as g:
        info = g.info()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    emb = info.get("embedder", {})
    idx = info.get("index", {})
    click.echo(f"gallery: {info['path']}  ({info.get('size_bytes', 0) / 1e6:.1f} MB)")
    click.echo(f"embedder: {emb.get('spec')} (dim {info.get('dim')}, fingerprint {info.get('fingerprint')})")
    click.echo(f"skeleton format: {info.get('skeleton_format') or 'none'}")
    click.echo(f"index: {idx.get('kind')} ({idx.get('ntotal')} vectors; exact up to {idx.get('exact_max')})")
    click.echo(f"index policy: {idx.get('compressed')} above {idx.get('compressed_max')} vectors, lists "
               f"{'on disk' if idx.get('on_disk') else 'in memory'} (change with `reid gallery reindex`)")
    click.echo(f"videos: {info.get('num_videos')}  tracklets: {info.get('num_tracklets')}  "
               f"failed: {info.get('num_failed')}")
    for v in info.get("videos", []):
        click.echo(f"  {v.get('tracklets', 0):>5} tracklets  {v.get('camera', '')!s:<16} {v.get('path')}")
    for v in info.get("failed", []):
        click.echo(f"  failed: {v.get('path')}: {v.get('error')}")


@gallery.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False),
              help="Destination gallery (created if missing).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def gallery_merge(sources: tuple[str, ...], gallery_dir: str, quiet: bool) -> None:
    """Merge galleries indexed elsewhere (same embedder) into GALLERY; reruns skip what is there."""
    from csip_reid.gallery.merge import merge_galleries

    s = merge_galleries(gallery_dir, list(sources), progress=not quiet)
    click.echo(f"merged {s['videos_added']} videos ({s['tracklets_added']} tracklets); "
               f"{s['videos_skipped']} already present")
    for path in s["conflicts"]:
        click.echo(f"  conflict, not merged: {path} is in the gallery with other content", err=True)


@gallery.command("remove")
@click.argument("video")
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False))
def gallery_remove(video: str, gallery_dir: str) -> None:
    """Remove VIDEO (path, file name or id) and its tracklets from the gallery."""
    from csip_reid.gallery.store import Gallery

    with Gallery.open(gallery_dir) as g:
        n = g.remove_video(video)
    click.echo(f"removed {video}: {n} tracklets")


from csip_reid.cli_train import register as _register_train  # noqa: E402

_register_train(main)
from csip_reid.cli_export import register as _register_export  # noqa: E402

_register_export(main)
from csip_reid.cli_identity import register as _register_identity  # noqa: E402

_register_identity(main)

from csip_reid.cli_gallery import register as _register_gallery  # noqa: E402

_register_gallery(main)

from csip_reid.cli_serve import register as _register_serve  # noqa: E402

_register_serve(main)

if __name__ == "__main__":  # pragma: no cover
    main()
