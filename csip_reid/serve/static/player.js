// The player: the source video at a tracklet's span, its stored boxes drawn on a canvas that follows
// video.currentTime (requestVideoFrameCallback where available, else every animation frame).
"use strict";

class ReidPlayer {
  constructor(root) {
    this.root = root;
    this.video = root.querySelector("#video");
    this.canvas = root.querySelector("#overlay");
    this.info = root.querySelector("#player-info");
    this.empty = root.querySelector("#player-empty");
    this.spanMark = root.querySelector("#span-mark");
    this.cursor = root.querySelector("#span-cursor");
    this.replayButton = root.querySelector("#replay");
    this.details = root.querySelector("#open-tracklet");
    this.track = null;
    this.drawn = 0;          // frames with a box drawn (read by the browser tests)
    this.replayButton.addEventListener("click", () => this.seekToSpan(true));
    this.video.addEventListener("seeked", () => this.draw());
    this.video.addEventListener("timeupdate", () => this.draw());
    this.video.addEventListener("error", () => {
      this.info.textContent = "This browser cannot play the video file (its codec). Use Export evidence to get the clip.";
      this.info.classList.add("error");
    });
    this.loop();
  }

  async open(trackletId) {
    const response = await reidFetch(`/api/tracklets/${trackletId}`);
    const t = await response.json();
    this.track = t;
    this.root.dataset.tracklet = String(t.tracklet_id);
    this.root.dataset.spanStart = String(t.start_s);
    this.root.dataset.spanEnd = String(t.end_s);
    this.empty.hidden = true;
    this.info.classList.remove("error");
    this.info.textContent = `${t.video_name} · camera ${t.camera} · track ${t.track_id} · ${clock(t.start_s)}–${clock(t.end_s)}`;
    this.details.hidden = false;
    this.details.href = `/tracklet/${t.tracklet_id}`;
    this.replayButton.disabled = false;
    document.querySelectorAll(".hit.playing").forEach((n) => n.classList.remove("playing"));
    document.querySelectorAll(`.hit[data-tracklet="${t.tracklet_id}"]`).forEach((n) => n.classList.add("playing"));
    const src = `/media/video/${t.video_id}`;
    if (!this.video.src.endsWith(src)) {
      this.video.src = src;
      await new Promise((resolve) => this.video.addEventListener("loadedmetadata", resolve, { once: true }));
    }
    const duration = this.video.duration || (t.end_s + 1);
    this.spanMark.style.left = `${100 * t.start_s / duration}%`;
    this.spanMark.style.width = `${Math.max(0.5, 100 * (t.end_s - t.start_s) / duration)}%`;
    await this.seekToSpan(true);
  }

  async seekToSpan(play) {
    if (!this.track) return;
    this.video.currentTime = this.track.start_s;
    await new Promise((resolve) => this.video.addEventListener("seeked", resolve, { once: true }));
    this.draw();
    if (play) this.video.play().catch(() => { /* autoplay refused: the user presses play */ });
  }

  boxAt(time) {
    const t = this.track;
    if (!t || !t.boxes.length) return null;
    const frame = Math.round(time * t.fps);
    // binary search: the last stored observation at or before this frame
    let lo = 0, hi = t.boxes.length - 1;
    if (frame < t.boxes[0][0] || frame > t.boxes[hi][0] + 1) return null;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (t.boxes[mid][0] <= frame) lo = mid; else hi = mid - 1;
    }
    const box = t.boxes[lo];
    const gap = lo + 1 < t.boxes.length ? t.boxes[lo + 1][0] - box[0] : 1;
    return frame - box[0] <= Math.max(1, gap) ? box : null;
  }

  draw() {
    const v = this.video, c = this.canvas, t = this.track;
    if (!t) return;
    const w = v.videoWidth || t.width, h = v.videoHeight || t.height;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const duration = v.duration || 1;
    this.cursor.style.left = `${100 * v.currentTime / duration}%`;
    const box = this.boxAt(v.currentTime);
    if (!box) return;
    const [, , x1, y1, x2, y2] = box;
    const sx = c.width / t.width, sy = c.height / t.height;
    ctx.lineWidth = Math.max(2, c.width / 240);
    ctx.strokeStyle = "#f59e0b";
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    ctx.fillStyle = "#f59e0b";
    ctx.font = `${Math.max(12, c.height / 28)}px system-ui, sans-serif`;
    ctx.fillText(`track ${t.track_id}`, x1 * sx + 3, Math.max(14, y1 * sy - 5));
    this.drawn += 1;
    this.root.dataset.drawn = String(this.drawn);
  }

  loop() {
    const step = () => { this.draw(); this.schedule(step); };
    this.schedule(step);
  }

  schedule(step) {
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype && this.video.src) {
      this.video.requestVideoFrameCallback(step);
    } else {
      requestAnimationFrame(step);
    }
  }
}

const reidPlayer = new ReidPlayer(document.getElementById("player"));
