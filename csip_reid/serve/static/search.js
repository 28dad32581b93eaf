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

let current = null;   // the last /api/query answer shown

function anchorOf(data) {
  // "same person" means: the same as the query's tracklet, or for an upload the best hit (#1)
  if (data.query.tracklet_id !== undefined && data.query.tracklet_id !== null) return data.query.tracklet_id;
  return data.hits.length ? data.hits[0].tracklet_id : null;
}

async function sendFeedback(payload, message) {
  statusLine.classList.remove("error");
  try {
    const response = await reidFetch("/api/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload) });
    const stored = await response.json();
    const regrouped = await reidFetch("/api/regroup", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(current) });
    showResults(await regrouped.json());
    statusLine.textContent = `${message} (label ${stored.label.id} stored; person #${stored.identity})`;
    statusLine.dataset.label = String(stored.label.id);
  } catch (err) {
    statusLine.textContent = err.message;
    statusLine.classList.add("error");
  }
}

function feedbackButtons(h, anchor) {
  const row = el("div", { class: "row feedback" });
  if (anchor !== null && anchor !== h.tracklet_id) {
    const ref = current.query.source === "tracklet" ? "the query" : "#1";
    row.append(
      el("button", { class: "same", title: `label: the same person as ${ref}`,
        onclick: () => sendFeedback({ tracklet_id: h.tracklet_id, same_as: anchor }, `#${h.rank} is the same person as ${ref}`) },
        "Same person"),
      el("button", { class: "not-same", title: `label: not the same person as ${ref}`,
        onclick: () => sendFeedback({ tracklet_id: h.tracklet_id, not_same: anchor }, `#${h.rank} is not the same person as ${ref}`) },
        "Not the same"));
  }
  row.append(el("button", { class: "name", title: "give this person a name",
    onclick: () => {
      const name = prompt("Name of this person (e.g. a case reference):");
      if (name && name.trim()) sendFeedback({ tracklet_id: h.tracklet_id, name: name.trim() }, `named "${name.trim()}"`);
    } }, "Name…"));
  return row;
}

function hitItem(h, anchor) {
  const box = el("input", { type: "checkbox", class: "pick", title: "include in the evidence export",
    onchange: (e) => { e.target.checked ? chosen.add(h.tracklet_id) : chosen.delete(h.tracklet_id); updateExport(); } });
  if (chosen.has(h.tracklet_id)) box.checked = true;
  const name = h.video.split(/[\\/]/).pop();
  const when = h.start_time ? `${h.start_time.replace("T", " ").replace("+00:00", " UTC")}` : `${clock(h.start_s)}–${clock(h.end_s)} into the video`;
  return el("li", { class: "hit", dataset: { tracklet: h.tracklet_id } },
    box,
    el("img", { class: "strip", src: h.crops_url, alt: `crops of track ${h.track_id}`, loading: "lazy",
      onerror: (e) => { if (h.thumb_url && !e.target.dataset.fallback) { e.target.dataset.fallback = "1"; e.target.src = h.thumb_url; } } }),
    el("div", { class: "facts" },
      el("div", {}, el("span", { class: "score", title: "cosine similarity" }, h.score.toFixed(3)), ` · #${h.rank} · camera ${h.camera}`),
      el("div", {}, when),
      el("div", { class: "muted" }, `${name} · track ${h.track_id}`),
      el("div", { class: "row" },
        el("button", { class: "play primary", onclick: () => reidPlayer.open(h.tracklet_id) }, "Play"),
        el("a", { class: "button", href: `/search?tracklet=${h.tracklet_id}` }, "Find this person")),
      feedbackButtons(h, anchor)));
}

function personBlock(p, hitsById, anchor) {
  const title = p.identity === null ? "Not grouped yet" : (p.name ? `${p.name}` : `Person #${p.identity}`);
  const seen = p.first_seen ? ` · ${p.first_seen.replace("T", " ").replace("+00:00", "")} → ${(p.last_seen || "").replace("T", " ").replace("+00:00", "")} UTC` : "";
  return el("li", { class: "person-group", dataset: { identity: p.identity === null ? "" : p.identity } },
    el("div", { class: "person-head" },
      el("b", {}, p.identity === null ? title : el("a", { href: `/person/${p.identity}` }, title)),
      ` · best ${p.score.toFixed(3)} · ${p.appearances} appearance${p.appearances === 1 ? "" : "s"} in the gallery · ${p.cameras.join(", ")}${seen}`),
    el("ol", { class: "results" }, (p.hits || p.tracklets).filter((id) => hitsById.has(id)).map((id) => hitItem(hitsById.get(id), anchor))));
}

function showQuery(q) {
  const box = document.getElementById("query");
  box.replaceChildren();
  const facts = q.source === "tracklet"
    ? `track ${q.track_id} of ${q.video.split(/[\\/]/).pop()} (${clock(q.start_s)}–${clock(q.end_s)})`
    : q.kind === "image" ? `uploaded photo: the largest of ${q.people_detected || 1} detected ${q.people_detected > 1 ? "people" : "person"}`
    : `uploaded clip: the longest track, ${clock(q.start_s)}–${clock(q.end_s)}, ${q.num_frames} frames`;
  const img = q.source === "tracklet" ? `/media/crops/${q.tracklet_id}` : q.thumbnail_data;
  box.append(el("div", { class: "query-card card" }, img ? el("img", { src: img, alt: "query" }) : null,
    el("div", {}, el("b", {}, "Query: "), facts)));
}

function showResults(data) {
  current = data;
  showQuery(data.query);
  for (const id of [...chosen]) if (!data.hits.some((h) => h.tracklet_id === id)) chosen.delete(id);
  updateExport();
  const anchor = anchorOf(data);
  const hitsById = new Map(data.hits.map((h) => [h.tracklet_id, h]));
  const groups = data.people || data.hits.map((h) => ({ identity: null, score: h.score, appearances: 1, cameras: [h.camera], hits: [h.tracklet_id] }));
  resultsList.replaceChildren(...groups.map((p) => personBlock(p, hitsById, anchor)));
  document.getElementById("results-bar").hidden = false;
  const n = data.people ? data.people.length : data.hits.length;
  document.getElementById("results-count").textContent =
    `${n} ${n === 1 ? "person" : "people"} in ${data.hits.length} appearance${data.hits.length === 1 ? "" : "s"}, most similar first`;
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
  for (const key of ["start_s", "end_s", "since", "until"]) if (!body.get(key)) body.delete(key);
  for (const key of ["since", "until"]) {
    const v = body.get(key);   // datetime-local: "2026-05-01T08:00" in UTC as the label says
    if (v) body.set(key, `${v.length === 16 ? `${v}:00` : v}+00:00`);
  }
  runSearch(body);
});

if (document.getElementById("tracklet_id").value) {
  const body = new FormData(form);
  body.delete("file");
  for (const key of ["start_s", "end_s"]) if (!body.get(key)) body.delete(key);
  runSearch(body);
}
