"""``reid index``: videos (files or folders) into a gallery, locally or on Ray actors."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from csip_reid.cli.common import (
    RegistryChoice,
    device_option,
    echo_err,
    gallery_option,
    json_option,
    quiet_option,
)


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
        device_option("cpu, cuda or cuda:N."),
        click.option("--decoder", type=click.Choice(["auto", "opencv", "pyav", "nvdec"]),
                     help="Video decoder: auto (default: the GPU's NVDEC with --device cuda when PyNvVideoCodec "
                          "is installed, else pyav), pyav (FFmpeg threads; quiet stretches decoded keyframes "
                          "only), opencv (every frame decoded), nvdec."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _settings(config: str | None, gallery_dir: str | None = None, **kw: Any) -> Any:
    """Defaults (or ``--config``), then the options given; an existing gallery without ``--config``
    grows with the pipeline it records (its embedder, detector, scan ...), so a new default does not
    lock it out."""
    from csip_reid.pipeline.indexer import recorded_embedder
    from csip_reid.pipeline.query import recorded_settings
    from csip_reid.pipeline.settings import PipelineSettings

    recorded = recorded_embedder(gallery_dir) if config is None and gallery_dir else None
    if recorded is not None:
        return recorded_settings(recorded, **kw)
    return PipelineSettings.load(config, **kw)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@gallery_option("Gallery folder (created if missing).")
@click.option("--camera", help="Camera name for these videos (default: see --camera-from).")
@click.option("--camera-from", type=click.Choice(["stem", "parent"]), default="stem", show_default=True,
              help="Without --camera: name each camera after the video's file stem or its folder (cam3/0800.mp4).")
@click.option("--camera-map", "camera_map", type=click.Path(dir_okay=False, exists=True),
              help="YAML/CSV mapping camera names to a CSIP model's training-camera indices (SIE); others get the mean camera.")
@_pipeline_options
@click.option("--start-time", help="Wall-clock start of the (one) video, ISO 8601 (2024-05-01T08:00:00+02:00).")
@click.option("--time-from-name", help="Start times from file names, strftime-style (cam3_%Y%m%d_%H%M%S); "
              "default: the container's creation_time, else unknown.")
@click.option("--segment-minutes", type=click.FloatRange(0), help="Commit a long video every N minutes of video "
              "(at the first moment after that when nobody is tracked); a rerun after a crash or Ctrl-C resumes "
              "there. 0: one commit per video. Default 0.5 (bench/README.md, \"Resume inside a video\").")
@click.option("--force", is_flag=True, help="Re-index videos that are already in the gallery (from their first frame).")
@json_option("Print the summary as JSON.")
@quiet_option()
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
          segment_minutes: float | None, force: bool, as_json: bool,
          quiet: bool, executor: str, ray_address: str | None, workers: int | None,
          gpus_per_worker: float, cpus_per_worker: float) -> None:
    """Detect, track and embed the people in videos (files or folders) into a gallery.

    Reruns skip videos already indexed and resume partly indexed ones; Ctrl-C keeps every finished
    video and every committed segment of a long one.
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
    settings = _settings(config, gallery_dir, detector=detector, tracker=tracker, embedder=embedder, pose=pose,
                         stride=stride, scan=scan, device=device, decoder=decoder,
                         segment_s=None if segment_minutes is None else 60.0 * segment_minutes,
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
        echo_err("interrupted: finished videos and committed segments are kept; rerun the same command to resume")
        sys.exit(130)
    if d["failed"]:
        sys.exit(1)
