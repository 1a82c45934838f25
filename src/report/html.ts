// report.html: one self-contained file. The overview and charts are static HTML + SVG; the example
// browser pages through a JSON sample embedded in the page. Every piece of LLM or dataset text is
// untrusted: server-side it goes through esc(), in the page it is only ever set as textContent.
import { basename } from "node:path";
import { describeLeftOut } from "../import/records.js";
import { describeAudit, tookPart } from "../merge/manifest.js";
import { stages } from "../stages/registry.js";
import type { ReportModel, StageGlance } from "./collect.js";
import { int, type Figure } from "./figures.js";
import { esc } from "./svg.js";

/** Every stage's charts, in registry order. */
function figures(model: ReportModel): Figure[] {
  return stages().flatMap((s) => s.report.figures?.(model.dist) ?? []);
}

function usd(v: number | undefined): string {
  if (v === undefined) return "—";
  return `$${v < 1 ? v.toFixed(4) : v.toFixed(2)}`;
}

function stageRow(g: StageGlance): string {
  const reasons = Object.entries(g.failuresByReason)
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `<span class="pill">${esc(r)} ${int(n)}</span>`)
    .join(" ");
  const who = g.answeredBy.map((a) => `${esc(a.provider)} · <code>${esc(a.model)}</code>${g.answeredBy.length > 1 ? ` (${int(a.records)})` : ""}`).join("<br>");
  const u = g.usage;
  return `<tr data-stage="${g.stage}">
<th scope="row">${g.stage}</th><td>${who || "—"}</td>
<td class="num">${g.items === undefined ? "—" : int(g.items)}</td><td class="num">${int(g.answered)}</td>
<td class="num">${g.missing === undefined ? "—" : int(g.missing)}</td>
<td class="num">${int(g.openFailures)}</td><td>${reasons || "—"}</td>
<td class="num">${int(u.inputTokens)}</td><td class="num">${int(u.outputTokens)}</td><td class="num">${int(u.cacheReadTokens)} / ${int(u.cacheWriteTokens)}</td>
<td class="num">${g.costUsd === null ? `<span title="no price in data/pricing.json: ${esc(g.unpriced.join(", "))}">unpriced</span>` : usd(g.costUsd)}</td><td class="nowrap">${g.finishedAt ? esc(g.finishedAt.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC")) : "—"}</td></tr>`;
}

function glance(model: ReportModel): string {
  const active = model.glance.filter((g) => g.answered > 0 || g.openFailures > 0 || g.costUsd !== undefined);
  const total = (f: (g: StageGlance) => number) => active.reduce((s, g) => s + f(g), 0);
  const cost = active.some((g) => g.costUsd !== undefined) ? total((g) => g.costUsd ?? 0) : undefined;
  // A stage whose model has no price adds an unknown amount: the total says so rather than look whole.
  const unpriced = active.some((g) => g.costUsd === null);
  const m = model.manifest;
  const all = stages();
  const answered = (name: string) => model.glance.find((g) => g.stage === name)?.answered ?? 0;
  // Cards of the stages that ran or were merged: a GENRE run shows no zero cards of the opt-in stages.
  const carded = all.filter((s) => answered(s.name) > 0 || (m !== undefined && tookPart(m.stages[s.name])));
  const cards = [
    ...carded.flatMap((s) => s.report.cards(answered(s.name), m, model.dist).map(([k, v]) => [k, int(v)])),
    ["open failures", int(total((g) => g.openFailures))],
    ["tokens in / out", `${int(total((g) => g.usage.inputTokens))} / ${int(total((g) => g.usage.outputTokens))}`],
    ["cost", unpriced ? (active.every((g) => g.costUsd == null) ? "unpriced" : `${usd(cost)} + unpriced`) : usd(cost)],
  ];
  // Per split: its rows, pseudo-news among them, histories extended, news appended, and the lines of
  // each users stage's file, of the stages the merge had anything of (as merge's summary says it).
  const merged = m ? all.filter((s) => tookPart(m.stages[s.name])) : [];
  const userFiles = merged.flatMap((s) => (s.merge.users ? [s.merge.users.count] : []));
  const appended = merged.flatMap((s) => (s.merge.appendsNews ? [s.merge.appendsNews.count] : []));
  const split = (o: NonNullable<typeof m>["splits"][number]["output"]) =>
    [
      `${int(o.news)} news`,
      `${int(o.pseudoNews)} pseudo-news`,
      `${int(o.historiesExtended)} histories extended`,
      ...appended.map((c) => `${int(o[c.key] ?? 0)} ${c.many}`),
      ...userFiles.map((c) => `${int(o[c.key] ?? 0)} ${c.many}`),
    ].join(", ");
  const options = all.flatMap((s) => Object.entries(s.report.options ?? {})).flatMap(([key, label]) => (m && key in m.options ? [` · ${esc(label)}: <code>${esc(String(m.options[key]))}</code>`] : []));
  const splits = m
    ? `<p class="muted">Merged ${m.splits.map((s) => `<b>${esc(s.name)}</b> (${split(s.output)})`).join(", ")}${options.join("")} · ${esc(describeAudit(m))}</p>`
    : `<p class="muted">No manifest.json: the run has not been merged yet; showing the stage records.</p>`;
  return `<section id="glance"><h2>The run at a glance</h2>
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="v">${v}</div><div class="k">${k}</div></div>`).join("")}</div>
${splits}
<div class="scroll"><table class="stages"><thead><tr><th>stage</th><th>provider · model</th><th>items</th><th>answered</th><th>kept original<br>(merge)</th><th>failed</th><th>failures by reason</th><th>input tokens</th><th>output tokens</th><th>cache read / write</th><th>cost</th><th>finished</th></tr></thead>
<tbody>${model.glance.map(stageRow).join("\n")}</tbody></table></div>
<p class="muted">Tokens are summed over the stored records and failures (all attempts, all runs); cost prices those same lines per provider and model.</p>${inPart(model.glance)}</section>`;
}

/** Imported answers the records keep only in part (import.md): how many, and what they leave out. */
function inPart(glance: readonly StageGlance[]): string {
  const parts = glance.filter((g) => g.inPart.items > 0).map((g) => `<b>${esc(g.stage)}</b> ${int(g.inPart.items)} (${esc(describeLeftOut(g.inPart.leftOut))} left out)`);
  return parts.length ? `<p class="muted" id="in-part">Imported answers kept in part, what the stage does not accept left out: ${parts.join("; ")}.</p>` : "";
}

const CSS = `
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--accent:#2563eb}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:20px 28px 8px}h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:0 0 12px}
main{padding:0 28px 28px;max-width:1320px}section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:14px 0}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}.cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:140px}.card .v{font-size:20px;font-weight:600}.card .k{color:var(--muted);font-size:12px}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-size:12px;color:var(--muted);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;background:#fee2e2;color:#991b1b;border-radius:10px;padding:0 7px;font-size:12px;margin:1px}
.pill.t{background:#ccfbf1;color:#115e59}.pill.r{background:#ede9fe;color:#5b21b6}.pill.c{background:#f1f5f9;color:#334155}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px}figcaption b{display:block;margin-bottom:2px}
figcaption{font-size:12.5px;color:var(--muted);margin-bottom:6px}svg.chart{width:100%;height:auto;display:block}
.warn{background:#fffbeb;border-color:#fde68a}.warn li{margin:2px 0}
.tabs{display:flex;gap:6px;margin-bottom:10px;flex-wrap:wrap;align-items:center}
.tabs button{border:1px solid var(--line);background:#fff;border-radius:6px;padding:5px 12px;cursor:pointer;font:inherit}
.tabs button[aria-selected=true]{background:var(--accent);color:#fff;border-color:var(--accent)}
.tabs input{margin-left:auto;padding:5px 9px;border:1px solid var(--line);border-radius:6px;font:inherit;min-width:240px}
.pager{display:flex;gap:8px;align-items:center;margin:10px 0}.pager button{border:1px solid var(--line);background:#fff;border-radius:6px;padding:3px 10px;cursor:pointer}
.pager button:disabled{opacity:.4;cursor:default}
.ex{border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:8px 0}.ex .id{font-family:ui-monospace,monospace;font-size:12px;color:var(--muted)}
.pair{display:grid;grid-template-columns:90px 1fr;gap:3px 10px;margin-top:4px}.pair .l{color:var(--muted);font-size:12px;padding-top:2px}
.enh{color:#1d4ed8;font-weight:500}.cols{display:grid;grid-template-columns:repeat(3,1fr);gap:12px;margin-top:6px}
.cols h4{margin:0 0 4px;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.cols ol,.cols ul{margin:0;padding-left:18px}.cols li{margin:2px 0}.abs{color:var(--muted);font-size:12.5px}
pre{white-space:pre-wrap;word-break:break-word;background:#f1f5f9;border-radius:6px;padding:6px 8px;margin:4px 0 0;font-size:12px;max-height:220px;overflow:auto}
@media (max-width:900px){.cols{grid-template-columns:1fr}.charts{grid-template-columns:1fr}}
`;

// Runs in the page: reads the embedded sample and renders one page of a list at a time.
// Text is only ever assigned with textContent, so no record can inject markup or script.
const SCRIPT = `
(function(){
var data=JSON.parse(document.getElementById("report-data").textContent);
var PAGE=10, state={tab:"news",page:1,q:""};
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
function pair(box,label,value,cls){var l=el("div","l",label),v=el("div",cls||"",value===undefined||value===null||value===""?"—":value);box.appendChild(l);box.appendChild(v);}
function hay(x){return JSON.stringify(x).toLowerCase();}
function factors(box,f){if(f)Object.keys(f).forEach(function(k){pair(box,k.replace(/_/g," "),f[k],"abs");});}
var render={
news:function(n){var d=el("div","ex");d.dataset.kind="news";d.appendChild(el("div","id",n.id+(n.category?" · "+n.category+(n.subcategory?" / "+n.subcategory:""):"")));
var p=el("div","pair");pair(p,"original",n.original);pair(p,"enhanced",n.enhanced,"enh");if(n.abstract)pair(p,"abstract",n.abstract,"abs");factors(p,n.factors);d.appendChild(p);return d;},
users:function(u){var d=el("div","ex");d.dataset.kind="user";d.appendChild(el("div","id",u.id+(u.historyLength!==undefined&&u.historyLength!==null?" · "+u.historyLength+(u.historyLength===1?" click":" clicks")+" in history":"")));
var c=el("div","cols"),h=el("div"),p=el("div"),g=el("div");h.appendChild(el("h4",null,"recent clicks (latest first)"));
var ol=el("ol");u.recent.forEach(function(r){var li=el("li");if(r.category)li.appendChild(el("span","pill c",r.category));li.appendChild(document.createTextNode(" "+(r.title||r.id)));ol.appendChild(li);});
if(!u.recent.length)h.appendChild(el("div","muted","history not available"));else h.appendChild(ol);
p.appendChild(el("h4",null,"profile"));if(u.topics){p.appendChild(el("div","l muted","topics"));var tp=el("div");u.topics.forEach(function(t){tp.appendChild(el("span","pill t",t));tp.appendChild(document.createTextNode(" "));});p.appendChild(tp);
p.appendChild(el("div","l muted","regions"));var rg=el("div");(u.regions||[]).forEach(function(r){rg.appendChild(el("span","pill r",r));rg.appendChild(document.createTextNode(" "));});if(!(u.regions||[]).length)rg.appendChild(el("span","muted","no region"));p.appendChild(rg);}else p.appendChild(el("div","muted","no profile"));
if(u.factors){p.appendChild(el("h4",null,"factors"));var fp=el("div","pair");factors(fp,u.factors);p.appendChild(fp);}
g.appendChild(el("h4",null,"pseudo-news"));if(u.pseudo&&u.pseudo.length){var ul=el("ul");u.pseudo.forEach(function(x){var li=el("li");li.appendChild(el("span","pill c",x.category));li.appendChild(document.createTextNode(" "));li.appendChild(el("span","enh",x.title));if(x.id)li.appendChild(el("span","id"," "+x.id));if(x.abstract)li.appendChild(el("div","abs",x.abstract));ul.appendChild(li);});g.appendChild(ul);}else g.appendChild(el("div","muted","not a cold user (none generated)"));
if(u.picks&&u.picks.length){g.appendChild(el("h4",null,"picked news"));var pl=el("ul");u.picks.forEach(function(x){var li=el("li");if(x.category)li.appendChild(el("span","pill c",x.category));li.appendChild(document.createTextNode(" "+(x.title||"")));li.appendChild(el("span","id"," "+x.id));pl.appendChild(li);});g.appendChild(pl);}
c.appendChild(h);c.appendChild(p);c.appendChild(g);d.appendChild(c);return d;},
categories:function(c){var d=el("div","ex");d.dataset.kind="category";d.appendChild(el("div","id",c.id+(c.parent?" · in "+c.parent:"")+(c.newsCount!==undefined&&c.newsCount!==null?" · "+c.newsCount+(c.newsCount===1?" news item":" news items"):"")));
var p=el("div","pair");pair(p,c.kind||"name",c.name);pair(p,"description",c.description,"enh");d.appendChild(p);return d;},
failures:function(f){var d=el("div","ex");d.dataset.kind="failure";d.appendChild(el("div","id",f.stage+" · "+f.itemId+" · "+f.attempts+(f.attempts===1?" attempt":" attempts")));
var p=el("div","pair");pair(p,"reason",f.reason);pair(p,"message",f.message);d.appendChild(p);if(f.lastAnswer){d.appendChild(el("div","l muted","last answer"));d.appendChild(el("pre",null,f.lastAnswer));}return d;}
};
var totals={news:data.newsTotal,users:data.usersTotal,categories:data.categoriesTotal,failures:data.failuresTotal};
function draw(){
var all=data[state.tab],q=state.q.toLowerCase(),items=q?all.filter(function(x){return hay(x).indexOf(q)>=0;}):all;
var pages=Math.max(1,Math.ceil(items.length/PAGE));state.page=Math.min(Math.max(1,state.page),pages);
var list=document.getElementById("list");list.textContent="";
items.slice((state.page-1)*PAGE,state.page*PAGE).forEach(function(x){list.appendChild(render[state.tab](x));});
if(!items.length)list.appendChild(el("p","muted",all.length?"No example matches the filter.":"Nothing to show."));
document.getElementById("page").textContent="page "+state.page+" of "+pages;
document.getElementById("prev").disabled=state.page<=1;document.getElementById("next").disabled=state.page>=pages;
document.getElementById("count").textContent=items.length+" shown of "+all.length+" sampled ("+totals[state.tab].toLocaleString("en-US")+" in the run)";
document.querySelectorAll(".tabs button").forEach(function(b){b.setAttribute("aria-selected",String(b.dataset.tab===state.tab));});
var h="#tab="+state.tab+"&page="+state.page+(state.q?"&q="+encodeURIComponent(state.q):"");if(location.hash!==h)history.replaceState(null,"",h);}
var m=/tab=(news|users|categories|failures)/.exec(location.hash);if(m)state.tab=m[1];
m=/page=(\\d+)/.exec(location.hash);if(m)state.page=Number(m[1]);
// A hand-typed "%" in the hash is not valid percent-encoding: keep it as typed rather than let the
// URIError stop the script before anything is drawn.
m=/q=([^&]*)/.exec(location.hash);if(m){try{state.q=decodeURIComponent(m[1]);}catch(e){state.q=m[1];}document.getElementById("filter").value=state.q;}
document.querySelectorAll(".tabs button").forEach(function(b){b.addEventListener("click",function(){state.tab=b.dataset.tab;state.page=1;draw();});});
document.getElementById("prev").addEventListener("click",function(){state.page--;draw();});
document.getElementById("next").addEventListener("click",function(){state.page++;draw();});
document.getElementById("filter").addEventListener("input",function(e){state.q=e.target.value;state.page=1;draw();});
draw();
})();
`;

/** The charts' heading names what answered: an offline run changed nothing by LLM. */
export function changedBy(glance: readonly StageGlance[]): string {
  const providers = new Set(glance.flatMap((g) => g.answeredBy.filter((a) => a.records > 0).map((a) => a.provider)));
  if (providers.size === 0) return "What the stages changed";
  if (!providers.has("offline")) return "What the LLM changed";
  return providers.size === 1 ? "What the offline baseline changed" : "What the stages changed (LLM and offline baseline)";
}

/** JSON that is safe inside a <script> element: `<` can never close it, U+2028/9 never break it. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

export function renderReport(model: ReportModel): string {
  const figs = figures(model);
  const name = basename(model.runDir);
  const data = {
    news: model.news,
    newsTotal: model.newsTotal,
    users: model.users,
    usersTotal: model.usersTotal,
    categories: model.categories,
    categoriesTotal: model.categoriesTotal,
    failures: model.failures,
    failuresTotal: model.failuresTotal,
  };
  const inputs = model.splits.length
    ? `inputs: ${model.splits.map((s) => esc(s.name)).join(", ")}`
    : "inputs: not available (original titles and histories are not shown; pass --data)";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>genre-mind report · ${esc(name)}</title><style>${CSS}</style></head>
<body><header><h1>genre-mind report · ${esc(name)}</h1><div class="muted">${inputs}</div></header><main>
${model.warnings.length ? `<section class="warn"><h2>Warnings</h2><ul>${model.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul></section>` : ""}
${glance(model)}
<section id="charts"><h2>${esc(changedBy(model.glance))}</h2>${figs.length ? `<div class="charts">${figs.map((f) => `<figure id="fig-${f.id}"><figcaption><b>${esc(f.title)}</b>${esc(f.note)}</figcaption>${f.svg}</figure>`).join("\n")}</div>` : `<p class="muted">No stage records yet.</p>`}</section>
<section id="examples"><h2>Examples</h2>
<p class="muted">A fixed sample (chosen by a hash of the ID, the same on every run) of up to ${int(Math.max(model.news.length, model.users.length, model.categories.length, model.failures.length))} items per list, so the page stays small at MIND scale.</p>
<div class="tabs" role="tablist"><button data-tab="news">News (${int(model.news.length)})</button><button data-tab="users">Users (${int(model.users.length)})</button>${model.categoriesTotal > 0 ? `<button data-tab="categories">Categories (${int(model.categories.length)})</button>` : ""}<button data-tab="failures">Failures (${int(model.failures.length)})</button>
<input id="filter" type="search" placeholder="filter the sample (ID, word, category…)"></div>
<div class="pager"><button id="prev">‹ prev</button><span id="page"></span><button id="next">next ›</button><span id="count" class="muted"></span></div>
<div id="list"></div>
<noscript><p class="muted">The example browser needs JavaScript; the overview and charts above do not.</p></noscript>
</section></main>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
