// The colour-hint page: open a photo, pin colours on it, download the result.
// Plain JavaScript, no libraries: the page must work offline and without a build step.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,          // what the app says about its model and limits (/api/info)
  photo: null,         // {id, width, height, name} of the open photo
  hints: [],           // [{x, y, color}] in the photo's own pixels
  colour: "#e02424",   // the colour the next click pins, unless suggesting
  suggesting: true,    // a click asks the model which colours it expects there, and pins the one chosen
  inFlight: false,     // a colourization is running; changes meanwhile wait for it
  stale: false,        // hints changed while one was running: colourize again when it returns
  resultUrl: null,     // blob: URL of the shown (and downloadable) result
};

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").dataset.state = kind;
  document.body.classList.toggle("busy", kind === "busy");
}

// A refusal from the app is JSON {"error": sentence}; anything else means the app itself is unreachable.
async function errorOf(response) {
  try {
    return (await response.json()).error || `The app answered ${response.status}.`;
  } catch (_) {
    return `The app answered ${response.status} ${response.statusText}.`;
  }
}

async function request(url, options) {
  try {
    return await fetch(url, options);
  } catch (_) {
    throw new Error("The app is not answering: is `python -m trainer.app` still running?");
  }
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toLocaleString(undefined, {maximumFractionDigits: 1})} MB`;
}

async function loadInfo() {
  const response = await request("/api/info");
  state.info = await response.json();
  const megapixels = (state.info.max_pixels / 1e6).toLocaleString(undefined, {maximumFractionDigits: 1});
  $("limits").textContent = `Gray or colour, up to ${megabytes(state.info.max_upload_bytes)} and ` +
    `${megapixels} megapixels. The photo stays on this computer.`;
  if (!state.info.hint_aware) {
    document.body.classList.add("no-hints");
    $("palette").setAttribute("aria-disabled", "true");
    $("palette").title = "This model was trained without colour hints";
  }
}

async function openFile(file) {
  showMessage("");
  if (state.info && file.size > state.info.max_upload_bytes) {
    showMessage(`This photo is ${megabytes(file.size)}, more than the limit of ` +
                `${megabytes(state.info.max_upload_bytes)}.`);
    return;
  }
  setStatus(`Opening ${file.name}…`, "busy");
  try {
    const response = await request("/api/photos", {method: "POST", body: file,
                                                      headers: {"Content-Type": "application/octet-stream"}});
    if (!response.ok) throw new Error(await errorOf(response));
    const photo = await response.json();
    state.photo = {...photo, name: file.name};
  } catch (error) {
    showMessage(error.message);
    setStatus(state.photo ? readyText() : "No photo yet.", state.photo ? "ready" : "idle");
    return;
  }
  state.hints = [];
  hideSuggestions();
  forgetResult();
  $("gray").src = `/api/photos/${state.photo.id}/gray.png`;
  $("drop-zone").hidden = true;
  document.querySelectorAll(".panel").forEach((panel) => { panel.hidden = false; });
  renderHints();
  colourize();
}

function forgetResult() {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = null;
  $("result").removeAttribute("src");
  $("result").removeAttribute("data-hints");
  $("download").removeAttribute("href");
  $("download").setAttribute("aria-disabled", "true");
}

// Only the newest hints matter: one request at a time, and one more when the hints changed meanwhile.
async function colourize() {
  if (state.inFlight) {
    state.stale = true;
    return;
  }
  state.inFlight = true;
  state.stale = false;
  const photo = state.photo;
  const hints = state.hints.slice();
  setStatus(hints.length ? "Colourizing with your hints…" : "Colourizing…", "busy");
  try {
    const response = await request(`/api/photos/${photo.id}/colourize`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({hints}),
    });
    if (!response.ok) throw new Error(await errorOf(response));
    const blob = await response.blob();
    if (photo === state.photo) await showResult(blob, hints.length, serverSeconds(response));
  } catch (error) {
    showMessage(error.message);
    setStatus(readyText(), "error");
  } finally {
    state.inFlight = false;
  }
  if (state.stale) colourize();
}

// The app reports its own time (Server-Timing), which is what a person waits for, less the transfer.
function serverSeconds(response) {
  const timing = response.headers.get("Server-Timing") || "";
  return [...timing.matchAll(/dur=([\d.]+)/g)].reduce((sum, match) => sum + Number(match[1]), 0) / 1000;
}

function showResult(blob, hintCount, seconds) {
  return new Promise((resolve) => {
    const previous = state.resultUrl;
    state.resultUrl = URL.createObjectURL(blob);
    const image = $("result");
    image.onload = () => {
      if (previous) URL.revokeObjectURL(previous);
      image.dataset.hints = String(hintCount);
      const link = $("download");
      link.href = state.resultUrl;
      link.download = `${state.photo.name.replace(/\.[^.]*$/, "")}-colourized.png`;
      link.setAttribute("aria-disabled", "false");
      if (!state.stale) {
        setStatus(`${readyText()} Colourized in ${seconds.toFixed(2)} s.`, "ready");
      }
      resolve();
    };
    image.src = state.resultUrl;
  });
}

function readyText() {
  const {width, height, name} = state.photo;
  const count = state.hints.length;
  const pinned = count === 1 ? "1 hint" : `${count} hints`;
  if (!state.info.hint_aware) return `${name}, ${width}×${height}. This model takes no colour hints.`;
  const next = state.suggesting ? " Click the photo to see the colours the model suggests there." :
    " Click the photo to pin a colour.";
  return `${name}, ${width}×${height}, ${pinned}.` + (count ? "" : next);
}

function renderHints() {
  for (const stage of [$("gray-stage"), $("result-stage")]) {
    stage.querySelectorAll(".dot").forEach((dot) => dot.remove());
    state.hints.forEach((hint, index) => stage.appendChild(makeDot(hint, index)));
  }
  $("clear").disabled = state.hints.length === 0;
}

function makeDot(hint, index) {
  const dot = document.createElement("button");
  dot.type = "button";
  dot.className = "dot";
  dot.style.left = `${(100 * hint.x) / state.photo.width}%`;
  dot.style.top = `${(100 * hint.y) / state.photo.height}%`;
  dot.style.background = hint.color;
  dot.title = `${hint.color} at (${Math.round(hint.x)}, ${Math.round(hint.y)}): click to remove`;
  dot.setAttribute("aria-label", `Remove the ${hint.color} hint`);
  dot.addEventListener("click", (event) => {
    event.stopPropagation();
    state.hints.splice(index, 1);
    changed();
  });
  return dot;
}

function changed() {
  renderHints();
  colourize();
}

// A click anywhere on either image pins the current colour at that point of the photo, or, when suggesting,
// shows the colours the model expects there.
function pinAt(event) {
  if (!state.photo || !state.info.hint_aware || event.target.classList.contains("dot")) return;
  const image = event.currentTarget.querySelector("img");
  const box = image.getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width) * state.photo.width;
  const y = ((event.clientY - box.top) / box.height) * state.photo.height;
  if (x < 0 || y < 0 || x >= state.photo.width || y >= state.photo.height) return;
  if (state.suggesting) {
    suggestAt(x, y);
    return;
  }
  state.hints.push({x, y, color: state.colour});
  changed();
}

// The model's distribution at the point, as swatches most likely first; choosing one pins it there.
async function suggestAt(x, y) {
  const photo = state.photo;
  showMessage("");
  $("suggestions-label").textContent = "Asking the model…";
  $("suggestion-swatches").replaceChildren();
  $("suggestions").hidden = false;
  try {
    const response = await request(`/api/photos/${photo.id}/suggest`, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({x, y, hints: state.hints}),
    });
    if (!response.ok) throw new Error(await errorOf(response));
    const answer = await response.json();
    if (photo === state.photo) showSuggestions(x, y, answer.suggestions);
  } catch (error) {
    hideSuggestions();
    showMessage(error.message);
  }
}

function showSuggestions(x, y, suggestions) {
  $("suggestions-label").textContent = `Suggested at (${Math.round(x)}, ${Math.round(y)}):`;
  $("suggestion-swatches").replaceChildren(...suggestions.map(({color, probability}) => {
    const swatch = document.createElement("button");
    swatch.type = "button";
    swatch.className = "suggestion";
    swatch.style.background = color;
    swatch.dataset.colour = color;
    swatch.textContent = `${Math.round(100 * probability)}%`;
    swatch.title = `${color}, probability ${probability.toFixed(2)}: click to pin it here`;
    swatch.addEventListener("click", () => {
      hideSuggestions();
      state.hints.push({x, y, color});
      changed();
    });
    return swatch;
  }));
}

function hideSuggestions() {
  $("suggestions").hidden = true;
  $("suggestion-swatches").replaceChildren();
}

function choose(colour, selected) {
  state.colour = colour;
  state.suggesting = selected === $("suggest-mode");
  document.querySelectorAll(".swatch, .mode").forEach((swatch) => {
    swatch.setAttribute("aria-pressed", String(swatch === selected));
  });
  document.querySelector(".custom").dataset.selected = String(selected === $("custom-colour"));
  if (!state.suggesting) hideSuggestions();
}

function setUpPalette() {
  document.querySelectorAll(".swatch").forEach((swatch) => {
    swatch.style.background = swatch.dataset.colour;
    swatch.addEventListener("click", () => choose(swatch.dataset.colour, swatch));
  });
  $("custom-colour").addEventListener("input", (event) => choose(event.target.value, event.target));
  $("custom-colour").addEventListener("click", (event) => choose(event.target.value, event.target));
  $("suggest-mode").addEventListener("click", () => choose(state.colour, $("suggest-mode")));
  $("suggestions-close").addEventListener("click", hideSuggestions);
  choose(state.colour, $("suggest-mode"));
}

function setUpDropping() {
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) document.body.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) openFile(file);
  });
}

function setUp() {
  setUpPalette();
  setUpDropping();
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";  // choosing the same file again still opens it
    if (file) openFile(file);
  });
  $("gray-stage").addEventListener("click", pinAt);
  $("result-stage").addEventListener("click", pinAt);
  $("clear").addEventListener("click", () => {
    state.hints = [];
    changed();
  });
  loadInfo().catch((error) => showMessage(error.message));
}

setUp();
