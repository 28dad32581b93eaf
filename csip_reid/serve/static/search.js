// The search page: send a clip (or a tracklet id) to /api/query, list the hits, play one, export.
"use strict";

const form = document.getElementById("search-form");
const statusLine = document.getElementById("status");
const resultsList = document.getElementById("results");
const exportButton = document.getElementById("export-button");
const chosen = new Set();

function updateExport() {
  exportButton.disabled = chosen.size === 0;
  exportButton.textContent = `Export evidence (${chosen.size})`;
}

exportButton.addEventListener("click", () => {
  const link = el("a", { href: `/api/export?tracklets=${[...chosen].join(",")}`, download: "evidence.zip" });
  document.body.append(link);
  link.click();
  link.remove();
});

function hitItem(h) {
  const box = el("input", { type: "checkbox", class: "pick", title: "include in the evidence export",
    onchange: (e) => { e.target.checked ? chosen.add(h.tracklet_id) : chosen.delete(h.tracklet_id); updateExport(); } });
  const name = h.video.split(/[\\/]/).pop();
  return el("li", { class: "hit", dataset: { tracklet: h.tracklet_id } },
    box,
    el("img", { class: "strip", src: h.crops_url, alt: `crops of track ${h.track_id}`, loading: "lazy",
      onerror: (e) => { if (h.thumb_url && !e.target.dataset.fallback) { e.target.dataset.fallback = "1"; e.target.src = h.thumb_url; } } }),
    el("div", { class: "facts" },
      el("div", {}, el("span", { class: "score", title: "cosine similarity" }, h.score.toFixed(3)), ` · #${h.rank}`),
      el("div", {}, `camera ${h.camera} · ${clock(h.start_s)}–${clock(h.end_s)}`),
      el("div", { class: "muted" }, `${name} · track ${h.track_id}`),
      el("div", { class: "row" },
        el("button", { class: "play primary", onclick: () => reidPlayer.open(h.tracklet_id) }, "Play"),
        el("a", { class: "button", href: `/search?tracklet=${h.tracklet_id}` }, "Find this person"))));
}

function showQuery(q) {
  const box = document.getElementById("query");
  box.replaceChildren();
  const facts = q.source === "tracklet"
    ? `track ${q.track_id} of ${q.video.split(/[\\/]/).pop()} (${clock(q.start_s)}–${clock(q.end_s)})`
    : `uploaded clip: the longest track, ${clock(q.start_s)}–${clock(q.end_s)}, ${q.num_frames} frames`;
  const img = q.source === "tracklet" ? `/media/crops/${q.tracklet_id}` : q.thumbnail_data;
  box.append(el("div", { class: "query-card card" }, img ? el("img", { src: img, alt: "query" }) : null,
    el("div", {}, el("b", {}, "Query: "), facts)));
}

function showResults(data) {
  showQuery(data.query);
  chosen.clear();
  updateExport();
  resultsList.replaceChildren(...data.hits.map(hitItem));
  document.getElementById("results-bar").hidden = false;
  document.getElementById("results-count").textContent =
    `${data.hits.length} appearance${data.hits.length === 1 ? "" : "s"}, most similar first`;
  if (!data.hits.length) resultsList.append(el("li", { class: "empty" }, "No match in the gallery."));
}

async function runSearch(body) {
  statusLine.textContent = "Searching… (the clip runs through the detector and the ReID model)";
  statusLine.classList.remove("error");
  document.getElementById("search-button").disabled = true;
  try {
    const response = await reidFetch("/api/query", { method: "POST", body });
    showResults(await response.json());
    statusLine.textContent = "";
  } catch (err) {
    statusLine.textContent = err.message;
    statusLine.classList.add("error");
  } finally {
    document.getElementById("search-button").disabled = false;
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const body = new FormData(form);
  const file = document.getElementById("file").files[0];
  if (file) body.delete("tracklet_id"); else body.delete("file");
  if (!file && !body.get("tracklet_id")) { statusLine.textContent = "Choose a clip first."; return; }
  for (const key of ["start_s", "end_s"]) if (!body.get(key)) body.delete(key);
  runSearch(body);
});

if (document.getElementById("tracklet_id").value) {
  const body = new FormData(form);
  body.delete("file");
  for (const key of ["start_s", "end_s"]) if (!body.get(key)) body.delete(key);
  runSearch(body);
}
