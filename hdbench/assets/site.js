// hdbench report: every page is drawn from data.js (the leaderboard's JSON export) and, on a
// scenario page, curves/<hash>.js. Text from the store goes in as text, never as HTML.
"use strict";
(function () {
  const D = window.HDBENCH;
  const app = document.getElementById("app");
  const page = document.body.dataset.page;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#7f7f7f", "#bcbd22", "#17becf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined) return "";
    if (typeof x !== "number") return String(x);
    if (!isFinite(x)) return String(x);
    return Number(x.toPrecision(digits || 3)).toString();
  }
  const fixed = (x, n) => (x === null || x === undefined ? "" : isFinite(x) ? x.toFixed(n) : String(x));
  const rows = (view) => (D.views[view] ? D.export[D.views[view]] : []);
  const scenarioByHash = Object.fromEntries(D.scenarios.map((s) => [s.hash, s]));

  // -- sortable tables: a cell's data-v (a number) sorts before its text ---------------------------
  function table(id, head, body, caption) {
    const t = el("table", {id: id, class: "sortable"});
    if (caption) t.append(el("caption", {}, caption));
    t.append(el("thead", {}, el("tr", {}, head.map((h, i) => {
      const th = el("th", {scope: "col", title: "sort by " + h}, h);
      th.addEventListener("click", () => sortBy(t, i));
      return th;
    }))));
    const tb = el("tbody");
    for (const r of body) {
      tb.append(el("tr", r.attrs || {}, r.cells.map((c) => {
        const cell = (c && typeof c === "object" && !(c instanceof Node) && "text" in c) ? c : {text: c};
        const td = el("td", {"data-v": cell.v, class: cell.cls}, cell.text);
        if (cell.title) td.title = cell.title;
        return td;
      })));
    }
    t.append(tb);
    return t;
  }
  function key(td) {
    const v = td.dataset.v;
    if (v !== undefined && v !== "") { const n = Number(v); if (!isNaN(n)) return [0, n, ""]; }
    return [1, 0, td.textContent];
  }
  function sortBy(t, col) {
    const th = t.tHead.rows[0].cells[col];
    const dir = th.dataset.dir === "asc" ? -1 : 1;
    for (const h of t.tHead.rows[0].cells) { delete h.dataset.dir; h.removeAttribute("aria-sort"); }
    th.dataset.dir = dir === 1 ? "asc" : "desc";
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    const body = t.tBodies[0];
    const sorted = Array.from(body.rows).sort((a, b) => {
      const ka = key(a.cells[col]), kb = key(b.cells[col]);
      if (ka[0] !== kb[0]) return ka[0] - kb[0];            // blanks last, either way
      if (ka[1] !== kb[1]) return dir * (ka[1] - kb[1]);
      return dir * ka[2].localeCompare(kb[2]);
    });
    for (const r of sorted) body.append(r);
  }

  // -- cells shared by both pages ------------------------------------------------------------------
  const rankCell = (r) => (r.rank === undefined || r.rank === null ? {text: "", v: ""} :
    {text: r.rank + (r.tied ? "=" : ""), v: r.rank});
  function scenarioRowCells(r, withScenario) {
    const s = scenarioByHash[r.hash];
    const name = withScenario ? [{text: s ? el("a", {href: s.page}, r.scenario) : r.scenario, v: ""}] : [];
    if (r.status !== "ok") {
      return name.concat([rankCell(r), r.predictor, {text: r.status + ": " + r.message, cls: "reason"},
                          "", "", "", "", "", "", ""]);
    }
    const error = fmt(r.error) + (r.uncertainty === null || r.uncertainty === undefined ? "" :
                                  " ± " + fmt(r.uncertainty, 2));
    const partial = r.complete ? "" : " (partial: no " + r.missing.join(", ") + ")";
    return name.concat([rankCell(r), r.predictor + partial, {text: fixed(r.ratio, 2), v: r.ratio},
      {text: error, v: r.error}, {text: fmt(r.noise_floor), v: r.noise_floor}, r.worst_observable,
      {text: fmt(r.z_max, 2), v: r.z_max}, {text: fmt(r.cold_s, 2), v: r.cold_s},
      {text: fmt(r.warm_s, 2), v: r.warm_s},
      {text: (r.speedup_bound ? ">=" : "") + fmt(r.speedup) + "x", v: r.speedup}]);
  }
  const SCENARIO_HEAD = ["rank", "predictor", "err/floor", "error", "noise floor", "worst", "worst z",
                         "cold s", "warm s", "speed-up"];

  function header(title, sub) {
    return el("header", {}, el("h1", {}, title), sub ? el("p", {class: "sub"}, sub) : null);
  }
  function rules() {
    return el("p", {class: "rules"},
      "err/floor: a predictor's worst headline observable's sup distance to the simulation mean, in units " +
      "of that observable's Monte-Carlo noise floor (about 1 = within noise). rank: 1 + the number of " +
      "predictors that beat it in at least 97.5% of paired bootstrap resamples of the seeds; ties share " +
      "a rank (1=). borda: the mean fraction of the other participants beaten over the scenarios a " +
      "predictor supports (a tie counts one half); the ranges count ties as losses, then as wins.");
  }

  // -- index ---------------------------------------------------------------------------------------
  function index() {
    document.title = "hdbench: suite " + D.suite;
    const runs = D.provenance.runs;
    const last = runs.length ? runs[runs.length - 1] : null;
    app.append(header("Suite '" + D.suite + "'", D.scenarios.length + " scenarios" +
      (last ? "; last run " + last.started : "") + "; report made " + D.generated));
    app.append(el("nav", {}, el("a", {href: "#aggregate"}, "leaderboard"), " · ",
      el("a", {href: "#scenarios"}, "scenarios"), " · ",
      D.views["finite-size"] ? el("a", {href: "#finite-size"}, "d → ∞") : null,
      D.views["finite-size"] ? " · " : null, el("a", {href: "#provenance"}, "provenance"), " · ",
      el("a", {href: "leaderboard.json"}, "JSON")));
    app.append(rules());

    app.append(el("h2", {id: "aggregate"}, "Leaderboard"));
    const agg = rows("aggregate").map((r) => ({attrs: {"data-predictor": r.predictor}, cells: [
      {text: r.rank === null ? "" : r.rank + (rows("aggregate").filter((o) => o.rank === r.rank).length > 1 ? "=" : ""),
       v: r.rank === null ? "" : r.rank},
      r.predictor,
      {text: r.borda === null ? "" : fixed(r.borda, 2) + " [" + fixed(r.borda_lo, 2) + ", " + fixed(r.borda_hi, 2) + "]",
       v: r.borda === null ? "" : r.borda},
      {text: r.mean_rank === null ? "" : fixed(r.mean_rank, 2) + " [" + fixed(r.rank_lo, 2) + ", " + fixed(r.rank_hi, 2) + "]",
       v: r.mean_rank === null ? "" : r.mean_rank},
      r.wins + "/" + r.ties + "/" + r.losses,
      {text: fixed(r.median_ratio, 2), v: r.median_ratio === null ? "" : r.median_ratio},
      {text: r.coverage, v: r.scored + r.failed},
      {text: String(r.failed), v: r.failed}]}));
    app.append(table("leaderboard", ["rank", "predictor", "borda [range]", "mean rank [range]",
      "wins/ties/losses", "median err/floor", "coverage", "failed"], agg));

    app.append(el("h2", {id: "scenarios"}, "Scenarios"));
    const list = el("ul", {class: "scenarios"});
    for (const s of D.scenarios) {
      const own = rows("scenarios").filter((r) => r.hash === s.hash);
      const best = own.filter((r) => r.rank === 1).map((r) => r.predictor);
      const count = (st) => own.filter((r) => r.status === st).length;
      list.append(el("li", {}, el("a", {href: s.page, class: "scenario-link"}, s.label),
        " — " + (s.simulated ? "best: " + (best.join(", ") || "none") : "no simulation stored") +
        "; " + count("ok") + " scored, " + count("n/a") + " n/a" +
        (count("failed") + count("timeout") ? ", " + (count("failed") + count("timeout")) + " failed" : "")));
    }
    app.append(list);
    app.append(el("details", {}, el("summary", {}, "every scenario's ranks, n/a and failure reasons"),
      table("per-scenario", ["scenario"].concat(SCENARIO_HEAD),
        rows("scenarios").map((r) => ({cells: scenarioRowCells(r, true)})))));

    if (D.views["finite-size"]) {
      app.append(el("h2", {id: "finite-size"}, "Against the simulation extrapolated to d = ∞"));
      app.append(el("p", {}, "Each theory scored at every d of a sweep and against the simulation " +
        "extrapolated to d = ∞ (a + b/d at each time): a residual that vanishes there is a finite-size " +
        "effect, one that stays is a wrong limit."));
      app.append(table("finite-size-table", ["scenarios", "predictor", "d", "err/floor at each d",
        "err/floor at d = ∞", "worst z at ∞", "verdict"], rows("finite-size").map((r) => ({cells: [
          r.family, r.predictor, r.d.join(", "), (r.ratios || []).map((x) => fixed(x, 2)).join(", "),
          {text: fixed(r.ratio_inf, 2), v: r.ratio_inf === undefined ? "" : r.ratio_inf},
          {text: fmt(r.z_inf, 2), v: r.z_inf === undefined ? "" : r.z_inf}, r.verdict || r.message]}))));
    }

    app.append(el("h2", {id: "provenance"}, "Provenance"));
    if (!last) { app.append(el("p", {}, "no run recorded")); return; }
    const env = last.env;
    const dl = el("dl", {class: "env"});
    for (const k of ["hdbench", "git_commit", "python", "jax", "numpy", "platform", "machine", "cpu_count", "devices"]) {
      if (k in env) dl.append(el("dt", {}, k), el("dd", {}, Array.isArray(env[k]) ? env[k].join(", ") : String(env[k])));
    }
    app.append(el("p", {}, "The newest of " + runs.length + " run(s) of this suite in the store: run " + last.id +
      " (" + last.status + "), " + last.started + " → " + (last.finished || "not finished") + "."), dl);
    const plugins = env.plugins || {};
    app.append(table("plugins", ["plugin", "version"],
      Object.entries(plugins).map(([k, v]) => ({cells: [k, typeof v === "string" ? v : JSON.stringify(v)]}))));
  }

  // -- scenario page -------------------------------------------------------------------------------
  function scenario() {
    const h = document.body.dataset.scenario;
    const s = scenarioByHash[h];
    document.title = s.label + ": hdbench";
    app.append(el("nav", {}, el("a", {href: "index.html"}, "← suite '" + D.suite + "'")));
    app.append(header(s.label, "scenario " + h));
    app.append(el("details", {}, el("summary", {}, "specification"), el("pre", {}, JSON.stringify(s.spec, null, 1))));
    const own = rows("scenarios").filter((r) => r.hash === h);
    app.append(el("h2", {}, "Ranks"));
    app.append(rules());
    app.append(table("scenario-table", SCENARIO_HEAD, own.filter((r) => r.status !== "n/a").map((r) => (
      {attrs: {"data-predictor": r.predictor}, cells: scenarioRowCells(r, false)}))));
    const na = own.filter((r) => r.status === "n/a");
    if (na.length) {
      app.append(el("details", {}, el("summary", {}, na.length + " predictor" + (na.length > 1 ? "s" : "") +
        " n/a: why"), table("na-table", ["predictor", "reason"], na.map((r) => ({cells: [r.predictor, r.message]})))));
    }
    if (s.simulated) {
      app.append(el("h2", {}, "Curves"));
      app.append(el("p", {class: "rules"}, "Black: the simulation's statistic over seeds, grey: its " +
        Math.round(100 * window.HDBENCH_CURVES.band) + "% Student-t band; dashed: each theory (shaded: a " +
        "Monte-Carlo theory's own 95% band); dotted: a long-time limit. Click a legend entry to hide or show it " +
        "in every panel; hover for values."));
      const div = el("div", {id: "curves", class: "curves"});
      app.append(div);
      drawCurves(div, window.HDBENCH_CURVES);
    } else {
      app.append(el("p", {}, "No simulation is stored for this scenario yet (run hdbench run)."));
    }
  }

  function drawCurves(div, C) {
    const n = C.observables.length;
    const cols = Math.min(3, n), nrows = Math.ceil(n / cols);
    const colour = Object.fromEntries(C.predictors.map((p, i) => [p, PALETTE[i % PALETTE.length]]));
    const traces = [], shown = new Set();
    const layout = {grid: {rows: nrows, columns: cols, pattern: "independent", ygap: 0.3}, height: 280 * nrows + 110,
                    margin: {t: 100, l: 60, r: 10, b: 50}, hovermode: "closest",
                    legend: {orientation: "h", x: 0, y: 1, yanchor: "top", yref: "container"}, showlegend: true};
    const t = C.times, tEnd = [t[0], t[t.length - 1]];
    C.observables.forEach((o, i) => {
      const ax = i === 0 ? "" : String(i + 1);
      const on = {xaxis: "x" + ax, yaxis: "y" + ax};
      const first = !shown.has("simulation");
      shown.add("simulation");
      traces.push(Object.assign({x: t, y: o.lo, mode: "lines", line: {width: 0}, hoverinfo: "skip",
        showlegend: false, legendgroup: "simulation", meta: "band"}, on));
      traces.push(Object.assign({x: t, y: o.hi, mode: "lines", line: {width: 0}, fill: "tonexty",
        fillcolor: "rgba(0,0,0,0.18)", name: Math.round(100 * C.band) + "% band (" + C.seeds + " seeds)",
        hoverinfo: "skip", showlegend: first, legendgroup: "simulation", meta: "band"}, on));
      traces.push(Object.assign({x: t, y: o.mean, mode: "lines", line: {color: "black", width: 1.5},
        name: "simulation", legendgroup: "simulation", showlegend: first, meta: "simulation",
        hovertemplate: "simulation<br>t=%{x:.3g}<br>" + o.name + "=%{y:.4g}<extra></extra>"}, on));
      for (const [p, th] of Object.entries(o.theories)) {
        const c = colour[p];
        const legend = !shown.has(p);
        if ("curve" in th) {
          if ("unc" in th) {
            const lo = th.curve.map((v, k) => (v === null || th.unc[k] === null ? null : v - 1.96 * th.unc[k]));
            const hi = th.curve.map((v, k) => (v === null || th.unc[k] === null ? null : v + 1.96 * th.unc[k]));
            traces.push(Object.assign({x: t, y: lo, mode: "lines", line: {width: 0}, hoverinfo: "skip",
              showlegend: false, legendgroup: p, meta: "unc"}, on));
            traces.push(Object.assign({x: t, y: hi, mode: "lines", line: {width: 0}, fill: "tonexty",
              fillcolor: c + "33", hoverinfo: "skip", showlegend: false, legendgroup: p, meta: "unc"}, on));
          }
          traces.push(Object.assign({x: t, y: th.curve, mode: "lines", name: p, legendgroup: p,
            showlegend: legend, line: {color: c, width: 2, dash: "dash"}, meta: "theory",
            hovertemplate: p + "<br>t=%{x:.3g}<br>" + o.name + "=%{y:.4g}<extra></extra>"}, on));
          shown.add(p);
        }
        if (th.limit !== undefined && th.limit !== null) {
          traces.push(Object.assign({x: tEnd, y: [th.limit, th.limit], mode: "lines", name: p, legendgroup: p,
            showlegend: !shown.has(p), line: {color: c, width: 1.5, dash: "dot"}, meta: "theory",
            hovertemplate: p + " (t → ∞)<br>" + o.name + "=%{y:.4g}<extra></extra>"}, on));
          shown.add(p);
        }
      }
      layout["xaxis" + ax] = {title: {text: "t = samples / d"}};
      layout["yaxis" + ax] = {title: {text: o.name}};
    });
    window.Plotly.newPlot(div, traces, layout, {responsive: true, displaylogo: false});
  }

  if (page === "index") index(); else scenario();
  document.body.dataset.ready = "1";
})();
