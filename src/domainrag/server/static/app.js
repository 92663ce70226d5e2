// domainrag web UI: plain ES module, no build step, no network beyond this server.
// Every piece of server or document text reaches the page as a text node (el() below),
// never as HTML: documents are hostile input.

const $ = (id) => document.getElementById(id);

/** Build an element; string/number children become text nodes, attributes are set as attributes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(message, kind = "info") {
  const status = $("status");
  status.textContent = message;
  status.dataset.kind = kind;
}

// -- HTTP ------------------------------------------------------------------------------------

const collection = () => $("collection").value;
const enc = encodeURIComponent;
const base = () => `/v1/collections/${enc(collection())}`;

function headers(extra = {}) {
  const key = localStorage.getItem("domainrag.apiKey");
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** The message of an RFC 9457 problem body (or the status line). */
async function problem(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function api(path, { method = "GET", json, accept = "application/json" } = {}) {
  const init = { method, headers: headers({ Accept: accept }) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(await problem(response));
  if (response.status === 204) return null;
  return accept === "application/json" ? response.json() : response.text();
}

/** Run an async action, showing its failure in the status line instead of the console. */
function guarded(action) {
  return async (event) => {
    event?.preventDefault?.();
    try {
      await action(event);
    } catch (error) {
      say(error.message, "error");
    }
  };
}

// -- views and collections -------------------------------------------------------------------

const loaders = {
  ask: () => {},
  search: () => {},
  documents: () => loadDocuments(),
  evaluation: () => loadRuns(),
};

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    const active = tab.dataset.view === view;
    tab.setAttribute("aria-current", active ? "page" : "false");
    $(`view-${tab.dataset.view}`).hidden = !active;
  }
  $("passage").hidden = true;
  localStorage.setItem("domainrag.view", view);
  if (collection()) guarded(loaders[view])();
}

const currentView = () => localStorage.getItem("domainrag.view") || "ask";

async function loadCollections() {
  const { collections } = await api("/v1/collections");
  const select = $("collection");
  const wanted = localStorage.getItem("domainrag.collection");
  select.replaceChildren(...collections.map((c) =>
    el("option", { value: c.name }, `${c.name} (${c.documents ?? "?"} documents)`)));
  if (collections.some((c) => c.name === wanted)) select.value = wanted;
  if (!collections.length) say("No collections yet: create one with the API or 'domainrag serve --kb DIR'.");
}

// -- passages --------------------------------------------------------------------------------

/** Open document `docId` with characters [start, end) highlighted and scrolled into view. */
async function openPassage(docId, start, end, page) {
  const doc = await api(`${base()}/documents/${enc(docId)}`);
  const text = doc.text || "";
  const from = Math.max(0, Math.min(start ?? 0, text.length));
  const to = Math.max(from, Math.min(end ?? from, text.length));
  const mark = el("mark", { id: "passage-mark" }, text.slice(from, to));
  $("passage-title").textContent = doc.title || doc.source || doc.id;
  $("passage-meta").textContent = [doc.id, page ? `page ${page}` : null].filter(Boolean).join(" · ");
  $("passage-meta").title = doc.source || "";
  $("passage-text").replaceChildren(text.slice(0, from), mark, text.slice(to));
  const below = Math.max(0, document.querySelector(".top").getBoundingClientRect().bottom);
  $("passage").style.top = `${below}px`;  // under the header: the views stay reachable
  $("passage").hidden = false;
  mark.scrollIntoView({ block: "center" });
}

function citeLink(citation) {
  const label = `[${citation.number}]`;
  const where = citation.title || citation.source || citation.doc_id;
  return el("a", {
    href: `#cite-${citation.number}`, class: "cite", "data-number": citation.number,
    title: `Open the cited passage in ${where}`,
    onclick: guarded(() => openPassage(citation.doc_id, citation.span.start, citation.span.end, citation.page)),
  }, label);
}

// -- ask -------------------------------------------------------------------------------------

/** Parse a server-sent-event stream from a fetch response, calling onEvent(name, data). */
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

/** The checked answer: its text with each [n] marker a link to the cited passage. */
function renderAnswer(answer) {
  const box = $("answer");
  // A number cited by several sentences has one citation per sentence, in order of appearance:
  // each marker links to the next one of its number (the last one repeats).
  const byNumber = new Map();
  for (const c of answer.citations) byNumber.set(c.number, [...(byNumber.get(c.number) || []), c]);
  const parts = [];
  let last = 0;
  for (const match of answer.text.matchAll(/\[(\d+)\]/g)) {
    const queue = byNumber.get(Number(match[1]));
    if (!queue) continue;
    const citation = queue.length > 1 ? queue.shift() : queue[0];
    parts.push(answer.text.slice(last, match.index), citeLink(citation));
    last = match.index + match[0].length;
  }
  parts.push(answer.text.slice(last));
  box.replaceChildren(...parts);
  box.classList.toggle("abstained", answer.abstained);

  const flags = [];
  if (answer.abstained) flags.push("Abstained: the documents do not answer this question.");
  else flags.push(`Grounded ${Math.round(answer.grounded * 100)}%`);
  if (!answer.complete) flags.push("Incomplete: the answer was cut short.");
  $("answer-flags").textContent = flags.join(" · ");
  $("answer-flags").classList.toggle("abstained", answer.abstained);

  $("citations").replaceChildren(...answer.citations.map((c) => el("li", {},
    citeLink(c), " ",
    el("span", { class: "where" }, [c.title || c.source || c.doc_id, c.page ? `, p. ${c.page}` : ""].join("")),
    c.quote ? el("q", {}, c.quote) : null,
    c.supported ? null : el("span", { class: "unsupported" }, " (not supported by the source)"),
  )));
}

async function ask() {
  const question = $("question").value.trim();
  if (!question || !collection()) return;
  const box = $("answer");
  box.replaceChildren();
  box.classList.remove("abstained");
  $("answer-flags").textContent = "";
  $("citations").replaceChildren();
  box.setAttribute("aria-busy", "true");
  say("Answering…");
  try {
    const response = await fetch(`${base()}/ask`, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ question, stream: true }),
    });
    if (!response.ok) throw new Error(await problem(response));
    let failure = null;
    await readEvents(response, (name, data) => {
      if (name === "token") box.append(data.text);
      else if (name === "answer") renderAnswer(data);
      else if (name === "error") failure = data.detail || data.title || "The answer failed.";
    });
    if (failure) throw new Error(failure);
    say("");
  } finally {
    box.setAttribute("aria-busy", "false");
  }
}

// -- search ----------------------------------------------------------------------------------

async function search() {
  const body = { query: $("query").value.trim(), k: Number($("search-k").value) || 10 };
  if ($("search-mode").value) body.mode = $("search-mode").value;
  const { hits } = await api(`${base()}/search`, { method: "POST", json: body });
  $("hits").replaceChildren(...hits.map((hit) => el("li", { class: "hit" },
    el("div", { class: "hit-head" },
      el("span", { class: "score" }, hit.score.toFixed(3)), " ",
      el("a", {
        href: "#passage", title: "Open this passage in its document",
        onclick: guarded(() => openPassage(hit.doc_id, hit.span.start, hit.span.end, hit.span.page)),
      }, hit.title || hit.source || hit.doc_id),
      hit.span.page ? el("span", { class: "page" }, ` p. ${hit.span.page}`) : null,
      el("span", { class: "doc" }, ` ${hit.doc_id}`)),
    el("p", { class: "snippet" }, hit.text))));
  say(hits.length ? "" : "No results.");
}

// -- documents -------------------------------------------------------------------------------

async function loadDocuments() {
  const [{ documents }, { files }] = await Promise.all([api(`${base()}/documents`), api(`${base()}/parse`)]);
  $("parse-report").replaceChildren(...(files.length ? files.map((file) => el("li", {},
    el("strong", {}, file.source), ": ",
    file.notes.map((note) => `${note.code}: ${note.message}`).join("; "))) : [el("li", {}, "None.")]));
  $("documents").replaceChildren(...documents.map((doc) => el("tr", {},
    el("td", {}, doc.title || ""), el("td", {}, doc.source || ""), el("td", { class: "doc" }, doc.id),
    el("td", {}, el("button", {
      type: "button", "aria-label": `Delete ${doc.source}`,
      onclick: guarded(() => removeSource(doc.source)),
    }, "Delete")))));
}

async function removeSource(source) {
  if (!window.confirm(`Delete ${source} from ${collection()}?`)) return;
  await api(`${base()}/sources/${enc(source)}`, { method: "DELETE" });
  say(`Deleted ${source}.`);
  await loadDocuments();
}

/** POST the files with XHR (fetch has no upload progress); resolves to the 202 body. */
function sendFiles(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${base()}/documents`);
    for (const [name, value] of Object.entries(headers({ Accept: "application/json" }))) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) $("upload-progress").value = (100 * event.loaded) / event.total;
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: reported below */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new Error(body?.detail || body?.title || `Upload failed: HTTP ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new Error("Upload failed: the server could not be reached.")));
    xhr.send(form);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function showJob(job) {
  const total = job.files_total || 0;
  $("job-progress").max = Math.max(total, 1);
  $("job-progress").value = job.state === "done" ? Math.max(total, 1) : job.files_done || 0;
  $("job-state").textContent =
    `Job ${job.id}: ${job.state} — ${job.files_done}/${total} files, ${job.chunks} chunks`;
  $("job-state").dataset.state = job.state;
  $("job-failures").replaceChildren(...(job.failures || []).map((f) =>
    el("li", {}, el("strong", {}, f.file), `: ${f.reason}`)));
}

async function upload() {
  const files = $("files").files;
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  if ($("acl").value.trim()) form.append("acl", $("acl").value.trim());
  $("upload").hidden = false;
  $("upload-progress").value = 0;
  $("job-failures").replaceChildren();
  say(`Uploading ${files.length} file(s)…`);
  let { job } = await sendFiles(form);
  $("upload-progress").value = 100;
  showJob(job);
  while (job.state === "queued" || job.state === "running") {
    await sleep(400);
    job = await api(`/v1/jobs/${enc(job.id)}`);
    showJob(job);
  }
  say(job.state === "done" ? `Ingested ${job.files_done} file(s).` : `Ingest ${job.state}.`,
    job.state === "done" && !(job.failures || []).length ? "info" : "error");
  $("upload-form").reset();
  await Promise.all([loadDocuments(), loadCollections()]);
}

// -- evaluation ------------------------------------------------------------------------------

function metricSummary(metrics) {
  const parts = [];
  for (const values of Object.values(metrics || {})) {
    for (const [name, value] of Object.entries(values || {})) {
      if (typeof value === "number" && parts.length < 4) parts.push(`${name} ${value.toFixed(3)}`);
    }
  }
  return parts.join(" · ");
}

async function loadRuns() {
  const { runs } = await api(`${base()}/runs`);
  $("runs").replaceChildren(...runs.map((run, i) => el("tr", {},
    el("td", {}, el("input", { type: "radio", name: "baseline", value: run.run_id,
      "aria-label": `Baseline: ${run.name || run.run_id}`, checked: i === 1 })),
    el("td", {}, el("input", { type: "radio", name: "new", value: run.run_id,
      "aria-label": `New: ${run.name || run.run_id}`, checked: i === 0 })),
    el("td", {}, run.name || run.run_id, el("div", { class: "doc" }, run.run_id)),
    el("td", {}, run.created || ""),
    el("td", {}, run.status || ""),
    el("td", {}, metricSummary(run.metrics)),
    el("td", {}, el("button", {
      type: "button", class: "open-report", "aria-label": `Open the report of ${run.name || run.run_id}`,
      onclick: guarded(() => openReport(run)),
    }, "Report")))));
  if (!runs.length) say("No evaluation runs stored in this collection yet.");
}

function showHtml(title, html) {
  $("report-title").textContent = title;
  $("report").srcdoc = html;  // sandboxed iframe: no scripts, no access to this page
  $("report").scrollIntoView({ block: "start" });
}

async function openReport(run) {
  const html = await api(`${base()}/runs/${enc(run.run_id)}/report`, { accept: "text/html" });
  showHtml(`Report: ${run.name || run.run_id}`, html);
}

async function compare() {
  const form = $("compare-form");
  const baseline = form.elements.baseline?.value;
  const fresh = form.elements.new?.value;
  if (!baseline || !fresh || baseline === fresh) {
    say("Pick two different runs: a baseline and a new one.", "error");
    return;
  }
  const html = await api(`${base()}/compare?baseline=${enc(baseline)}&new=${enc(fresh)}&format=html`,
    { accept: "text/html" });
  showHtml(`Comparison: ${baseline} → ${fresh}`, html);
}

// -- start -----------------------------------------------------------------------------------

function start() {
  $("api-key").value = localStorage.getItem("domainrag.apiKey") || "";
  $("api-key").addEventListener("change", guarded(async () => {
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem("domainrag.apiKey", key);
    else localStorage.removeItem("domainrag.apiKey");
    await loadCollections();
    show(currentView());
  }));
  $("collection").addEventListener("change", () => {
    localStorage.setItem("domainrag.collection", collection());
    show(currentView());
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("ask-form").addEventListener("submit", guarded(ask));
  $("question").addEventListener("keydown", (event) => {  // Ctrl/Cmd+Enter asks; Enter alone is a new line
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask-form").requestSubmit();
  });
  $("search-form").addEventListener("submit", guarded(search));
  $("upload-form").addEventListener("submit", guarded(upload));
  $("compare-form").addEventListener("submit", guarded(compare));
  $("passage-close").addEventListener("click", () => { $("passage").hidden = true; });
  guarded(async () => {
    await loadCollections();
    show(currentView());
  })();
}

start();
