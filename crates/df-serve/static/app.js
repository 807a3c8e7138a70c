// The page's script: no framework, no build step. Sends the chosen or dropped file to
// /v1/score as the request body, draws the face boxes over it, lists each face's score
// and heatmap, says the verdict in words, and shows the model card.
"use strict";

const $ = (id) => document.getElementById(id);

function words(result) {
  if (result.p_fake === null || result.p_fake === undefined) {
    return { text: "No face found: nothing to score.", cls: "noface" };
  }
  const p = result.p_fake;
  const pct = (100 * p).toFixed(1) + "%";
  if (result.label === "fake") {
    return { text: "Likely fake (p(fake) = " + pct + ")", cls: "fake" };
  }
  return { text: "Likely real (p(fake) = " + pct + ")", cls: "real" };
}

function setVerdict(text, cls, state) {
  const v = $("verdict");
  v.textContent = text;
  v.className = cls;
  v.dataset.state = state;
}

// Every face box of the result, each with its score: a photo's faces, or a video's
// faces frame by frame.
function boxesOf(result) {
  if (result.kind === "video") {
    const out = [];
    (result.frame_faces || []).forEach((faces, frame) => {
      faces.forEach((f) => out.push({ ...f, frame }));
    });
    return out;
  }
  return result.faces || [];
}

function draw(result, media) {
  const canvas = $("boxes");
  const w = media.clientWidth, h = media.clientHeight;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const sx = w / result.width, sy = h / result.height;
  // A video's boxes: those of its first frame with a face (the frame the player shows first).
  let boxes = boxesOf(result);
  if (result.kind === "video" && boxes.length) {
    const first = boxes[0].frame;
    boxes = boxes.filter((b) => b.frame === first);
  }
  ctx.lineWidth = 2;
  ctx.font = "13px system-ui, sans-serif";
  for (const f of boxes) {
    const [x1, y1, x2, y2] = f.box;
    ctx.strokeStyle = f.p_fake >= 0.5 ? "#e53935" : "#43a047";
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText((100 * f.p_fake).toFixed(0) + "%", x1 * sx + 3, Math.max(12, y1 * sy - 4));
  }
}

function list(result) {
  const ul = $("faces");
  ul.replaceChildren();
  const boxes = boxesOf(result);
  const maps = result.explain || [];
  boxes.forEach((f, i) => {
    const li = document.createElement("li");
    const where = result.kind === "video" ? "frame " + (f.frame + 1) + ", " : "";
    li.textContent = where + "face " + (i + 1) + ": p(fake) " + f.p_fake.toFixed(3) +
      " (face detector " + f.probability.toFixed(3) + ")";
    if (maps[i]) {
      const img = document.createElement("img");
      img.alt = "Grad-CAM heatmap of face " + (i + 1);
      img.src = "data:image/png;base64," + maps[i].png;
      li.appendChild(img);
    }
    ul.appendChild(li);
  });
  if (!boxes.length && maps[0]) {
    const li = document.createElement("li");
    li.textContent = "whole picture";
    const img = document.createElement("img");
    img.alt = "Grad-CAM heatmap";
    img.src = "data:image/png;base64," + maps[0].png;
    li.appendChild(img);
    ul.appendChild(li);
  }
  if (result.kind === "video") {
    const li = document.createElement("li");
    li.textContent = result.frames_scored + " of " + result.frames + " sampled frames scored";
    ul.appendChild(li);
  }
  $("box-count").textContent = String(boxes.length);
  $("box-count").dataset.count = String(boxes.length);
  $("explain-note").textContent = result.explain_error ? "Heatmaps: " + result.explain_error : "";
}

async function score(file) {
  $("result").hidden = false;
  setVerdict("Scoring " + file.name + "\u2026", "", "busy");
  $("faces").replaceChildren();
  $("box-count").textContent = "0";
  $("box-count").dataset.count = "0";
  const video = file.type.startsWith("video/") || /\.(mp4|mov|m4v|mkv|webm|avi)$/i.test(file.name);
  const media = document.createElement(video ? "video" : "img");
  media.src = URL.createObjectURL(file);
  if (video) { media.controls = true; media.muted = true; }
  $("media").replaceChildren(media);
  const ready = new Promise((ok) => {
    media.addEventListener(video ? "loadeddata" : "load", ok, { once: true });
    media.addEventListener("error", ok, { once: true });
  });
  const explain = $("explain").checked && !video ? "?explain=1" : "";
  let result;
  try {
    const response = await fetch("/v1/score" + explain, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    result = await response.json();
    if (!response.ok) {
      setVerdict("Error " + response.status + ": " + (result.error || response.statusText), "error", "error");
      return;
    }
  } catch (e) {
    setVerdict("Error: " + e, "error", "error");
    return;
  }
  await ready;
  const w = words(result);
  setVerdict(w.text, w.cls, "done");
  $("timing").textContent = "scored in " + result.timings.total_ms.toFixed(0) + " ms";
  list(result);
  draw(result, media);
  window.lastResult = result;
}

function card(c) {
  const dl = $("card");
  dl.replaceChildren();
  const row = (k, v) => {
    if (v === null || v === undefined) return;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
    dl.append(dt, dd);
  };
  row("model", c.model + (c.family ? " (" + c.family + ")" : ""));
  row("description", c.description);
  row("parameters", c.parameters && c.parameters.total.toLocaleString());
  row("input", c.input && (c.input.width + "\u00d7" + c.input.height + ", resize " + c.input.resize +
    (c.input.center_crop ? ", centre crop " + c.input.center_crop : "")));
  row("faces", c.faces.scored ? "found and scored" + (c.faces.crop ? " (crop " + c.faces.crop.size + " px, margin " + c.faces.crop.margin + ")" : "") : "whole pictures");
  row("weights", c.weights.file + " (sha256 " + c.weights.sha256.slice(0, 16) + "\u2026)");
  if (c.run) {
    row("training data audit", c.run.audit || "not recorded");
    row("validation", c.run.validation);
  }
  (c.notes || []).forEach((n) => row("note", n));
}

function init() {
  fetch("/v1/model").then((r) => r.json()).then(card).catch((e) => {
    $("card").textContent = "model card: " + e;
  });
  $("file").addEventListener("change", () => {
    if ($("file").files.length) score($("file").files[0]);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) score(e.dataTransfer.files[0]);
  });
}

init();
