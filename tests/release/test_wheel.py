"""The wheel installs clean: built from the tracked files, installed alone into a fresh venv, it indexes,
queries and serves a real video with a shipped config, so a file missing from the package data fails here.

The fresh venv gets only the wheel (``--no-deps``); the test environment's site-packages is appended
to its path by a ``.pth`` file, so torch and friends are reused, not reinstalled (about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VIDEO = "tfjs_pose_1.mp4"  # 120 frames, one person


def _tracked_files() -> list[str]:
    """The files of the repository the wheel may use (git's list; the tree's when it is no checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        return [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "dist", "__pycache__"}
        return [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(REPO).parts)]


def _run(cmd: list[str], env: dict, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict:
    """Build the wheel from a clean copy of the tracked files and install it alone into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    files = _tracked_files()
    for rel in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / rel).is_symlink():
            (src / rel).symlink_to(os.readlink(REPO / rel))
        elif (REPO / rel).is_file():
            shutil.copy2(REPO / rel, src / rel)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist")]
    if _has_build_backend():
        build.append("--no-build-isolation")
    _run([*build, str(src)], dict(os.environ), tmp)
    (wheel,) = (tmp / "dist").glob("csip_reid-*.whl")

    env_dir = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], dict(os.environ), tmp)
    py = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
          f"{wheel}[serve]"], dict(os.environ), tmp)
    # Only now: the test environment's packages (torch, faiss, fastapi...) behind the venv's own.
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     dict(os.environ), tmp).stdout.strip())
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_csip_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(REID_OFFLINE="1", YOLO_OFFLINE="1",
               REID_CACHE_DIR=str(tmp / "cache"), YOLO_CONFIG_DIR=str(tmp / "ycfg"),
               PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    work = tmp / "work"  # not the repository: nothing may be imported from the checkout
    work.mkdir()
    return {"env": env, "cwd": work, "bin": env_dir / "bin", "site": site, "wheel": wheel, "files": files}


def _has_build_backend() -> bool:
    """Build without isolation (offline) when this environment has the backend pyproject.toml asks for."""
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 68


def test_wheel_holds_every_package_file_and_the_version(venv: dict) -> None:
    installed = {str(p.relative_to(venv["site"])) for p in (venv["site"] / "csip_reid").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    tracked = {f for f in venv["files"] if f.startswith("csip_reid/")}
    assert tracked - installed == set(), "tracked package files missing from the wheel"
    assert installed - tracked == set(), "files in the wheel that are not tracked"

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert venv["wheel"].name.startswith(f"csip_reid-{version}-")
    out = _run([str(venv["bin"] / "reid"), "--version"], venv["env"], venv["cwd"]).stdout
    assert out.strip() == f"reid, version {version}"
    where = _run([str(venv["bin"] / "python"), "-c", "import csip_reid; print(csip_reid.__file__)"],
                 venv["env"], venv["cwd"]).stdout.strip()
    assert Path(where).is_relative_to(venv["site"]), f"csip_reid imported from {where}, not the wheel"


@pytest.fixture(scope="module")
def gallery(venv: dict, videos_dir: Path, models_dir: Path) -> tuple[Path, Path, dict]:
    """The sample indexed by the installed ``reid`` with the shipped ``offline_demo`` config."""
    venv["env"]["REID_WEIGHTS_DIR"] = str(models_dir)
    video = videos_dir / VIDEO
    if not video.is_file():
        pytest.skip(f"{VIDEO} missing")
    g = venv["cwd"] / "gallery"
    out = _run([str(venv["bin"] / "reid"), "index", str(video), "--gallery", str(g), "--config", "offline_demo",
                "-q", "--json"], venv["env"], venv["cwd"]).stdout
    return g, video, json.loads(out)


REQUIREMENTS_MET = """
import json
from importlib.metadata import PackageNotFoundError, distribution, version
from packaging.requirements import Requirement
unmet = []
for req in map(Requirement, distribution("csip-reid").requires or []):
    if req.marker and not req.marker.evaluate({"extra": "serve"}):
        continue
    try:
        have = version(req.name)
    except PackageNotFoundError:
        unmet.append(str(req))
        continue
    if not req.specifier.contains(have, prereleases=True):
        unmet.append(f"{req} (have {have})")
print(json.dumps(unmet))
"""


def test_wheel_requirements_with_serve_are_met(venv: dict) -> None:
    """Every requirement the wheel declares, base and ``[serve]``, is met by the environment it runs in."""
    out = _run([str(venv["bin"] / "python"), "-c", REQUIREMENTS_MET], venv["env"], venv["cwd"]).stdout
    assert json.loads(out) == []
    requires = _run([str(venv["bin"] / "python"), "-c",
                     "from importlib.metadata import requires; print('\\n'.join(requires('csip-reid')))"],
                    venv["env"], venv["cwd"]).stdout
    assert 'fastapi>=0.115; extra == "serve"' in requires.splitlines()


def test_index_and_query_from_the_wheel(venv: dict, gallery: tuple[Path, Path, dict]) -> None:
    g, video, index = gallery
    assert (index["indexed"], index["failed"], index["tracklets"]) == (1, 0, 1)
    assert index["frames"] == 120
    out = _run([str(venv["bin"] / "reid"), "query", str(video), "--gallery", str(g), "-q", "--json"],
               venv["env"], venv["cwd"]).stdout
    hits = json.loads(out)["hits"]
    assert hits[0]["video"] == str(video) and hits[0]["score"] > 0.99


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - a local test server
        return r.status, r.read()


def test_serve_pages_and_static_files_from_the_wheel(venv: dict, gallery: tuple[Path, Path, dict]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(venv["bin"] / "reid"), "serve", "--gallery", str(gallery[0]), "--host", "127.0.0.1",
                             "--port", str(port)], env=venv["env"], cwd=venv["cwd"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, page = time.monotonic() + 90, None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = _get(base + "/")
            except OSError:
                time.sleep(0.3)
        assert page is not None, f"reid serve did not answer: {proc.poll()} {proc.stdout.read() if proc.poll() is not None else ''}"
        assert page[0] == 200 and VIDEO.encode() in page[1]
        status, css = _get(base + "/static/app.css")
        assert status == 200 and css == (REPO / "csip_reid/serve/static/app.css").read_bytes()
        status, docs = _get(base + "/docs")
        assert status == 200 and b"/api/gallery" in docs
    finally:
        proc.terminate()
        proc.wait(timeout=20)
