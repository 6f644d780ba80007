// 覆盖总览 Coverage dashboard (staff, admin): the summary's rates with numerator / denominator, the rates
// per area, online / intact rate over time (a small hand-written SVG chart), the open fault list with
// each device's evidence (recent checks, last snapshot), and a map of the areas, faults and blind spots.
// Every figure comes from the API as is (GET /api/v1/coverage/...): the page computes none.
"use strict";
(function () {
  const TW = window.TW;
  TW.labels({
    "cov.area": ["区域", "Area"],
    "cov.city": ["全市（全部设备）", "Whole registry"],
    "cov.window": ["时间窗", "Window"],
    "win.24h": ["最近24小时", "Last 24 hours"],
    "win.7d": ["最近7天", "Last 7 days"],
    "win.30d": ["最近30天", "Last 30 days"],
    "cov.level": ["分表层级", "Table level"],
    "level.city": ["市", "City"],
    "level.district": ["区（分局）", "District"],
    "level.station": ["派出所", "Police station"],
    "level.grid": ["网格", "Grid cell"],
    "cov.refresh": ["刷新", "Refresh"],
    "cov.report": ["下载考核报表 (CSV)", "Download the report (CSV)"],
    "cov.summary": ["总体指标", "Figures"],
    "cov.window.text": ["统计时间窗 {from} — {to}；状态截至 {asof}", "Window {from} — {to}; status as of {asof}"],
    "cov.loading": ["加载中…", "Loading…"],
    "cov.ready": ["已更新 {t}", "Updated {t}"],
    "cov.failed": ["部分数据加载失败：{e}", "Some figures failed to load: {e}"],
    "kpi.online_rate": ["在线率（时间加权）", "Online rate (time-weighted)"],
    "kpi.online_now": ["当前在线", "Online now"],
    "kpi.intact_rate": ["完好率", "Intact rate"],
    "kpi.road_coverage_rate": ["道路覆盖率", "Road coverage"],
    "kpi.key_site_coverage_rate": ["重点部位覆盖率", "Key-site coverage"],
    "kpi.grid_coverage_rate": ["网格覆盖率", "Grid-cell coverage"],
    "kpi.designed": ["按设计（全部在用设备）{r}", "As designed (every device in use) {r}"],
    "unit.h": ["设备·小时", "device-hours"],
    "unit.devices": ["台", "devices"],
    "unit.km": ["公里", "km"],
    "unit.sites": ["处", "sites"],
    "unit.cells": ["格", "cells"],
    "cov.history": ["在线率与完好率趋势", "Online and intact rate over time"],
    "cov.history.table": ["数据表", "Data table"],
    "cov.history.online": ["在线率（该时段加权）", "Online rate (over the step)"],
    "cov.history.intact": ["完好率（时段末）", "Intact rate (at the step's end)"],
    "cov.history.empty": ["时间窗内没有在用设备", "No device in use in this window"],
    "col.time": ["时段", "Step"],
    "cov.map": ["地图", "Map"],
    "cov.map.open": ["打开完整地图 →", "Open the full map →"],
    "cov.map.note": [
      "区域按完好率着色（绿 ≥95%，黄绿 ≥80%，橙 ≥50%，红 <50%）；红/橙点为离线/故障设备（{n} 台）；红虚线为道路盲区（{b} 段）。",
      "Areas coloured by intact rate (green ≥95%, yellow-green ≥80%, orange ≥50%, red <50%); red/orange dots are offline/faulty devices ({n}); dashed red lines are road blind spots ({b}).",
    ],
    "cov.blind": ["道路盲区", "Road blind spots"],
    "cov.map.capped": ["（仅显示前 {n} 个）", " (first {n} shown)"],
    "cov.areas": ["各区域指标", "Rates per area"],
    "cov.areas.hint": ["每项下为 分子 / 分母；点一行查看该区域。", "Under each rate: numerator / denominator. Click a row to look at that area."],
    "cov.areas.outside": ["不在任何该级区域内的设备：{n} 台", "Devices in no area of this level: {n}"],
    "col.area": ["区域", "Area"],
    "col.devices": ["在用设备", "Devices in use"],
    "col.device": ["设备", "Device"],
    "col.status": ["状态", "Status"],
    "col.since": ["起始时间", "Since"],
    "col.reason": ["原因", "Reason"],
    "col.last_seen": ["最后在线", "Last seen"],
    "col.evidence": ["证据", "Evidence"],
    "cov.faults": ["故障清单", "Fault list"],
    "cov.faults.count": ["{n} 台（显示 {shown}）", "{n} devices ({shown} shown)"],
    "cov.faults.capped": ["（接口上限 1000）", " (the API's cap: 1000)"],
    "cov.faults.status": ["状态", "Status"],
    "cov.faults.search": ["设备编码 / 名称", "Device ID / name"],
    "cov.faults.none": ["没有未处理的故障", "No open fault"],
    "cov.faults.scope": ["按设备登记的区划代码筛选", "filtered by the devices' recorded area code"],
    all: ["全部", "All"],
    more: ["显示更多", "Show more"],
    "ev.show": ["查看", "Show"],
    "ev.hide": ["收起", "Hide"],
    "ev.health": ["最近巡检（最多10条，7天内）", "Recent checks (up to 10, last 7 days)"],
    "ev.snapshot": ["最新截图（30天内）", "Last snapshot (last 30 days)"],
    "ev.nosnap": ["30天内无截图", "No snapshot in the last 30 days"],
    "ev.snapfail": ["截图失败：{e}", "No picture: {e}"],
    "ev.nohealth": ["7天内无巡检记录", "No check in the last 7 days"],
    "ev.checkpoint": ["卡口设备：见其抓拍机的证据", "A checkpoint: see its cameras' evidence"],
    "ev.quality": ["诊断：{v}", "Diagnosis: {v}"],
    "h.reachable": ["可达", "Reachable"],
    "h.auth": ["认证", "Auth"],
    "h.latency": ["延迟 ms", "Latency ms"],
    "h.error": ["错误", "Error"],
    "h.agent": ["代理", "Agent"],
    yes: ["是", "yes"],
    no: ["否", "no"],
    "status.online": ["在线", "online"],
    "status.offline": ["离线", "offline"],
    "status.fault": ["故障", "fault"],
    "status.registered": ["未巡检", "not yet checked"],
  });

  // window choice -> (length in ms, history step)
  const WINDOWS = { "24h": [24 * 3600e3, "1h"], "7d": [7 * 86400e3, "6h"], "30d": [30 * 86400e3, "1d"] };
  const FIGURES = [
    ["online_rate", "h"],
    ["online_now", "devices"],
    ["intact_rate", "devices"],
    ["road_coverage_rate", "km"],
    ["key_site_coverage_rate", "sites"],
    ["grid_coverage_rate", "cells"],
  ];
  const DESIGNED = { road_coverage_rate: 1, key_site_coverage_rate: 1, grid_coverage_rate: 1 };
  const FAULT_PAGE = 200;
  const MAP_FAULT_CAP = 5000;

  const S = { data: {}, areaKinds: {}, shown: FAULT_PAGE, map: null, seq: 0 };

  // ---- number formats (plain digits with thousands commas; the test parses them back)
  const fmt = (x, d) =>
    Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d, useGrouping: true });
  function frac(fig, unit) {
    const n = fig.numerator;
    const d = fig.denominator;
    if (unit === "h") return fmt(n / 3600, 1) + " / " + fmt(d / 3600, 1) + " " + TW.t("unit.h");
    if (unit === "km") return fmt(n / 1000, 2) + " / " + fmt(d / 1000, 2) + " " + TW.t("unit.km");
    return fmt(n, 0) + " / " + fmt(d, 0) + " " + TW.t("unit." + unit);
  }
  const pct = (x) => (x === null || x === undefined ? "—" : fmt(100 * x, 1) + "%");
  const shortTime = (iso) => {
    const d = new Date(iso);
    const p = (k) => String(k).padStart(2, "0");
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const figData = (fig) => ({ rate: fig.rate, numerator: fig.numerator, denominator: fig.denominator });

  // ---- controls and the query they make
  function query() {
    const win = WINDOWS[TW.$("#cov-window").value] || WINDOWS["24h"];
    const to = new Date(Math.floor(Date.now() / 60000) * 60000);
    const from = new Date(to.getTime() - win[0]);
    return {
      area: TW.$("#cov-area").value,
      level: TW.$("#cov-level").value,
      from: from.toISOString(),
      to: to.toISOString(),
      step: win[1],
    };
  }
  function saveUrl(q) {
    const params = new URLSearchParams();
    if (q.area) params.set("area", q.area);
    params.set("window", TW.$("#cov-window").value);
    params.set("level", q.level);
    history.replaceState(null, "", location.pathname + "?" + params.toString());
    TW.$("#cov-map-open").href = "/console/map" + (q.area ? "?area=" + encodeURIComponent(q.area) : "");
  }
  function addAreaOption(code, name, kind) {
    S.areaKinds[code] = kind;
    if (TW.$(`#cov-area option[value="${CSS.escape(code)}"]`)) return;
    TW.$("#cov-area").append(TW.el("option", { value: code }, `${name} (${code})`));
  }
  async function loadAreaChoices() {
    for (const kind of ["city", "district"]) {
      const { items } = await TW.map.fetchAll("/api/v1/areas", { kind }, { max: 2000 });
      for (const a of items) addAreaOption(a.code, a.name, a.kind);
    }
  }

  // ---- summary
  function renderSummary() {
    const box = TW.$("#cov-kpis");
    box.replaceChildren();
    const s = S.data.summary;
    const root = TW.$("#cov-summary");
    if (!s) return;
    root.dataset.from = s.window.from;
    root.dataset.to = s.window.to;
    root.dataset.area = s.area_code || "";
    TW.$("#cov-scope").textContent = s.area_code ? s.area_code : TW.t("cov.city");
    TW.$("#cov-window-text").textContent = TW.t("cov.window.text", {
      from: TW.fmtTime(s.window.from),
      to: TW.fmtTime(s.window.to),
      asof: TW.fmtTime(s.as_of),
    });
    for (const [key, unit] of FIGURES) {
      const fig = s.figures[key];
      const d = figData(fig);
      box.append(
        TW.el(
          "div",
          {
            class: "tw-kpi",
            "data-testid": "kpi-" + key,
            "data-rate": d.rate,
            "data-numerator": d.numerator,
            "data-denominator": d.denominator,
          },
          TW.el("small", {}, TW.t("kpi." + key)),
          TW.el("b", { "data-testid": `kpi-${key}-rate` }, pct(fig.rate)),
          TW.el("span", { class: "tw-frac", "data-testid": `kpi-${key}-frac` }, frac(fig, unit)),
          DESIGNED[key]
            ? TW.el("small", { "data-testid": `kpi-${key}-designed` }, TW.t("kpi.designed", { r: pct(s.designed[key]) }))
            : null
        )
      );
    }
  }

  // ---- per-area table
  function rateCell(field, fig, unit) {
    const d = figData(fig);
    return TW.el(
      "td",
      { "data-field": field, "data-rate": d.rate, "data-numerator": d.numerator, "data-denominator": d.denominator },
      TW.el("b", {}, pct(fig.rate)),
      TW.el("br"),
      TW.el("small", {}, frac(fig, unit))
    );
  }
  function renderAreas() {
    const tb = TW.$("#cov-areas tbody");
    tb.replaceChildren();
    const a = S.data.areas;
    if (!a) return;
    for (const r of a.items) {
      addAreaKind(r);
      const tr = TW.el(
        "tr",
        {
          "data-area": r.area_code,
          "data-testid": "area-" + r.area_code,
          class: r.area_code === TW.$("#cov-area").value ? "tw-selected" : null,
          tabindex: "0",
          onclick: () => pickArea(r),
          onkeydown: (e) => e.key === "Enter" && pickArea(r),
        },
        TW.el("td", {}, TW.el("strong", {}, r.name), TW.el("br"), TW.el("small", {}, r.area_code)),
        TW.el("td", { "data-field": "devices_total" }, fmt(r.devices_total, 0))
      );
      for (const [key, unit] of FIGURES) tr.append(rateCell(key, r.figures[key], unit));
      tb.append(tr);
    }
    if (!a.items.length) tb.append(TW.el("tr", {}, TW.el("td", { colspan: 8 }, TW.t("none"))));
    TW.$("#cov-areas-outside").textContent = TW.t("cov.areas.outside", { n: a.devices_outside });
  }
  function addAreaKind(r) {
    S.areaKinds[r.area_code] = r.kind;
  }
  function pickArea(r) {
    addAreaOption(r.area_code, r.name, r.kind);
    TW.$("#cov-area").value = r.area_code;
    load();
  }

  // ---- history chart: hand-written SVG, rates 0–100 % against time
  const NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  function renderHistory() {
    const box = TW.$("#cov-history");
    const table = TW.$("#cov-history-table");
    box.replaceChildren();
    table.replaceChildren();
    const h = S.data.history;
    if (!h) return;
    const pts = h.points;
    box.dataset.points = pts.length;
    // drawn at the box's own width, so the labels keep their size on a phone
    const W = Math.round(Math.min(1000, Math.max(300, box.clientWidth || 640)));
    const H = W < 500 ? 200 : 240;
    const m = { l: 44, r: 12, t: 12, b: 30 };
    const t0 = Date.parse(h.window.from);
    const t1 = Date.parse(h.window.to);
    const x = (t) => m.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - m.l - m.r);
    const y = (v) => m.t + (1 - v) * (H - m.t - m.b);
    const g = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-label": TW.t("cov.history"),
      "data-testid": "cov-history-svg",
      preserveAspectRatio: "xMidYMid meet",
    });
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      g.append(svg("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: "tw-chart-grid" }));
      g.append(svg("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tw-chart-label" }, v * 100 + "%"));
    }
    const ticks = W < 500 ? 2 : 4;
    for (let k = 0; k <= ticks; k++) {
      const t = t0 + ((t1 - t0) * k) / ticks;
      const anchor = k === 0 ? "start" : k === ticks ? "end" : "middle";
      g.append(svg("text", { x: x(t), y: H - 8, "text-anchor": anchor, class: "tw-chart-label" }, shortTime(t)));
    }
    // online: the step's time-weighted rate, drawn at the step's middle; intact: at the step's end
    const series = [
      ["online", (p) => (p.scheduled_s > 0 ? p.online_rate : null), (p) => (Date.parse(p.from) + Date.parse(p.to)) / 2,
        (p) => `${fmt(p.online_s / 3600, 1)} / ${fmt(p.scheduled_s / 3600, 1)} ${TW.t("unit.h")}`],
      ["intact", (p) => (p.devices > 0 ? p.intact_rate : null), (p) => Date.parse(p.to),
        (p) => `${fmt(p.intact, 0)} / ${fmt(p.devices, 0)} ${TW.t("unit.devices")}`],
    ];
    let drawn = 0;
    for (const [name, val, at, detail] of series) {
      // a step with nothing scheduled has no rate: the line breaks there
      let run = [];
      const runs = [run];
      const dots = [];
      for (const p of pts) {
        const v = val(p);
        if (v === null) {
          if (run.length) runs.push((run = []));
          continue;
        }
        const xy = [x(at(p)), y(v)];
        run.push(xy.map((n) => n.toFixed(1)).join(","));
        dots.push(
          svg("circle", { cx: xy[0], cy: xy[1], r: 3, class: "tw-chart-dot tw-chart-" + name },
            svg("title", {}, `${shortTime(p.from)}–${shortTime(p.to)} ${TW.t("cov.history." + name)} ${pct(v)} (${detail(p)})`))
        );
      }
      for (const r of runs) if (r.length) g.append(svg("polyline", { points: r.join(" "), class: "tw-chart-line tw-chart-" + name }));
      for (const d of dots) g.append(d);
      drawn += dots.length;
    }
    if (!drawn) g.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "tw-chart-label" }, TW.t("cov.history.empty")));
    box.append(
      g,
      TW.el(
        "p",
        { class: "tw-chart-legend" },
        TW.el("span", {}, TW.el("span", { class: "tw-swatch tw-chart-online" }), TW.t("cov.history.online")),
        TW.el("span", {}, TW.el("span", { class: "tw-swatch tw-chart-intact" }), TW.t("cov.history.intact"))
      )
    );
    table.append(
      TW.el(
        "thead",
        {},
        TW.el("tr", {}, TW.el("th", {}, TW.t("col.time")), TW.el("th", {}, TW.t("cov.history.online")), TW.el("th", {}, TW.t("cov.history.intact")))
      ),
      TW.el(
        "tbody",
        {},
        pts.map((p) =>
          TW.el(
            "tr",
            {},
            TW.el("td", {}, `${shortTime(p.from)} – ${shortTime(p.to)}`),
            TW.el("td", {}, `${pct(p.online_rate)} (${fmt(p.online_s / 3600, 1)} / ${fmt(p.scheduled_s / 3600, 1)})`),
            TW.el("td", {}, `${pct(p.intact_rate)} (${p.intact} / ${p.devices})`)
          )
        )
      )
    );
  }

  // ---- fault list with evidence on demand
  function badge(status) {
    return TW.el("span", { class: "tw-badge", style: `background:${TW.stateColour(status)}` }, TW.t("status." + status));
  }
  function filteredFaults() {
    const all = S.data.faults || [];
    const st = TW.$("#cov-fault-status").value;
    const q = TW.$("#cov-fault-q").value.trim().toLowerCase();
    return all.filter(
      (f) => (!st || f.status === st) && (!q || f.device_id.toLowerCase().includes(q) || (f.name || "").toLowerCase().includes(q))
    );
  }
  function renderFaults() {
    const tb = TW.$("#cov-faults tbody");
    tb.replaceChildren();
    const all = S.data.faults;
    if (!all) return;
    const list = filteredFaults();
    const shown = list.slice(0, S.shown);
    for (const f of shown) {
      const btn = TW.el("button", { type: "button", class: "secondary", "data-testid": "evidence-btn-" + f.device_id }, TW.t("ev.show"));
      const tr = TW.el(
        "tr",
        { "data-device": f.device_id, "data-status": f.status, "data-testid": "fault-" + f.device_id },
        TW.el("td", {}, TW.el("code", {}, f.device_id), TW.el("br"), f.name, " ", TW.el("small", {}, `${f.kind} · ${f.area_code}`)),
        TW.el("td", {}, badge(f.status)),
        TW.el("td", { "data-label": TW.t("col.since") }, TW.fmtTime(f.since)),
        TW.el("td", { class: "tw-reason" }, f.reason || "—"),
        TW.el("td", { "data-label": TW.t("col.last_seen") }, TW.fmtTime(f.last_seen)),
        TW.el("td", {}, btn)
      );
      btn.addEventListener("click", () => toggleEvidence(f, tr, btn));
      tb.append(tr);
    }
    if (!list.length) tb.append(TW.el("tr", {}, TW.el("td", { colspan: 6 }, TW.t("cov.faults.none"))));
    const capped = all.length >= 1000 ? TW.t("cov.faults.capped") : "";
    const scoped = S.data.faultScope ? ` · ${TW.t("cov.faults.scope")} ${S.data.faultScope}` : "";
    TW.$("#cov-faults-count").textContent = TW.t("cov.faults.count", { n: list.length, shown: shown.length }) + capped + scoped;
    TW.$("#cov-faults-count").dataset.count = all.length;
    TW.$("#cov-faults-more").hidden = list.length <= shown.length;
  }
  async function toggleEvidence(f, tr, btn) {
    const open = tr.nextElementSibling;
    if (open && open.dataset.evidenceFor === f.device_id) {
      open.remove();
      btn.textContent = TW.t("ev.show");
      return;
    }
    btn.textContent = TW.t("ev.hide");
    const body = TW.el("div", { class: "tw-evidence-body" }, TW.t("loading"));
    const row = TW.el(
      "tr",
      { class: "tw-evidence", "data-evidence-for": f.device_id, "data-testid": "evidence-" + f.device_id },
      TW.el("td", { colspan: 6 }, body)
    );
    tr.after(row);
    if (f.kind === "checkpoint") {
      body.replaceChildren(TW.el("p", { class: "tw-hint" }, TW.t("ev.checkpoint")), TW.el("p", {}, f.reason || ""));
      row.dataset.state = "ready";
      return;
    }
    const now = Date.now();
    const id = encodeURIComponent(f.device_id);
    try {
      const [health, snaps] = await Promise.all([
        TW.api(`/api/v1/cameras/${id}/health` + TW.qs({ from: new Date(now - 7 * 86400e3).toISOString(), limit: 10 })),
        TW.api(`/api/v1/cameras/${id}/snapshots` + TW.qs({ from: new Date(now - 30 * 86400e3).toISOString(), limit: 1 })),
      ]);
      body.replaceChildren(snapshotBox(snaps[0]), healthBox(health));
      row.dataset.state = "ready";
    } catch (e) {
      body.replaceChildren(TW.el("p", { class: "tw-error" }, TW.describe(e)));
      row.dataset.state = "error";
    }
  }
  function snapshotBox(s) {
    const fig = TW.el("figure", { class: "tw-snapshot", "data-testid": "snapshot" });
    fig.append(TW.el("figcaption", {}, TW.t("ev.snapshot")));
    if (!s) {
      fig.append(TW.el("p", { class: "tw-hint" }, TW.t("ev.nosnap")));
      return fig;
    }
    if (s.error) {
      // the latest snapshot gave no picture: its failure is the evidence (text, never markup)
      fig.append(TW.el("p", { class: "tw-error", "data-testid": "snapshot-error" }, `${TW.fmtTime(s.ts)} · `, TW.t("ev.snapfail", { e: s.error })));
      return fig;
    }
    const q = s.quality || {};
    const verdict = q.verdict ? q.verdict + (q.faults && q.faults.length ? " (" + q.faults.join(", ") + ")" : "") : "—";
    fig.append(
      TW.el("a", { href: s.url, target: "_blank", rel: "noopener" },
        TW.el("img", { src: s.url, alt: s.key, loading: "lazy", width: s.width, height: s.height, "data-testid": "snapshot-img" })),
      TW.el("p", {}, `${TW.fmtTime(s.ts)} · ${s.width}×${s.height} · `,
        TW.el("span", { class: q.verdict === "fault" ? "tw-error" : "tw-ok", "data-testid": "snapshot-verdict" }, TW.t("ev.quality", { v: verdict })))
    );
    return fig;
  }
  function healthBox(rows) {
    const box = TW.el("div", { class: "tw-health", "data-testid": "health" }, TW.el("h3", {}, TW.t("ev.health")));
    if (!rows.length) {
      box.append(TW.el("p", { class: "tw-hint" }, TW.t("ev.nohealth")));
      return box;
    }
    const yn = (v) => (v === null || v === undefined ? "—" : TW.t(v ? "yes" : "no"));
    box.append(
      TW.el(
        "div",
        { class: "tw-table-wrap" },
        TW.el(
          "table",
          {},
          TW.el("thead", {}, TW.el("tr", {}, ["col.time", "h.reachable", "h.auth", "h.latency", "h.error", "h.agent"].map((k) => TW.el("th", {}, TW.t(k))))),
          TW.el(
            "tbody",
            {},
            rows.map((h) =>
              TW.el(
                "tr",
                { class: h.reachable ? "" : "tw-bad-row", "data-testid": "health-row" },
                TW.el("td", {}, TW.fmtTime(h.ts)),
                TW.el("td", {}, yn(h.reachable)),
                TW.el("td", {}, yn(h.authenticated)),
                TW.el("td", {}, h.latency_ms === null ? "—" : fmt(h.latency_ms, 0)),
                TW.el("td", {}, h.error || ""),
                TW.el("td", {}, h.agent || "")
              )
            )
          )
        )
      )
    );
    return box;
  }

  // ---- the map: areas coloured by intact rate, faulty devices, road blind spots of the scope
  function intactColour(r) {
    if (r === null || r === undefined) return "#878787";
    return r >= 0.95 ? "#1a9850" : r >= 0.8 ? "#a6d96a" : r >= 0.5 ? "#fdae61" : "#d73027";
  }
  async function renderMap(q, seq) {
    if (!S.map) S.map = TW.map.create(TW.$("#cov-map"), { collapsed: true });
    const m = S.map;
    if (!m) return;
    const rows = {};
    for (const r of (S.data.areas && S.data.areas.items) || []) rows[r.area_code] = r;
    const [areas, offline, faulty, blind] = await Promise.all([
      TW.map.fetchAll("/api/v1/areas", { kind: q.level }, { max: 5000 }),
      TW.map.fetchAll("/api/v1/cameras", { status: "offline" }, { max: MAP_FAULT_CAP }),
      TW.map.fetchAll("/api/v1/cameras", { status: "fault" }, { max: MAP_FAULT_CAP }),
      TW.api("/api/v1/coverage/blind-spots" + TW.qs({ area_code: q.area, what: "roads" })),
    ]);
    if (seq !== S.seq) return;
    m.set("areas", TW.map.places(areas.items), {
      label: TW.t("level." + q.level),
      style: (f) => {
        const r = rows[f.properties.code];
        return { color: "#34495e", weight: 1, fillColor: intactColour(r ? r.intact_rate : null), fillOpacity: 0.35 };
      },
      onEachFeature: (f, layer) => {
        const r = rows[f.properties.code];
        layer.bindPopup(() =>
          TW.map.popup(`${f.properties.name} (${f.properties.code})`, r ? [
            [TW.t("col.devices"), r.devices_total],
            [TW.t("kpi.online_rate"), `${pct(r.online_rate)} (${frac(r.figures.online_rate, "h")})`],
            [TW.t("kpi.intact_rate"), `${pct(r.intact_rate)} (${frac(r.figures.intact_rate, "devices")})`],
            [TW.t("kpi.road_coverage_rate"), pct(r.road_coverage_rate)],
          ] : [])
        );
      },
    });
    m.set("blind", blind, { label: TW.t("cov.blind"), style: { color: "#d73027", weight: 3, dashArray: "6 4" } });
    const devs = offline.items.concat(faulty.items);
    m.set("faults", TW.map.points(devs), {
      label: TW.t("cov.faults"),
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5, color: "#222", weight: 1, fillColor: TW.stateColour(f.properties.status), fillOpacity: 0.95 }),
      onEachFeature: (f, layer) =>
        layer.bindPopup(() =>
          TW.map.popup(`${f.properties.name} (${f.properties.device_id})`, [
            [TW.t("col.status"), TW.t("status." + f.properties.status)],
            [TW.t("col.reason"), f.properties.status_reason],
            [TW.t("col.last_seen"), TW.fmtTime(f.properties.last_seen)],
          ])
        ),
    });
    if (q.area) {
      // the chosen area's outline, and the view fitted to it
      const a = await TW.api("/api/v1/areas/" + encodeURIComponent(q.area));
      if (seq !== S.seq) return;
      m.set("scope", TW.map.places([a]), { label: a.name, style: { color: "#0b5cad", weight: 3, fill: false } });
      m.fit(["scope"]);
    } else {
      m.clear("scope");
      m.fit(["areas"]);
    }
    S.mapNote = { faults: devs.length, blind: blind.features.length, capped: offline.more || faulty.more };
    renderMapNote();
  }

  // ---- load everything for the current controls; each part renders (or fails) on its own
  async function load() {
    const seq = ++S.seq;
    const q = query();
    saveUrl(q);
    const status = TW.$("#cov-status");
    status.dataset.state = "loading";
    status.textContent = TW.t("cov.loading");
    const win = { from: q.from, to: q.to };
    const faultScope = q.area && S.areaKinds[q.area] !== "city" && /^\d+$/.test(q.area) ? q.area : null;
    const parts = {
      summary: TW.api("/api/v1/coverage/summary" + TW.qs(Object.assign({ area_code: q.area }, win))),
      areas: TW.api("/api/v1/coverage/areas" + TW.qs(Object.assign({ level: q.level }, win))),
      history: TW.api("/api/v1/coverage/history" + TW.qs(Object.assign({ area_code: q.area, step: q.step }, win))),
      faults: TW.api("/api/v1/faults" + TW.qs({ area_code: faultScope, limit: 1000 })),
    };
    const errors = [];
    const render = { summary: renderSummary, areas: renderAreas, history: renderHistory, faults: renderFaults };
    await Promise.all(
      Object.entries(parts).map(async ([k, p]) => {
        try {
          const v = await p;
          if (seq !== S.seq) return;
          S.data[k] = v;
          if (k === "faults") {
            S.data.faultScope = faultScope;
            S.shown = FAULT_PAGE;
          }
          render[k]();
        } catch (e) {
          if (seq !== S.seq) return;
          S.data[k] = null;
          render[k]();
          errors.push(TW.describe(e));
        }
      })
    );
    if (seq !== S.seq) return;
    try {
      await renderMap(q, seq);
    } catch (e) {
      errors.push(TW.describe(e));
    }
    if (seq !== S.seq) return;
    S.status = { errors, at: new Date().toISOString() };
    renderStatus();
    if (errors.length) TW.toast(errors[0], "error");
  }
  function renderStatus() {
    const status = TW.$("#cov-status");
    if (!S.status) return;
    const errors = S.status.errors;
    status.dataset.state = errors.length ? "error" : "ready";
    status.className = errors.length ? "tw-error" : "tw-hint";
    status.textContent = errors.length
      ? TW.t("cov.failed", { e: errors.join("; ") })
      : TW.t("cov.ready", { t: TW.fmtTime(S.status.at) });
  }
  function renderMapNote() {
    const note = TW.$("#cov-map-note");
    if (!S.mapNote) return;
    const n = S.mapNote;
    note.textContent = TW.t("cov.map.note", { n: n.faults, b: n.blind }) + (n.capped ? TW.t("cov.map.capped", { n: MAP_FAULT_CAP }) : "");
    note.dataset.faults = n.faults;
    note.dataset.blind = n.blind;
  }

  async function downloadReport() {
    const q = query();
    const btn = TW.$("#cov-report");
    btn.disabled = true;
    try {
      const r = await TW.api(
        "/api/v1/coverage/report" + TW.qs({ area_code: q.area, level: q.level, format: "csv", from: q.from, to: q.to }),
        { raw: true }
      );
      const blob = await r.blob();
      const cd = r.headers.get("Content-Disposition") || "";
      const name = (cd.match(/filename="([^"]+)"/) || [])[1] || "coverage-report.csv";
      const a = TW.el("a", { href: URL.createObjectURL(blob), download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      TW.toast(TW.describe(e), "error");
    } finally {
      btn.disabled = false;
    }
  }

  TW.ready(async () => {
    const params = new URLSearchParams(location.search);
    if (params.get("window") && WINDOWS[params.get("window")]) TW.$("#cov-window").value = params.get("window");
    if (["district", "station", "grid"].includes(params.get("level"))) TW.$("#cov-level").value = params.get("level");
    try {
      await loadAreaChoices();
    } catch (e) {
      TW.toast(TW.describe(e), "error");
    }
    const want = params.get("area");
    if (want) {
      if (!TW.$(`#cov-area option[value="${CSS.escape(want)}"]`)) addAreaOption(want, want, null);
      TW.$("#cov-area").value = want;
    }
    TW.$("#cov-controls").addEventListener("submit", (e) => {
      e.preventDefault();
      load();
    });
    for (const id of ["#cov-area", "#cov-window", "#cov-level"]) TW.$(id).addEventListener("change", load);
    TW.$("#cov-report").addEventListener("click", downloadReport);
    TW.$("#cov-fault-status").addEventListener("change", () => ((S.shown = FAULT_PAGE), renderFaults()));
    TW.$("#cov-fault-q").addEventListener("input", () => ((S.shown = FAULT_PAGE), renderFaults()));
    TW.$("#cov-faults-more").addEventListener("click", () => ((S.shown += FAULT_PAGE), renderFaults()));
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(renderHistory, 200);
    });
    document.addEventListener("tw:lang", () => {
      renderStatus();
      renderMapNote();
      renderSummary();
      renderAreas();
      renderHistory();
      renderFaults();
    });
    window.TW.coveragePage = S;
    load();
  });
})();
