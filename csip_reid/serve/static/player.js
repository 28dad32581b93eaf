// The player: the source video at a tracklet's span, its stored boxes drawn on a canvas that follows
// the playback time. Videos the browser can decode play in <video> (seekable through byte ranges);
// for other codecs (common in CCTV exports) the player falls back to frames decoded by the server.
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
    this.image = document.createElement("img");   // frame mode
    this.image.id = "frame";
    this.image.hidden = true;
    this.video.after(this.image);
    this.track = null;
    this.mode = "video";
    this.frameTime = 0;
    this.frameTimer = null;
    this.drawn = 0;          // draws with a box on the canvas (read by the browser tests)
    this.replayButton.addEventListener("click", () => this.seekToSpan(true));
    this.video.addEventListener("seeked", () => this.draw());
    this.video.addEventListener("timeupdate", () => this.draw());
    this.video.addEventListener("error", () => {
      // a decoding error after the first frame: go on with server-decoded frames from the same time
      if (!this.track || this.mode !== "video" || !this.video.getAttribute("src")) return;
      const at = this.video.currentTime || this.track.start_s;
      this.fallBack();
      this.showFrame(at);
    });
    this.loop();
  }

  now() { return this.mode === "frames" ? this.frameTime : this.video.currentTime; }

  duration() {
    const t = this.track;
    if (this.mode === "video" && this.video.duration) return this.video.duration;
    return t && t.fps ? (t.video_frames || t.end_frame + 1) / t.fps : 1;
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
    const when = t.start_time ? t.start_time.replace("T", " ").replace("+00:00", " UTC") : `${clock(t.start_s)}–${clock(t.end_s)}`;
    this.info.textContent = `${t.video_name} · camera ${t.camera} · track ${t.track_id} · ${when}`;
    this.details.hidden = false;
    this.details.href = `/tracklet/${t.tracklet_id}`;
    this.replayButton.disabled = false;
    document.querySelectorAll(".hit.playing").forEach((n) => n.classList.remove("playing"));
    document.querySelectorAll(`.hit[data-tracklet="${t.tracklet_id}"]`).forEach((n) => n.classList.add("playing"));
    await this.load(t);
    const duration = this.duration();
    this.spanMark.style.left = `${100 * t.start_s / duration}%`;
    this.spanMark.style.width = `${Math.max(0.5, 100 * (t.end_s - t.start_s) / duration)}%`;
    await this.seekToSpan(true);
  }

  async load(t) {
    const src = `/media/video/${t.video_id}`;
    this.stopFrames();
    if (this.mode === "frames" && this.videoId === t.video_id) return;
    this.videoId = t.video_id;
    this.setMode("video");
    if (this.video.src.endsWith(src) && this.video.readyState >= 2) return;
    // "loadeddata" needs the first frame decoded: a container the browser reads but a codec it
    // cannot decode fails here, not later
    const ok = await new Promise((resolve) => {
      const done = (value) => { this.video.removeEventListener("loadeddata", yes); this.video.removeEventListener("error", no); resolve(value); };
      const yes = () => done(true), no = () => done(false);
      this.video.addEventListener("loadeddata", yes);
      this.video.addEventListener("error", no);
      this.video.src = src;
    });
    if (!ok) this.fallBack();
  }

  fallBack() {
    if (this.mode === "frames") return;
    // keep the clock where the video was, so the box and the span cursor do not jump back to 0
    this.frameTime = this.video.currentTime || (this.track ? this.track.start_s : 0);
    this.setMode("frames");
    this.info.textContent += " · this browser cannot decode the file's codec: showing frames decoded by the server";
  }

  setMode(mode) {
    this.mode = mode;
    this.root.dataset.mode = mode;
    this.video.hidden = mode === "frames";
    this.image.hidden = mode !== "frames";
    if (mode === "frames") { this.video.removeAttribute("src"); this.video.load(); }
  }

  async showFrame(time) {
    const t = this.track;
    const frame = Math.max(0, Math.round(time * t.fps));
    await new Promise((resolve) => {
      this.image.onload = resolve;
      this.image.onerror = resolve;
      this.image.src = `/media/frame/${t.video_id}?frame=${frame}`;
    });
    this.frameTime = frame / t.fps;
    this.draw();
  }

  stopFrames() {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  playFrames() {
    // about 5 frames a second of the recording's time, one request at a time; stops after the span
    const t = this.track;
    const step = async () => {
      if (!this.track || this.mode !== "frames") return;
      const next = this.frameTime + Math.max(1, Math.round(t.fps / 5)) / t.fps;
      if (next > t.end_s + 1) { this.stopFrames(); return; }
      await this.showFrame(next);
      this.frameTimer = setTimeout(step, 200);
    };
    this.stopFrames();
    this.frameTimer = setTimeout(step, 200);
  }

  async seekToSpan(play) {
    if (!this.track) return;
    if (this.mode === "frames") {
      await this.showFrame(this.track.start_s);
      if (play) this.playFrames();
      return;
    }
    const seeked = new Promise((resolve) => this.video.addEventListener("seeked", resolve, { once: true }));
    this.video.currentTime = this.track.start_s;
    await seeked;
    this.draw();
    if (play) this.video.play().catch(() => { /* autoplay refused: the user presses play */ });
  }

  boxAt(time) {
    const t = this.track;
    if (!t || !t.boxes.length) return null;
    const frame = Math.round(time * t.fps);
    let lo = 0, hi = t.boxes.length - 1;   // the last stored observation at or before this frame
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
    const c = this.canvas, t = this.track;
    if (!t) return;
    const w = t.width || this.video.videoWidth, h = t.height || this.video.videoHeight;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const now = this.now();
    this.root.dataset.time = now.toFixed(3);
    this.cursor.style.left = `${Math.min(100, 100 * now / this.duration())}%`;
    const box = this.boxAt(now);
    if (!box) return;
    const [, , x1, y1, x2, y2] = box;
    ctx.lineWidth = Math.max(2, c.width / 240);
    ctx.strokeStyle = "#f59e0b";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = "#f59e0b";
    ctx.font = `${Math.max(12, c.height / 28)}px system-ui, sans-serif`;
    ctx.fillText(`track ${t.track_id}`, x1 + 3, Math.max(14, y1 - 5));
    this.drawn += 1;
    this.root.dataset.drawn = String(this.drawn);
  }

  loop() {
    // every animation frame while playing; with requestVideoFrameCallback also on each decoded frame
    const tick = () => {
      if (this.mode === "video" && !this.video.paused) this.draw();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    let chained = false;
    const onFrame = () => {
      this.draw();
      if (this.video.paused || this.mode !== "video") { chained = false; return; }
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.video.addEventListener("play", () => {
      if (!chained) { chained = true; this.video.requestVideoFrameCallback(onFrame); }
    });
  }
}

const reidPlayer = new ReidPlayer(document.getElementById("player"));

// Lists of appearances (video and person pages): a row's Play button, or a timeline segment,
// opens that tracklet in the player.
document.querySelectorAll("[data-tracklet]").forEach((el) => {
  const target = el.classList.contains("seg") ? el : el.querySelector(".play");
  if (target) target.addEventListener("click", () => reidPlayer.open(Number(el.dataset.tracklet)));
});
