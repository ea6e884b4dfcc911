// PixArtLora web demo: builds the form from /api/info, queues jobs, follows them over server-sent events and
// keeps a gallery of results (rebuilt from /api/results, so it survives a reload). No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const FORM_KEY = "pixartlora.form";
const JOB_KEY = "pixartlora.job";
const THEME_KEY = "pixartlora.theme";

let info = null;       // GET /api/info
let events = null;     // EventSource of the job being followed
let jobId = null;
let startedAt = null;  // when the followed job started running (for the pace estimate)
let shownVersion = -1; // version of the snapshot on screen: replies and events can arrive out of order

// ---------- theme ----------
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem(THEME_KEY));
function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
}

// ---------- form ----------
function ratioLabel(w, h) {
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  const g = gcd(w, h);
  const [a, b] = [w / g, h / g];
  return a <= 32 && b <= 32 ? `${a}:${b}` : (w / h).toFixed(2);
}

function buildForm() {
  $("model-name").textContent = info.model;
  $("model-name").title = `Model: ${info.model}`;
  document.title = `PixArtLora · ${info.model}`;

  const sampler = $("sampler");
  for (const s of info.samplers) sampler.add(new Option(s.name, s.name));
  sampler.value = info.defaultSampler;

  const size = $("size");
  const groups = { Portrait: [], Square: [], Landscape: [] };
  for (const s of info.sizes) {
    const key = s.height > s.width ? "Portrait" : s.height === s.width ? "Square" : "Landscape";
    groups[key].push(s);
  }
  for (const [name, sizes] of Object.entries(groups)) {
    if (!sizes.length) continue;
    const group = document.createElement("optgroup");
    group.label = name;
    for (const s of sizes) group.append(new Option(`${s.width} × ${s.height}  ·  ${ratioLabel(s.width, s.height)}`, `${s.width}x${s.height}`));
    size.append(group);
  }
  size.value = `${info.defaultSize.width}x${info.defaultSize.height}`;
  $("size-table").textContent = `${info.sizes.length} aspect-ratio bins`;

  const limits = info.limits;
  $("steps").max = limits.maxSteps;
  $("guidance").min = limits.minGuidanceScale;
  $("guidance").max = limits.maxGuidanceScale;
  $("image-count").max = limits.maxImages;
  $("seed").max = limits.maxSeed;
  $("prompt").maxLength = limits.maxPromptLength;
  $("negative-prompt").maxLength = limits.maxPromptLength;
  applySamplerDefaults();

  const loras = $("loras");
  if (!info.loras.length) {
    loras.innerHTML = '<p class="muted">No LoRA loaded. Start the server with <code>--lora_path file.safetensors</code> to add one.</p>';
  }
  for (const l of info.loras) {
    const row = document.createElement("label");
    row.className = "lora";
    row.innerHTML = '<span class="lora-name"></span><output></output><input type="range">';
    row.querySelector(".lora-name").textContent = l.name;
    row.querySelector(".lora-name").title = l.name;
    const slider = row.querySelector("input");
    Object.assign(slider, { min: Math.max(0, limits.minLoraScale), max: limits.maxLoraScale, step: 0.05, value: l.defaultScale });
    slider.dataset.lora = l.name;
    const show = () => {
      const v = Number(slider.value);
      row.querySelector("output").textContent = v === 0 ? "off" : v.toFixed(2);
      row.classList.toggle("off", v === 0);
    };
    slider.addEventListener("input", show);
    show();
    loras.append(row);
  }
}

function applySamplerDefaults() {
  const s = info.samplers.find((x) => x.name === $("sampler").value) || info.samplers[0];
  $("steps").value = s.defaultSteps;
  $("guidance").value = s.defaultGuidanceScale;
}

function readForm() {
  const [width, height] = $("size").value.split("x").map(Number);
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  return {
    prompt: $("prompt").value,
    negativePrompt: $("negative-prompt").value,
    sampler: $("sampler").value,
    steps: number("steps"),
    guidanceScale: number("guidance"),
    seed: number("seed"),
    width, height,
    imageCount: number("image-count") ?? 1,
    loras: [...document.querySelectorAll("#loras input[type=range]")].map((s) => ({ name: s.dataset.lora, scale: Number(s.value) })),
  };
}

function writeForm(v) {
  if (v.prompt != null) $("prompt").value = v.prompt;
  if (v.negativePrompt != null) $("negative-prompt").value = v.negativePrompt;
  if (v.sampler && info.samplers.some((s) => s.name === v.sampler)) $("sampler").value = v.sampler;
  if (v.steps != null) $("steps").value = v.steps;
  if (v.guidanceScale != null) $("guidance").value = v.guidanceScale;
  if (v.seed !== undefined) $("seed").value = v.seed ?? "";
  if (v.imageCount != null) $("image-count").value = v.imageCount;
  if (v.width && v.height && info.sizes.some((s) => s.width === v.width && s.height === v.height)) $("size").value = `${v.width}x${v.height}`;
  for (const slider of document.querySelectorAll("#loras input[type=range]")) {
    const l = (v.loras || []).find((x) => x.name === slider.dataset.lora);
    if (v.loras) slider.value = l ? l.scale : 0;
    slider.dispatchEvent(new Event("input"));
  }
}

function showError(message) {
  const box = $("form-error");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---------- jobs ----------
async function generate(event) {
  event?.preventDefault();
  showError(null);
  const body = readForm();
  if (!body.prompt.trim()) {
    $("prompt").setAttribute("aria-invalid", "true");
    $("prompt").focus();
    return showError("Write a prompt first.");
  }
  $("prompt").removeAttribute("aria-invalid");
  localStorage.setItem(FORM_KEY, JSON.stringify(body));
  $("generate").disabled = true;
  try {
    const response = await fetch("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) return showError(data.error || `HTTP ${response.status}`);
    follow(data);
  } catch (e) {
    showError(`Could not reach the server: ${e.message}`);
  } finally {
    $("generate").disabled = false;
  }
}

function follow(snapshot) {
  events?.close();
  jobId = snapshot.id;
  startedAt = null;
  shownVersion = -1;
  localStorage.setItem(JOB_KEY, jobId);
  render(snapshot);
  refreshServerState();
  if (isFinished(snapshot)) return finish(snapshot);
  events = new EventSource(`/api/jobs/${encodeURIComponent(jobId)}/events`);
  events.onmessage = (e) => {
    const s = JSON.parse(e.data);
    if (s.id !== jobId) return;
    if (s.status !== $("job").dataset.state) refreshServerState();
    render(s);
    if (isFinished(s)) finish(s);
  };
  events.onerror = async () => {
    // EventSource retries by itself; stop only if the job is gone (server restarted).
    const r = await fetch(`/api/jobs/${encodeURIComponent(jobId)}`).catch(() => null);
    if (r && r.status === 404) { events?.close(); localStorage.removeItem(JOB_KEY); setJob("idle", "Ready", "The server no longer knows that job.", 0); }
  };
}

const isFinished = (s) => ["completed", "cancelled", "failed"].includes(s.status);

function finish(snapshot) {
  events?.close();
  events = null;
  localStorage.removeItem(JOB_KEY);
  if (snapshot.status === "completed") for (const r of [...snapshot.results].reverse()) addResult(r, true);
  refreshServerState();
}

async function cancel() {
  if (!jobId) return;
  $("cancel").disabled = true;
  const r = await fetch(`/api/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" }).catch(() => null);
  if (r && r.ok) render(await r.json());
  $("cancel").disabled = false;
}

function setJob(state, status, detail, percent) {
  $("job").dataset.state = state;
  $("job-status").textContent = status;
  $("job-detail").textContent = detail;
  $("progress-bar").style.width = `${percent}%`;
  $("progress").setAttribute("aria-valuenow", String(Math.round(percent)));
  $("cancel").hidden = !(state === "queued" || state === "running");
}

function render(s) {
  if (s.id !== jobId || s.version <= shownVersion) return;
  shownVersion = s.version;
  const r = s.request;
  const what = `${r.imageCount} × ${r.width}×${r.height}, ${r.sampler}, seed ${r.seed}`;
  switch (s.status) {
    case "queued": {
      const ahead = s.position === 1 ? "1 job ahead of you" : `${s.position} jobs ahead of you`;
      return setJob("queued", `Waiting in queue · position ${s.position}`, `${ahead} · ${what}`, 100);
    }
    case "running": {
      startedAt ??= performance.now();
      const pct = s.totalSteps ? (100 * s.step) / s.totalSteps : 0;
      let pace = "";
      if (s.step > 0) {
        const perStep = (performance.now() - startedAt) / 1000 / s.step;
        pace = ` · ${perStep.toFixed(2)} s/step · ${Math.ceil(perStep * (s.totalSteps - s.step))} s left`;
      }
      const stage = s.stage ? `${s.stage} · ` : "";
      return setJob("running", `Step ${s.step} / ${s.totalSteps}`, `${stage}${what}${pace}`, pct);
    }
    case "completed":
      return setJob("completed", "Done", `${s.results.length} image${s.results.length === 1 ? "" : "s"} · ${what}`, 100);
    case "cancelled":
      return setJob("cancelled", "Cancelled", what, s.totalSteps ? (100 * s.step) / s.totalSteps : 0);
    case "failed":
      return setJob("failed", "Failed", s.error || "generation failed", 100);
  }
}

// ---------- gallery ----------
const chip = (text) => Object.assign(document.createElement("span"), { className: "chip", textContent: text });

function addResult(result, prepend) {
  if (document.querySelector(`.result[data-id="${CSS.escape(result.id)}"]`)) return;
  const node = $("result-template").content.firstElementChild.cloneNode(true);
  const url = `/api/results/${encodeURIComponent(result.id)}.png`;
  node.dataset.id = result.id;
  const img = node.querySelector("img");
  img.src = url;
  img.alt = result.prompt;
  img.width = result.width;
  img.height = result.height;
  node.querySelector(".result-prompt").textContent = result.prompt;
  node.querySelector(".result-prompt").title = result.prompt;
  const chips = node.querySelector(".chips");
  chips.append(chip(`seed ${result.seed}`), chip(`${result.width}×${result.height}`), chip(`${result.sampler} · ${result.steps} steps`), chip(`cfg ${result.guidanceScale}`));
  for (const l of result.loras) chips.append(chip(`${l.name} ${l.scale}`));
  const download = node.querySelector(".download");
  download.href = `${url}?download=1`;
  download.download = `${result.id}.png`;
  node.querySelector(".thumb").addEventListener("click", () => openViewer(url, result));
  node.querySelector(".reuse").addEventListener("click", () => {
    writeForm({ ...result, imageCount: undefined, seed: result.seed });
    window.scrollTo({ top: 0, behavior: "smooth" });
  });
  node.querySelector(".copy").addEventListener("click", async (e) => {
    await navigator.clipboard?.writeText(result.parameters).catch(() => {});
    e.target.textContent = "Copied";
    setTimeout(() => (e.target.textContent = "Copy"), 1200);
  });
  const gallery = $("gallery");
  if (prepend) gallery.prepend(node); else gallery.append(node);
  updateGalleryCount();
}

function updateGalleryCount() {
  const n = document.querySelectorAll("#gallery .result").length;
  $("gallery-empty").hidden = n > 0;
  $("gallery-count").textContent = n ? `${n} recent image${n === 1 ? "" : "s"}` : "";
}

function openViewer(url, result) {
  $("viewer-image").src = url;
  $("viewer-image").alt = result.prompt;
  $("viewer-parameters").textContent = result.parameters;
  $("viewer").showModal();
}

// ---------- server state ----------
async function refreshServerState() {
  const el = $("server-state");
  try {
    const r = await fetch("/api/queue");
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const q = await r.json();
    el.className = q.running ? "chip busy" : "chip idle";
    el.textContent = q.running ? (q.waiting ? `busy · ${q.waiting} waiting` : "busy") : "idle";
  } catch {
    el.className = "chip";
    el.textContent = "server unreachable";
  }
}

// ---------- start ----------
async function start() {
  $("theme-toggle").addEventListener("click", toggleTheme);
  $("generate-form").addEventListener("submit", generate);
  $("cancel").addEventListener("click", cancel);
  $("viewer-close").addEventListener("click", () => $("viewer").close());
  $("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) $("viewer").close(); });
  $("random-seed").addEventListener("click", () => {
    $("seed").value = crypto.getRandomValues(new Uint32Array(1))[0];
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") generate(e);
  });

  try {
    info = await (await fetch("/api/info")).json();
  } catch (e) {
    return showError(`Could not load the model description: ${e.message}`);
  }
  buildForm();
  $("sampler").addEventListener("change", applySamplerDefaults);
  try { writeForm(JSON.parse(localStorage.getItem(FORM_KEY) || "{}")); } catch { /* a stale saved form is not worth an error */ }
  refreshServerState();

  const recent = await (await fetch("/api/results")).json().catch(() => ({ results: [] }));
  for (const r of recent.results) addResult(r, false);
  updateGalleryCount();

  const saved = localStorage.getItem(JOB_KEY);
  if (saved) {
    const r = await fetch(`/api/jobs/${encodeURIComponent(saved)}`).catch(() => null);
    if (r && r.ok) follow(await r.json()); else localStorage.removeItem(JOB_KEY);
  }
  document.body.dataset.ready = "true";
}

start();
