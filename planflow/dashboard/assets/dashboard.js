/* planflow dashboard: the runs, run and compare pages, and the static report.
 *
 * Figures arrive ready-made from the server (planflow/dashboard/figures.py) and are only drawn
 * here with plotly.js. A live run page holds one EventSource (server-sent events: `states`,
 * `progress`, `timings`, `reload`, `ended`) and recolours the graph's nodes; nothing polls.
 * The static report has no server: its run view and every task's details are embedded in the
 * page (#pf-data), and the same code draws them.
 *
 * Text from runs never goes through innerHTML: every element is built with el() and
 * textContent. Marks for tests: body[data-ready] once a page is drawn, body[data-updates]
 * counts live updates applied without reloading the page.
 */
"use strict";

const PlanflowDashboard = (() => {
  let config = {};
  let embedded = null;
  const PLOT_CONFIG = { responsive: true, displaylogo: false };
  const GROUP_ORDER = ["failed", "running", "ready", "waiting", "planned", "finished", "not-run"];

  // -- small helpers ------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "onclick") node.addEventListener("click", v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const main = () => document.getElementById("main");
  const fmtS = (x) => x === null || x === undefined ? "–"
    : x < 1 ? `${(x * 1000).toFixed(1)} ms` : `${x.toFixed(2)} s`;
  const fmtUsd = (x) => x === null || x === undefined ? "–" : `$${x.toFixed(6)}`;
  const fmtPct = (x) => x === null || x === undefined ? "–"
    : `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
  const fmtNum = (x, d = 3) => x === null || x === undefined ? "–" : x.toFixed(d);
  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }
  const fmtTime = (unix) => unix ? new Date(unix * 1000).toLocaleString() : "–";
  const badge = (s) => el("span", { class: `badge ${s}` }, s);

  async function getJSON(url) {
    const res = await fetch(url);
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  function fail(err) {
    main().replaceChildren(el("div", { class: "note" }, `error: ${err.message || err}`));
    document.body.dataset.ready = "error";
  }

  function figureCard(label, value, sub) {
    return el("div", { class: "figure" }, el("div", { class: "label" }, label),
      el("div", { class: "value" }, value), sub ? el("div", { class: "sub" }, sub) : null);
  }

  function plot(div, fig) {
    return Plotly.newPlot(div, fig.data, fig.layout, PLOT_CONFIG);
  }

  function table(columns, rows) {
    const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : "" },
      c.label)));
    const body = rows.map((r) => {
      const tr = el("tr", { class: r.onclick ? "clickable" : "" },
        columns.map((c) => el("td", { class: (c.num ? "num " : "") + (c.cls ? c.cls(r) : "") },
          c.cell(r))));
      if (r.onclick) tr.addEventListener("click", r.onclick);
      return tr;
    });
    return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
  }

  // -- runs page ----------------------------------------------------------------------------

  async function runsPage() {
    const params = new URLSearchParams(location.search);
    const wf = el("select", { id: "filter-workflow" });
    const st = el("select", { id: "filter-strategy" });
    const holder = el("div", { id: "runs" });
    main().replaceChildren(el("h1", {}, "Runs"),
      el("div", { class: "filters" }, el("label", {}, "workflow ", wf),
        el("label", {}, "strategy ", st), el("span", { class: "muted", id: "runs-count" })),
      holder);
    const fill = (select, values, chosen) => select.replaceChildren(
      el("option", { value: "" }, "all"),
      ...values.map((v) => el("option", { value: v, selected: v === chosen ? "" : null }, v)));

    async function load() {
      const q = new URLSearchParams();
      if (params.get("workflow")) q.set("workflow", params.get("workflow"));
      if (params.get("strategy")) q.set("strategy", params.get("strategy"));
      const view = await getJSON(`/api/runs?${q}`);
      fill(wf, view.workflows, view.filter.workflow);
      fill(st, view.strategies, view.filter.strategy);
      document.getElementById("runs-count").textContent =
        `${view.runs.length} of ${view.total} runs`;
      holder.replaceChildren(view.runs.length ? runsTable(view.runs)
        : el("p", { class: "muted" }, "no runs recorded in this namespace yet"));
      document.body.dataset.ready = "1";
    }
    for (const [select, key] of [[wf, "workflow"], [st, "strategy"]]) {
      select.addEventListener("change", () => {
        if (select.value) params.set(key, select.value); else params.delete(key);
        history.replaceState(null, "", `?${params}`);
        load().catch(fail);
      });
    }
    await load();
    const events = new EventSource("/api/events");
    events.addEventListener("runs", () => load().catch(fail));
  }

  function runsTable(runs) {
    return table([
      { label: "run", cell: (r) => el("a", { href: `/runs/${encodeURIComponent(r.run_id)}` },
        r.run_id) },
      { label: "workflow", cell: (r) => r.workflow },
      { label: "strategy", cell: (r) => r.strategy },
      { label: "status", cell: (r) => badge(r.status) },
      { label: "submitted", cell: (r) => fmtTime(r.submitted_at) },
      { label: "tasks", num: true, cell: (r) => r.tasks ?? "–" },
      { label: "observed makespan", num: true, cell: (r) => fmtS(r.observed_makespan_s) },
      { label: "predicted makespan", num: true, cell: (r) => fmtS(r.predicted_makespan_s) },
      { label: "predicted cost", num: true, cell: (r) => fmtUsd(r.predicted_cost_usd) },
      { label: "observed cost", num: true, cell: (r) => fmtUsd(r.observed_cost_usd) },
    ], runs.map((r) => Object.assign({}, r, { rowId: r.run_id })));
  }

  // -- run page -----------------------------------------------------------------------------

  const run = { view: null, states: {}, events: null, updates: 0, pending: false };

  async function runPage() {
    const view = config.static ? embedded.view : await getJSON(
      `/api/runs/${encodeURIComponent(config.run_id)}`);
    await drawRun(view);
    if (view.live && !config.static) subscribe();
  }

  async function drawRun(view) {
    for (const id of ["graph", "gantt", "pie"]) {
      const old = document.getElementById(id);
      if (old) Plotly.purge(old);
    }
    run.view = view;
    run.states = Object.assign({}, view.states);
    const s = view.summary;
    const parts = [
      el("h1", {}, s.workflow, " ", badge(s.status)),
      el("div", { class: "muted" }, `run ${s.run_id} · strategy ${s.strategy} · platform ` +
        `${s.platform ?? "?"} · submitted ${fmtTime(s.submitted_at)}`),
      summaryFigures(s),
    ];
    if (s.plan_error) parts.push(el("div", { class: "note" }, s.plan_error));
    if (s.status !== "running" && s.recorded_tasks < s.tasks) {
      parts.push(el("div", { class: "note" }, `${s.recorded_tasks} of ${s.tasks} tasks have ` +
        "metric records (the store keeps the newest records of each function, and a run's " +
        "workers may not have flushed theirs): the pie and the per-function table count those"));
    }
    if (!s.has_plan) {
      parts.push(el("div", { class: "note" }, "this run recorded no plan: the graph and the " +
        "planned timeline are not available"));
    }
    parts.push(el("h2", {}, "Task graph"), stateLegend(view),
      el("div", { class: "row" },
        el("div", { class: "grow" }, el("div", { id: "graph", class: "plot" })),
        el("div", { class: "side" }, el("div", { id: "details", class: "card" },
          el("p", { class: "muted" }, "click a task in the graph for its details")))));
    parts.push(el("h2", {}, "Planned and observed timeline"),
      el("div", { id: "gantt", class: "plot" }));
    parts.push(el("div", { class: "row" },
      el("div", { class: "side" }, el("h2", {}, "Where time went"),
        el("div", { id: "pie", class: "plot" })),
      el("div", { class: "grow" }, el("h2", {}, "Per function"), functionTable(view.functions))));
    main().replaceChildren(...parts);
    const drawn = [];
    if (view.graph) {
      const div = document.getElementById("graph");
      drawn.push(plot(div, view.graph.figure).then(() => {
        div.on("plotly_click", (ev) => {
          const p = ev.points.find((q) => q.curveNumber === view.graph.node_trace);
          if (p) showNode(p.customdata);
        });
      }));
    } else {
      document.getElementById("graph").append(el("p", { class: "muted" }, "no graph"));
    }
    drawn.push(plot(document.getElementById("gantt"), view.gantt));
    drawn.push(plot(document.getElementById("pie"), view.pie));
    await Promise.all(drawn);
    document.body.dataset.ready = "1";
  }

  function summaryFigures(s) {
    const progress = s.status === "running"
      ? el("span", {}, el("span", { class: "progress" }, el("div", { id: "progress-bar" })),
        " ", el("span", { id: "progress-text" }, `${s.done ?? 0} / ${s.tasks}`))
      : null;
    const diff = s.observed_makespan_s && s.predicted_makespan_s
      ? fmtPct((s.observed_makespan_s - s.predicted_makespan_s) / s.predicted_makespan_s) : "";
    return el("div", { class: "figures" },
      figureCard("tasks", String(s.tasks), progress),
      figureCard("workers", `${s.workers_started} started`, `${s.workers_planned} planned`),
      figureCard("makespan", fmtS(s.observed_makespan_s),
        `predicted ${fmtS(s.predicted_makespan_s)} ${diff}`),
      figureCard("cost", fmtUsd(s.observed_cost_usd ?? s.predicted_cost_usd),
        s.observed_cost_usd === null ? "predicted" : `predicted ${fmtUsd(s.predicted_cost_usd)}`),
      figureCard("GB-s", fmtNum(s.observed_gb_s), `predicted ${fmtNum(s.gb_s)}`),
      figureCard("critical path", `${s.critical_path.length} tasks`,
        s.critical_path.length ? `${s.critical_path[0]} → ${s.critical_path.at(-1)}` : ""));
  }

  function stateLegend(view) {
    const counts = {};
    for (const st of Object.values(run.states)) counts[st] = (counts[st] || 0) + 1;
    const items = view.state_order.map((st) => el("span", { "data-state": st },
      el("span", { class: "swatch", style: `background:${view.state_colors[st]}` }), st, " ",
      el("b", { class: "count" }, String(counts[st] || 0))));
    items.push(el("span", {}, el("span", { class: "swatch critical" }), "critical path"));
    if (view.graph && view.graph.aggregated) {
      items.push(el("span", { class: "muted" }, `${view.graph.tasks_total} tasks drawn as ` +
        `${view.graph.nodes.length} groups (function × generation); a group shows its most ` +
        "urgent state"));
    }
    return el("div", { class: "legend", id: "state-counts" }, items);
  }

  function functionTable(rows) {
    return table([
      { label: "function", cell: (r) => r.function },
      { label: "tasks", num: true, cell: (r) => r.tasks },
      { label: "attempts", num: true, cell: (r) => r.failed ? `${r.attempts} (${r.failed} ` +
        "failed)" : r.attempts },
      { label: "mean", num: true, cell: (r) => fmtS(r.mean_s) },
      { label: "p90", num: true, cell: (r) => fmtS(r.p90_s) },
      { label: "bytes in", num: true, cell: (r) => fmtBytes(r.bytes_in) },
      { label: "bytes out", num: true, cell: (r) => fmtBytes(r.bytes_out) },
      { label: "predicted", num: true, cell: (r) => fmtS(r.predicted_s) },
      { label: "prediction error", num: true, cell: (r) => fmtPct(r.error),
        cls: (r) => r.error !== null && Math.abs(r.error) > 0.15 ? "bad" : "" },
    ], rows);
  }

  function groupState(tasks) {
    const seen = new Set(tasks.map((t) => run.states[t] || "planned"));
    return GROUP_ORDER.find((st) => seen.has(st)) || "planned";
  }

  function hover(node) {
    if (node.tasks.length === 1) return `${node.tasks[0]}: ${run.states[node.tasks[0]] || "planned"}`;
    const counts = {};
    for (const t of node.tasks) {
      const st = run.states[t] || "planned";
      counts[st] = (counts[st] || 0) + 1;
    }
    return `${node.label}<br>` + Object.keys(counts).sort().map((k) => `${counts[k]} ${k}`)
      .join(", ");
  }

  function recolor() {
    run.pending = false;
    const view = run.view;
    if (view.graph) {
      const colors = view.graph.nodes.map((n) => view.state_colors[groupState(n.tasks)]);
      const texts = view.graph.nodes.map(hover);
      Plotly.restyle("graph", { "marker.color": [colors], hovertext: [texts] },
        [view.graph.node_trace]);
    }
    const counts = {};
    for (const st of Object.values(run.states)) counts[st] = (counts[st] || 0) + 1;
    for (const span of document.querySelectorAll("#state-counts [data-state]")) {
      span.querySelector(".count").textContent = String(counts[span.dataset.state] || 0);
    }
    run.updates += 1;
    document.body.dataset.updates = String(run.updates);
  }

  function subscribe() {
    const url = `/api/runs/${encodeURIComponent(config.run_id)}/events`;
    const events = new EventSource(url);
    run.events = events;
    events.addEventListener("states", (ev) => {
      Object.assign(run.states, JSON.parse(ev.data));
      if (!run.pending) { run.pending = true; requestAnimationFrame(recolor); }
    });
    events.addEventListener("progress", (ev) => {
      const p = JSON.parse(ev.data);
      const bar = document.getElementById("progress-bar");
      const text = document.getElementById("progress-text");
      if (bar) bar.style.width = `${p.total ? (100 * p.done) / p.total : 0}%`;
      if (text) text.textContent = `${p.done} / ${p.total} · ${p.workers} workers`;
    });
    events.addEventListener("timings", (ev) => extendGantt(JSON.parse(ev.data)));
    events.addEventListener("reload", () => refresh(false).catch(fail));
    events.addEventListener("ended", (ev) => {
      events.close();
      const data = JSON.parse(ev.data);
      refresh(true, data.view).catch(fail);
    });
  }

  function extendGantt(rows) {
    // new observed bars while the run goes: appended to the observed traces (added if absent)
    const div = document.getElementById("gantt");
    const view = run.view;
    const critical = new Set(view.summary.critical_path);
    for (const name of ["observed", "observed, critical"]) {
      const mine = rows.filter(([t]) => critical.has(t) === (name !== "observed"));
      if (!mine.length) continue;
      const y = mine.map(([, w]) => view.gantt_rows[w] || w);
      const base = mine.map((r) => r[2]);
      const x = mine.map((r) => Math.max(r[3] - r[2], 0));
      const text = mine.map((r) => r[0]);
      const index = div.data.findIndex((t) => t.name === name);
      if (index >= 0) {
        Plotly.extendTraces(div, { y: [y], base: [base], x: [x], text: [text] }, [index]);
      } else {
        Plotly.addTraces(div, { type: "bar", orientation: "h", name, offsetgroup: "observed",
          y, base, x, text, textposition: "none", marker: { color: view.gantt_colors[name] },
          hovertemplate: `%{text}<br>%{base:.3f} s + %{x:.3f} s<extra>${name}</extra>` });
      }
    }
  }

  async function refresh(final, given) {
    const view = given || await getJSON(`/api/runs/${encodeURIComponent(config.run_id)}`);
    await drawRun(view);
    run.updates += 1;
    document.body.dataset.updates = String(run.updates);
    if (final) document.body.dataset.ended = view.summary.status;
  }

  function showNode(index) {
    const node = run.view.graph.nodes[index];
    if (node.tasks.length === 1) { showTask(node.tasks[0]); return; }
    const shown = node.tasks.slice(0, 300);
    const more = node.tasks.length - shown.length;
    document.getElementById("details").replaceChildren(
      el("h3", {}, node.label), el("p", {}, hover(node).replace("<br>", " · ")),
      el("div", { class: "tasklist" }, shown.map((t) => el("a", { href: "#",
        onclick: (e) => { e.preventDefault(); showTask(t); } }, t))),
      el("p", { class: "muted" }, more > 0 ? `… and ${more} more` : ""));
  }

  async function showTask(taskId) {
    const box = document.getElementById("details");
    try {
      const d = config.static ? embedded.tasks[taskId] : await getJSON(
        `/api/runs/${encodeURIComponent(config.run_id)}/tasks/${encodeURIComponent(taskId)}`);
      if (!d) throw new Error(`no details for ${taskId}`);
      box.replaceChildren(...taskDetails(d));
    } catch (err) {
      box.replaceChildren(el("div", { class: "note" }, String(err.message || err)));
    }
  }

  function taskDetails(d) {
    const p = d.planned || {};
    const link = (t) => el("a", { href: "#", onclick: (e) => { e.preventDefault(); showTask(t); } },
      t);
    const links = (ids) => ids.length ? ids.flatMap((t, i) => i ? [", ", link(t)] : [link(t)])
      : "–";
    const out = [
      el("h3", { id: "task-title" }, d.id, " ", badge(d.state)),
      el("dl", {},
        el("dt", {}, "function"), el("dd", {}, d.function),
        el("dt", {}, "worker"), el("dd", {}, p.worker ?? "–"),
        el("dt", {}, "configuration"), el("dd", {}, p.memory_mb
          ? `${p.memory_mb} MB, ${fmtNum(p.cpus, 2)} CPUs` : "–"),
        el("dt", {}, "planned"), el("dd", {}, p.pred_start_s === undefined ? "–"
          : `${fmtS(p.pred_start_s)} → ${fmtS(p.pred_finish_s)} (${fmtS(p.pred_duration_s)})`),
        el("dt", {}, "critical"), el("dd", {}, p.critical ? "yes" : `no (slack ${fmtS(p.slack_s)})`),
        el("dt", {}, "optimizations"), el("dd", {}, (p.optimizations || []).join(", ") || "–"),
        el("dt", {}, "predicted from"), el("dd", {}, p.prediction_source ?? "–"),
        el("dt", {}, "inputs from"), el("dd", {}, links(d.upstream)),
        el("dt", {}, "consumers"), el("dd", {}, links(d.downstream))),
    ];
    if (p.reasons && p.reasons.length) {
      out.push(el("div", { class: "muted" }, p.reasons.join("; ")));
    }
    if (d.attempts.length) {
      out.push(el("h2", {}, "Attempts"), ...d.attempts.map((a) => el("dl", { class: "attempt" },
        el("dt", {}, `#${a.attempt}`), el("dd", {}, `${a.ok ? "ok" : "failed"} on ${a.worker} ` +
          `(${a.memory_mb} MB), started ${fmtS(a.start_s)}`),
        el("dt", {}, "seconds"), el("dd", {}, `fetch ${fmtS(a.fetch_s)} · exec ${fmtS(a.exec_s)}` +
          ` · upload ${fmtS(a.upload_s)} · update ${fmtS(a.update_s)} · invoke ` +
          fmtS(a.invoke_s)),
        el("dt", {}, "sizes"), el("dd", {}, `in ${fmtBytes(a.input_bytes)} · out ` +
          fmtBytes(a.output_bytes) + (a.peak_memory_mb ? ` · peak ${a.peak_memory_mb.toFixed(0)}`
          + " MB" : "")))));
    } else if (d.observed.length) {
      out.push(el("h2", {}, "Observed"), el("dl", {}, d.observed.map((o) => [
        el("dt", {}, `attempt ${o.attempt}`),
        el("dd", {}, `${o.worker}: ${fmtS(o.start_s)} → ${fmtS(o.finish_s)}`)])));
    }
    if (d.error) {
      const e = d.error;
      out.push(el("h2", {}, "Error"), el("pre", { id: "task-error" },
        [e.exc_type ? `${e.exc_type}: ` : "", e.message || "", e.traceback ? `\n\n${e.traceback}`
          : ""].join("")));
    }
    return out;
  }

  // -- compare page -------------------------------------------------------------------------

  async function comparePage() {
    const params = new URLSearchParams(location.search);
    const view = await getJSON(`/api/compare?${params}`);
    const select = el("select", { id: "compare-workflow" }, view.workflows.map((w) =>
      el("option", { value: w, selected: w === view.workflow ? "" : null }, w)));
    select.addEventListener("change", () => { location.search = `?workflow=${encodeURIComponent(
      select.value)}`; });
    const parts = [el("h1", {}, "Compare strategies"),
      el("div", { class: "filters" }, el("label", {}, "workflow ", select),
        el("span", { class: "muted" }, `${view.runs} most recent runs`))];
    if (!view.rows.length) {
      parts.push(el("p", { class: "muted" }, "no runs recorded yet"));
    } else {
      parts.push(table([
        { label: "strategy", cell: (r) => r.strategy },
        { label: "runs", num: true, cell: (r) => r.failed ? `${r.runs} (${r.failed} failed)`
          : r.runs },
        { label: "observed makespan", num: true, cell: (r) => fmtS(r.observed_makespan_s) },
        { label: "best", num: true, cell: (r) => fmtS(r.best_makespan_s) },
        { label: "predicted makespan", num: true, cell: (r) => fmtS(r.predicted_makespan_s) },
        { label: "prediction error", num: true, cell: (r) => r.makespan_error === null ? "–"
          : `${(100 * r.makespan_error).toFixed(1)}%` },
        { label: "predicted cost", num: true, cell: (r) => fmtUsd(r.predicted_cost_usd) },
        { label: "observed cost", num: true, cell: (r) => fmtUsd(r.observed_cost_usd) },
        { label: "GB-s predicted", num: true, cell: (r) => fmtNum(r.predicted_gb_s) },
        { label: "GB-s observed", num: true, cell: (r) => fmtNum(r.observed_gb_s) },
      ], view.rows), el("div", { id: "compare-figure", class: "plot" }));
    }
    main().replaceChildren(...parts);
    if (view.figure) await plot(document.getElementById("compare-figure"), view.figure);
    document.body.dataset.ready = "1";
  }

  // -- start --------------------------------------------------------------------------------

  function start() {
    config = JSON.parse(document.getElementById("pf-config").textContent);
    embedded = JSON.parse(document.getElementById("pf-data").textContent);
    if (config.static) document.body.classList.add("static");
    document.getElementById("namespace").textContent = config.namespace
      ? `namespace ${config.namespace}` : "";
    const pages = { runs: runsPage, run: runPage, compare: comparePage };
    (pages[config.page] || runsPage)().catch(fail);
  }

  return { start };
})();
