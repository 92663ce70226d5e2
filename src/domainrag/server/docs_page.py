"""``/docs``: the API reference rendered in the browser from ``/openapi.json`` by a small
inline script — no CDN, no assets to fetch (FastAPI's Swagger UI page loads from a CDN)."""

from __future__ import annotations

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>domainrag API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 2rem;color:#222}
h1{font-size:1.6rem}.op{border:1px solid #ccc;border-radius:6px;margin:.6rem 0;padding:.2rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}
.GET{color:#0a6}.POST{color:#06c}.DELETE{color:#c30}.PUT,.PATCH{color:#a60}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f6f6f6;padding:.5rem;overflow:auto}
summary{cursor:pointer}
</style></head><body>
<h1 id="title">domainrag API</h1>
<p>The machine-readable description is <a href="/openapi.json">/openapi.json</a>. Errors are
RFC 9457 problem details. With API keys configured, send <code>Authorization: Bearer &lt;key&gt;</code>.</p>
<div id="ops">Loading /openapi.json&hellip;</div>
<script>
"use strict";
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text; return e; }
function pre(obj) { return el("pre", "", JSON.stringify(obj, null, 2)); }
function operation(path, method, op) {
  const box = el("details", "op"), head = el("summary");
  head.append(el("span", "m " + method.toUpperCase(), method.toUpperCase()), el("code", "", path),
              document.createTextNode(" \\u2014 " + (op.summary || "")));
  box.append(head);
  if (op.parameters && op.parameters.length) {
    box.append(el("h4", "", "Parameters"));
    const ul = el("ul");
    for (const p of op.parameters)
      ul.append(el("li", "", p.name + " (" + p.in + (p.required ? ", required" : "") + ")"));
    box.append(ul);
  }
  if (op.requestBody) { box.append(el("h4", "", "Request body"), pre(op.requestBody.content)); }
  box.append(el("h4", "", "Responses"), pre(op.responses));
  return box;
}
fetch("/openapi.json").then(r => r.json()).then(spec => {
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  const ops = document.getElementById("ops"); ops.textContent = "";
  for (const [path, item] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(item)) ops.append(operation(path, method, op));
  const schemas = el("details", "op"); schemas.append(el("summary", "", "Schemas"),
    pre((spec.components || {}).schemas || {})); ops.append(schemas);
}).catch(e => { document.getElementById("ops").textContent = "Could not load /openapi.json: " + e; });
</script></body></html>
"""
