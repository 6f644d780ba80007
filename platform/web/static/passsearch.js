// Investigation page: pass search (过车查询) — partial plates with ? and *, look-alikes, vehicle and
// place filters; results in a table and on the map, keyset pages, CSV export. Every call carries the
// page's case number (TW.inv.caseNo) and is audited by the server. Data goes in as text only.
(function () {
  "use strict";
  const TW = window.TW;
  TW.labels({
    "ps.title": ["过车查询", "Pass search"],
    "ps.plate": ["车牌（? 一个字符，* 任意多个）", "Plate (? one character, * any run)"],
    "ps.lookalike": ["含易混字符 (0/O/D/Q, 1/I, 8/B, 2/Z, 5/S)", "Include look-alikes (0/O/D/Q, 1/I, 8/B, 2/Z, 5/S)"],
    "ps.kind": ["号牌情况", "Plate"],
    "ps.kind.any": ["不限", "Any"],
    "ps.kind.none": ["无牌", "No plate"],
    "ps.kind.unread": ["未识别", "Not read"],
    "ps.plate_color": ["号牌颜色代码", "Plate colour codes"],
    "ps.vehicle_color": ["车身颜色代码", "Vehicle colour codes"],
    "ps.vehicle_class": ["车辆类型代码", "Vehicle class codes"],
    "ps.checkpoints": ["卡口编号（逗号分隔）", "Checkpoint ids (comma-separated)"],
    "ps.area": ["行政区划", "Division code"],
    "ps.lane": ["车道", "Lanes"],
    "ps.direction": ["行驶方向", "Direction"],
    "ps.run": ["查询过车", "Search passes"],
    "ps.export": ["导出 CSV", "Export CSV"],
    "ps.col.time": ["时间", "Time"],
    "ps.col.plate": ["车牌", "Plate"],
    "ps.col.checkpoint": ["卡口", "Checkpoint"],
    "ps.col.colors": ["颜色 / 类型", "Colours / class"],
    "ps.col.speed": ["车速", "Speed"],
    "ps.summary": ["共 {total} 条过车，已显示 {n} 条", "{total} passes, {n} shown"],
    "ps.summary.more": ["超过 {total} 条过车，已显示 {n} 条", "More than {total} passes, {n} shown"],
    "ps.nothing": ["没有符合条件的过车", "No pass matches"],
    "ps.layer": ["过车", "Passes"],
    "ps.exported": ["已下载 {name}", "Downloaded {name}"],
  });
  const $ = (id) => document.getElementById(id);
  const S = { params: null, items: [], next: null, total: 0, exact: true };
  const inv = () => TW.inv || {};

  function params() {
    const v = (id) => $(id).value.trim();
    const q = {
      plate: v("ps-plate"),
      lookalike: $("ps-lookalike").checked ? "true" : "",
      plate_kind: v("ps-kind"),
      plate_color: v("ps-plate-color"),
      vehicle_color: v("ps-vehicle-color"),
      vehicle_class: v("ps-vehicle-class"),
      checkpoint_ids: v("ps-checkpoints").replace(/[\s，]+/g, ","),
      area_code: v("ps-area"),
      lane: v("ps-lane").replace(/[\s，]+/g, ","),
      direction: v("ps-direction"),
      from: TW.toIso($("ps-from").value),
      to: TW.toIso($("ps-to").value),
    };
    return q;
  }
  const withCase = (q) => TW.qs(Object.assign({}, q, { case_no: inv().caseNo || "" }));

  function row(p) {
    const colours = [p.plate_color, p.vehicle_color, p.vehicle_type].map((x) => (x == null ? "—" : String(x))).join(" / ");
    return TW.el(
      "tr",
      { "data-key": p.key },
      TW.el("td", {}, TW.fmtTime(p.ts)),
      TW.el("td", {}, TW.el("b", {}, p.plate_no)),
      TW.el("td", {}, p.checkpoint_name ? p.checkpoint_name + " (" + p.checkpoint_id + ")" : p.checkpoint_id),
      TW.el("td", {}, p.lane == null ? "—" : String(p.lane)),
      TW.el("td", {}, colours),
      TW.el("td", {}, p.speed_kmh == null ? "—" : p.speed_kmh + " km/h")
    );
  }

  function render() {
    $("ps-result").tBodies[0].replaceChildren(...S.items.map(row));
    $("ps-more").hidden = !S.next;
    $("ps-summary").textContent = !S.items.length
      ? TW.t("ps.nothing")
      : TW.t(S.exact ? "ps.summary" : "ps.summary.more", { total: S.total, n: S.items.length });
    draw();
  }

  // the passes on the investigation map, one dot per pass; a tooltip built as text
  function draw() {
    const map = inv().map;
    if (!map) return;
    const features = S.items
      .filter((p) => typeof p.lon === "number" && typeof p.lat === "number")
      .map((p) => ({ type: "Feature", properties: { key: p.key }, geometry: { type: "Point", coordinates: [p.lon, p.lat] } }));
    const byKey = new Map(S.items.map((p) => [p.key, p]));
    map.set(
      "passes",
      { type: "FeatureCollection", features },
      {
        label: TW.t("ps.layer"),
        pointToLayer: (f, ll) => {
          const p = byKey.get(f.properties.key);
          const tip = TW.el("span", {}, p.plate_no + " · " + TW.fmtTime(p.ts) + " · " + (p.checkpoint_name || p.checkpoint_id));
          return L.circleMarker(ll, { radius: 6, color: "#6a3d9a", weight: 2, fillOpacity: 0.5 }).bindTooltip(tip);
        },
      }
    );
  }

  async function run(ev, more) {
    if (ev) ev.preventDefault();
    $("ps-error").textContent = "";
    if (!more) S.params = params();
    const q = Object.assign({}, S.params, { limit: 200, cursor: more ? S.next : "" });
    $("ps-run").disabled = true;
    try {
      const res = await TW.api("/api/v1/passes" + withCase(q));
      S.items = more ? S.items.concat(res.items) : res.items;
      S.next = res.next_cursor;
      S.total = res.total_estimate;
      S.exact = res.total_exact;
      render();
    } catch (e) {
      $("ps-error").textContent = TW.describe(e);
    } finally {
      $("ps-run").disabled = false;
    }
  }

  async function exportCsv() {
    $("ps-error").textContent = "";
    try {
      const r = await TW.api("/api/v1/passes/export" + withCase(Object.assign({}, params(), { format: "csv" })), { raw: true });
      const blob = await r.blob();
      const m = /filename="?([^";]+)"?/.exec(r.headers.get("Content-Disposition") || "");
      const name = m ? m[1] : "passes.csv";
      const url = URL.createObjectURL(blob);
      const a = TW.el("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      $("ps-summary").textContent = TW.t("ps.exported", { name });
    } catch (e) {
      $("ps-error").textContent = TW.describe(e);
    }
  }

  function defaults() {
    // the last 24 hours, in the browser's local time
    const pad = (n) => String(n).padStart(2, "0");
    const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const now = new Date();
    if (!$("ps-to").value) $("ps-to").value = local(now);
    if (!$("ps-from").value) $("ps-from").value = local(new Date(now.getTime() - 86400000));
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("ps-form")) return;
    defaults();
    $("ps-form").addEventListener("submit", (ev) => run(ev, false));
    $("ps-more").addEventListener("click", () => run(null, true));
    $("ps-export").addEventListener("click", exportCsv);
  });
  TW.passSearch = S; // for the browser tests
})();
