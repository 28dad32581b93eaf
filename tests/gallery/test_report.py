"""The HTML search report: escaping, one row per hit, the query, embedded images."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.gallery import Gallery, Hit, write_report
from csip_reid.gallery.report import clock
from tests.helpers.gallery import add_video, fake_embedder_info, unit_vectors

EVIL = 'a<b>&"c".mp4'


def _hit(rank: int, thumbnail: str | None, video: str = f"/cases/{EVIL}") -> Hit:
    return Hit(rank=rank, score=1.0 - rank / 10, tracklet_id=rank, video=video, video_name=Path(video).name,
               camera="lobby<1>", track_id=40 + rank, start_frame=100 * rank, end_frame=100 * rank + 50,
               start_s=61.0 * rank, end_s=61.0 * rank + 5, thumbnail=thumbnail)


@pytest.fixture
def thumb(tmp_path: Path) -> str:
    path = tmp_path / "t.jpg"
    img = np.zeros((64, 32, 3), np.uint8)
    img[:, :, 2] = 200
    cv2.imwrite(str(path), img)
    return str(path)


def _body_rows(text: str) -> list[str]:
    return re.findall(r"<tr>.*?</tr>", text.split("<tbody>", 1)[1], flags=re.S)


def test_escaping(tmp_path: Path, thumb: str) -> None:
    query = {"video": f"/q/{EVIL}", "track_id": 3, "thumbnail": thumb}
    out = write_report(tmp_path / "r.html", query, [_hit(1, thumb)], title="case <7> & co")
    text = out.read_text(encoding="utf-8")
    assert "a&lt;b&gt;&amp;&quot;c&quot;.mp4" in text
    assert "<b>" not in text and EVIL not in text
    assert "lobby&lt;1&gt;" in text and "lobby<1>" not in text
    assert "<title>case &lt;7&gt; &amp; co</title>" in text


def test_rows_query_and_embedded_images(tmp_path: Path, thumb: str) -> None:
    hits = [_hit(r, thumb if r != 3 else str(tmp_path / "missing.jpg"), video=f"/v/cam{r}.mp4") for r in (1, 2, 3)]
    query = {"video": "/q/query_clip.mp4", "track_id": 17, "start_s": 2.5, "thumbnail": thumb}
    text = write_report(tmp_path / "sub" / "r.html", query, hits, context={"gallery": "/g"}).read_text()
    rows = _body_rows(text)
    assert len(rows) == 3
    for row, h in zip(rows, hits, strict=True):
        assert f"cam{h.rank}.mp4" in row and f"{h.score:.3f}" in row and f">{h.track_id}<" in row
        assert f"{clock(h.start_s)}–{clock(h.end_s)}" in row and f"{h.start_frame}–{h.end_frame}" in row
    assert "no image" in rows[2]
    query_block = text.split('id="query"', 1)[1].split("</div>", 1)[0]
    assert "query_clip.mp4" in query_block and ">17<" in query_block
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)
    assert len(uris) == 3  # the query and the two hits that have a thumbnail
    img = cv2.imdecode(np.frombuffer(base64.b64decode(uris[0]), np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (64, 32, 3) and img[:, :, 2].mean() > 150
    assert not re.search(r'src="(?!data:)', text)  # nothing refers to files outside the report


def test_report_from_a_real_search(tmp_path: Path) -> None:
    vecs = unit_vectors(6)
    with Gallery.create(tmp_path / "g", fake_embedder_info()) as g:
        add_video(g, "x.mp4", vecs)
        hits = g.search(vecs[0], k=4)[0]
    query = {"video": "q.mp4", "thumbnail": np.full((50, 20, 3), 255, np.uint8)}  # an in-memory crop
    text = write_report(tmp_path / "r.html", query, [h.to_dict() for h in hits]).read_text()
    assert len(_body_rows(text)) == 4 and text.count("data:image/jpeg;base64,") == 5


@pytest.mark.parametrize("seconds, expected", [(0, "00:00"), (75.4, "01:15"), (599.6, "10:00"), (3725, "1:02:05")])
def test_clock(seconds: float, expected: str) -> None:
    assert clock(seconds) == expected
