// 地图 Map: area boundaries, roads, cameras with their view sectors coloured by state, checkpoints, key
// sites, and (staff, admin) blind spots and the enclosure's leak paths — all drawn from the API's answers
// (roads and coverage answers are GeoJSON; cameras, checkpoints and areas are records made into GeoJSON
// here). Leaflet draws on one canvas (preferCanvas); large registries are capped and the cap is shown.
"use strict";
(function () {
  const TW = window.TW;
  TW.labels({
    "map.area": ["区域", "Area"],
    "map.all": ["全部（不限区域）", "Everything (no area)"],
    "map.level": ["区域边界", "Boundaries"],
    "level.city": ["市", "City"],
    "level.district": ["区（分局）", "District"],
    "level.station": ["派出所", "Police station"],
    "level.grid": ["网格", "Grid cell"],
    "map.blind": ["盲区", "Blind spots"],
    "map.blind.roads": ["道路盲区", "Uncovered roads"],
    "map.blind.grid": ["未覆盖网格", "Uncovered grid cells"],
    "map.blind.key-sites": ["未覆盖重点部位", "Uncovered key sites"],
    "map.blind.off": ["不显示", "Off"],
    "map.reload": ["刷新", "Reload"],
    "map.legend": ["图例与数量", "Legend and counts"],
    "map.hint": ["点选图形查看详情；地图右上角可开关各图层。", "Click a shape for its details; the switch at the map's top right shows or hides each layer."],
    "map.loading": ["加载中… {what}", "Loading… {what}"],
    "map.ready": ["已绘制 {t}", "Drawn {t}"],
    "map.failed": ["部分图层加载失败：{e}", "Some layers failed to load: {e}"],
    "map.capped": ["仅显示前 {n} 个（登记数更多，请选一个区域）", "first {n} shown (the registry holds more: choose an area)"],
    "map.scoped": ["按登记区划代码 {a} 筛选", "filtered by recorded area code {a}"],
    "layer.scope": ["所选区域", "Chosen area"],
    "layer.areas": ["区域边界", "Area boundaries"],
    "layer.roads": ["道路", "Roads"],
    "layer.sectors": ["摄像机视域", "Camera view sectors"],
    "layer.cameras": ["摄像机", "Cameras"],
    "layer.checkpoints": ["卡口", "Checkpoints"],
    "layer.keysites": ["重点部位", "Key sites"],
    "layer.blind": ["盲区", "Blind spots"],
    "layer.leaks": ["卡口闭合缺口", "Enclosure leaks"],
    "status.online": ["在线", "online"],
    "status.offline": ["离线", "offline"],
    "status.fault": ["故障", "fault"],
    "status.registered": ["未巡检", "not yet checked"],
    "enc.title": ["卡口闭合：{a}", "Checkpoint enclosure: {a}"],
    "enc.closed": ["已闭合", "closed"],
    "enc.open": ["未闭合", "not closed"],
    "enc.figures": ["出入道路 {e} 条，已设卡 {g} 条，缺口 {u} 条", "{e} entry roads, {g} guarded, {u} unguarded"],
    "enc.choose": ["选择一个区域以计算卡口闭合", "Choose an area to compute its checkpoint enclosure"],
    "enc.role": ["盲区与卡口闭合仅对技防和管理员开放", "Blind spots and enclosure are for staff and admins"],
    "p.kind": ["类型", "Kind"],
    "p.status": ["状态", "Status"],
    "p.reason": ["原因", "Reason"],
    "p.last_seen": ["最后在线", "Last seen"],
    "p.view": ["朝向 / 视角 / 距离", "Heading / field of view / range"],
    "p.lifecycle": ["生命周期", "Lifecycle"],
    "p.area": ["区划代码", "Area code"],
    "p.road": ["道路", "Road"],
    "p.lanes": ["车道", "Lanes"],
    "p.cameras": ["抓拍机", "Cameras"],
    "p.length": ["长度 m", "Length m"],
    "p.class": ["等级", "Class"],
    "p.span": ["路段 m", "Stretch m"],
    "p.category": ["类别", "Category"],
    "p.seen_by": ["覆盖摄像机数", "Seen by cameras"],
    "p.share": ["道路覆盖比例", "Road share covered"],
  });

  // at most this many features per layer (a phone may ask for fewer with ?cap=N)
  const CAPS = { areas: 5000, roads: 30000, cameras: 20000, checkpoints: 5000, keysites: 5000 };
  const askedCap = parseInt(new URLSearchParams(location.search).get("cap") || "", 10);
  if (askedCap > 0) for (const k of Object.keys(CAPS)) CAPS[k] = Math.min(CAPS[k], askedCap);
  const COLOURS = {
    scope: "#0b5cad",
    areas: "#34495e",
    roads: "#8c96a0",
    checkpoints: "#111111",
    keysites: "#6a3d9a",
    blind: "#d73027",
    leaks: "#c51b7d",
  };
  const ROAD_WEIGHT = { motorway: 4, primary: 3, arterial: 3, ring: 3, secondary: 2, tertiary: 1.5 };
  const STATUSES = ["online", "offline", "fault", "registered"];
  const S = { map: null, seq: 0, areaKinds: {}, counts: {}, capped: {}, statusCounts: {}, enclosure: null, note: {} };
  const staff = () => TW.me && (TW.me.role === "staff" || TW.me.role === "admin");

  function popupBinder(titleOf, rowsOf) {
    return (f, layer) => layer.bindPopup(() => TW.map.popup(titleOf(f.properties, f), rowsOf(f.properties, f)));
  }
  const num = (x, d) => (x === null || x === undefined ? null : Number(x).toFixed(d));

  function addAreaOption(a) {
    S.areaKinds[a.code] = a.kind;
    if (TW.$(`#map-area option[value="${CSS.escape(a.code)}"]`)) return;
    TW.$("#map-area").append(TW.el("option", { value: a.code }, `${a.name} (${a.code})`));
  }

  // the area filter for device lists: the recorded area code's prefix (a city's code is not a prefix of
  // its districts' codes, so "city" means no filter)
  function deviceScope(area) {
    return area && S.areaKinds[area] !== "city" && /^\d+$/.test(area) ? area : null;
  }

  async function draw() {
    const seq = ++S.seq;
    const m = S.map;
    const area = TW.$("#map-area").value;
    const level = TW.$("#map-level").value;
    const blindWhat = TW.$("#map-blind").value;
    const params = new URLSearchParams();
    if (area) params.set("area", area);
    params.set("level", level);
    if (askedCap > 0) params.set("cap", String(askedCap));
    history.replaceState(null, "", location.pathname + "?" + params.toString());
    const status = TW.$("#map-status");
    status.dataset.state = "loading";
    status.className = "tw-hint";
    const errors = [];
    const scope = deviceScope(area);
    S.note = { cameras: scope, checkpoints: scope };
    const progress = (what) => (n) => {
      if (seq === S.seq) status.textContent = TW.t("map.loading", { what: `${TW.t("layer." + what)} ${n}` });
    };
    status.textContent = TW.t("map.loading", { what: "" });
    S.counts = {};
    S.capped = {};
    const jobs = {
      scope: area ? TW.api("/api/v1/areas/" + encodeURIComponent(area)) : Promise.resolve(null),
      areas: TW.map.fetchAll("/api/v1/areas", { kind: level }, { max: CAPS.areas, progress: progress("areas") }),
      roads: TW.map.fetchAll("/api/v1/roads", {}, { max: CAPS.roads, key: "features", progress: progress("roads") }),
      cameras: TW.map.fetchAll("/api/v1/cameras", { area_code: scope }, { max: CAPS.cameras, progress: progress("cameras") }),
      checkpoints: TW.map.fetchAll("/api/v1/checkpoints", { area_code: scope }, { max: CAPS.checkpoints }),
      keysites: TW.map.fetchAll("/api/v1/key-sites", {}, { max: CAPS.keysites }),
      blind: staff() && blindWhat ? TW.api("/api/v1/coverage/blind-spots" + TW.qs({ area_code: area, what: blindWhat })) : Promise.resolve(null),
      enclosure: staff() && area ? TW.api("/api/v1/coverage/enclosure" + TW.qs({ area_code: area })) : Promise.resolve(null),
    };
    const got = {};
    await Promise.all(
      Object.entries(jobs).map(async ([k, p]) => {
        try {
          got[k] = await p;
        } catch (e) {
          got[k] = null;
          errors.push(`${TW.t("layer." + (k === "enclosure" ? "leaks" : k))}: ${TW.describe(e)}`);
        }
      })
    );
    if (seq !== S.seq) return;
    for (const name of ["scope", "areas", "roads", "blind", "leaks", "sectors", "cameras", "checkpoints", "keysites"]) m.clear(name);

    if (got.areas) {
      m.set("areas", TW.map.places(got.areas.items), {
        label: TW.t("layer.areas"),
        style: { color: COLOURS.areas, weight: 1, dashArray: "4 3", fillOpacity: 0.04 },
        onEachFeature: popupBinder((p) => `${p.name} (${p.code})`, (p) => [[TW.t("p.kind"), TW.t("level." + p.kind)]]),
      });
      S.capped.areas = got.areas.more;
    }
    if (got.scope) {
      m.set("scope", TW.map.places([got.scope]), {
        label: TW.t("layer.scope"),
        style: { color: COLOURS.scope, weight: 3, fill: false },
        interactive: false,
      });
    }
    if (got.roads) {
      m.set("roads", { type: "FeatureCollection", features: got.roads.items }, {
        label: TW.t("layer.roads"),
        style: (f) => ({ color: COLOURS.roads, weight: ROAD_WEIGHT[f.properties.road_class] || 1 }),
        onEachFeature: popupBinder(
          (p, f) => `${p.name || ""} ${f.id}`,
          (p) => [[TW.t("p.class"), p.road_class], [TW.t("p.length"), num(p.length_m, 1)]]
        ),
      });
      S.capped.roads = got.roads.more;
    }
    if (got.blind) {
      m.set("blind", got.blind, {
        label: TW.t("layer.blind") + " · " + TW.t("map.blind." + blindWhat),
        style: { color: COLOURS.blind, weight: 4, dashArray: "6 4", fillColor: COLOURS.blind, fillOpacity: 0.25 },
        pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 7, color: COLOURS.blind, weight: 3, fill: false }),
        onEachFeature: popupBinder(
          (p) => TW.t("layer.blind") + " " + (p.road_id || p.code || p.id || ""),
          (p) => [
            [TW.t("p.span"), p.from_m !== undefined ? `${num(p.from_m, 0)} – ${num(p.to_m, 0)}` : null],
            [TW.t("p.length"), num(p.length_m, 1)],
            [TW.t("p.share"), p.covered_share !== undefined ? TW.pct(p.covered_share) : null],
            [TW.t("p.seen_by"), p.cameras !== undefined ? `${p.cameras} / ${p.k}` : null],
          ]
        ),
      });
    }
    S.enclosure = got.enclosure;
    if (got.enclosure && got.enclosure.leaks) {
      m.set("leaks", got.enclosure.leaks, {
        label: TW.t("layer.leaks"),
        style: { color: COLOURS.leaks, weight: 5, opacity: 0.8 },
        onEachFeature: popupBinder(
          (p) => `${TW.t("layer.leaks")} ${p.entry_road || ""}`,
          (p) => [[TW.t("p.length"), num(p.length_m, 0)]]
        ),
      });
    }
    if (got.cameras) {
      const cams = got.cameras.items;
      S.statusCounts = {};
      for (const c of cams) S.statusCounts[c.status] = (S.statusCounts[c.status] || 0) + 1;
      const camRows = (p) => [
        [TW.t("p.kind"), p.kind],
        [TW.t("p.status"), TW.t("status." + p.status)],
        [TW.t("p.reason"), p.status_reason],
        [TW.t("p.last_seen"), p.last_seen ? TW.fmtTime(p.last_seen) : null],
        [TW.t("p.view"), `${num(p.heading_deg, 0)}° / ${num(p.hfov_deg, 0)}° / ${num(p.range_m, 0)} m`],
        [TW.t("p.lifecycle"), p.lifecycle],
        [TW.t("p.area"), p.area_code],
      ];
      const camTitle = (p) => `${p.name} (${p.device_id})`;
      const dot = cams.length > 1000 ? 2 : 3; // many cameras: smaller dots, so the sectors show
      m.set("sectors", TW.map.cameraSectors(cams), {
        label: TW.t("layer.sectors"),
        style: (f) => ({
          color: TW.stateColour(f.properties.status),
          weight: 1,
          fillColor: TW.stateColour(f.properties.status),
          fillOpacity: 0.35,
          dashArray: f.properties.lifecycle && f.properties.lifecycle !== "in_use" ? "3 3" : null,
        }),
        onEachFeature: popupBinder(camTitle, camRows),
      });
      m.set("cameras", TW.map.points(cams), {
        label: TW.t("layer.cameras"),
        pointToLayer: (f, ll) =>
          L.circleMarker(ll, { radius: dot, weight: 1, color: "#222", fillColor: TW.stateColour(f.properties.status), fillOpacity: 1 }),
        onEachFeature: popupBinder(camTitle, camRows),
      });
      S.capped.cameras = S.capped.sectors = got.cameras.more;
    }
    if (got.checkpoints) {
      m.set("checkpoints", TW.map.points(got.checkpoints.items, "checkpoint_id"), {
        label: TW.t("layer.checkpoints"),
        pointToLayer: (f, ll) =>
          L.circleMarker(ll, { radius: 6, weight: 2, color: COLOURS.checkpoints, fillColor: TW.stateColour(f.properties.status), fillOpacity: 1 }),
        onEachFeature: popupBinder(
          (p) => `${p.name} (${p.checkpoint_id})`,
          (p) => [
            [TW.t("p.status"), TW.t("status." + p.status)],
            [TW.t("p.reason"), p.status_reason],
            [TW.t("p.road"), p.road],
            [TW.t("p.lanes"), p.lanes],
            [TW.t("p.cameras"), (p.camera_ids || []).join(", ")],
          ]
        ),
      });
      S.capped.checkpoints = got.checkpoints.more;
    }
    if (got.keysites) {
      m.set("keysites", TW.map.places(got.keysites.items), {
        label: TW.t("layer.keysites"),
        style: { color: COLOURS.keysites, weight: 2, fillOpacity: 0.15 },
        pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5, color: COLOURS.keysites, weight: 2, fillOpacity: 0.6 }),
        onEachFeature: popupBinder((p) => `${p.name} (${p.id})`, (p) => [[TW.t("p.category"), p.category]]),
      });
      S.capped.keysites = got.keysites.more;
    }
    m.fit(got.scope ? ["scope"] : ["areas", "roads", "cameras", "checkpoints"]);
    renderLegend();
    S.status = { errors, at: new Date().toISOString() };
    renderStatus();
    if (errors.length) TW.toast(errors[0], "error");
  }
  function renderStatus() {
    const status = TW.$("#map-status");
    if (!S.status) return;
    const errors = S.status.errors;
    status.dataset.state = errors.length ? "error" : "ready";
    status.className = errors.length ? "tw-error" : "tw-hint";
    status.textContent = errors.length
      ? TW.t("map.failed", { e: errors.join("; ") })
      : TW.t("map.ready", { t: TW.fmtTime(S.status.at) });
  }

  function swatch(colour, shape) {
    return TW.el("span", { class: "tw-swatch tw-swatch-" + (shape || "box"), style: `background:${colour}` });
  }
  function renderLegend() {
    const ul = TW.$("#map-legend");
    ul.replaceChildren();
    const m = S.map;
    const rows = [
      ["scope", COLOURS.scope, "line"],
      ["areas", COLOURS.areas, "line"],
      ["roads", COLOURS.roads, "line"],
      ["sectors", TW.stateColour("online"), "sector"],
      ["cameras", TW.stateColour("online"), "dot"],
      ["checkpoints", COLOURS.checkpoints, "dot"],
      ["keysites", COLOURS.keysites, "dot"],
      ["blind", COLOURS.blind, "line"],
      ["leaks", COLOURS.leaks, "line"],
    ];
    for (const [name, colour, shape] of rows) {
      if (!m.layer(name)) continue;
      const n = m.count(name);
      const cap = CAPS[name === "sectors" ? "cameras" : name];
      const notes = [];
      if (S.capped[name]) notes.push(TW.t("map.capped", { n: cap }));
      if (S.note[name]) notes.push(TW.t("map.scoped", { a: S.note[name] }));
      ul.append(
        TW.el(
          "li",
          { "data-testid": "count-" + name, "data-count": n, "data-capped": S.capped[name] ? "true" : "false" },
          swatch(colour, shape),
          TW.el("span", { class: "tw-legend-label" }, TW.t("layer." + name)),
          TW.el("b", {}, String(n)),
          notes.length ? TW.el("small", { class: "tw-warn" }, notes.join("; ")) : null
        )
      );
      if (name === "sectors") {
        ul.append(
          TW.el(
            "li",
            { class: "tw-legend-sub" },
            STATUSES.map((s) =>
              TW.el("span", { "data-testid": "status-" + s, "data-count": S.statusCounts[s] || 0 },
                swatch(TW.stateColour(s), "dot"), `${TW.t("status." + s)} ${S.statusCounts[s] || 0}`)
            )
          )
        );
      }
    }
    const enc = TW.$("#map-enclosure");
    enc.replaceChildren();
    const area = TW.$("#map-area").value;
    if (!staff()) enc.append(TW.el("p", { class: "tw-hint" }, TW.t("enc.role")));
    else if (!area) enc.append(TW.el("p", { class: "tw-hint" }, TW.t("enc.choose")));
    else if (S.enclosure) {
      const e = S.enclosure;
      enc.append(
        TW.el("h3", {}, TW.t("enc.title", { a: area })),
        TW.el("p", {},
          TW.el("span", { class: e.closed ? "tw-ok" : "tw-error", "data-testid": "enclosure-closed", "data-closed": String(e.closed) },
            TW.t(e.closed ? "enc.closed" : "enc.open")),
          " · ",
          TW.t("enc.figures", { e: e.entry_roads.length, g: Object.keys(e.guarded).length, u: e.unguarded.length })),
        e.unguarded.length ? TW.el("p", { class: "tw-hint" }, e.unguarded.join(", ")) : null
      );
    }
  }

  TW.ready(async () => {
    S.map = TW.map.create(TW.$("#map"));
    if (!S.map) return;
    TW.$$(".tw-staff-only").forEach((el) => (el.hidden = !staff()));
    const params = new URLSearchParams(location.search);
    if (["district", "station", "grid"].includes(params.get("level"))) TW.$("#map-level").value = params.get("level");
    let cityCode = null;
    try {
      for (const kind of ["city", "district"]) {
        const { items } = await TW.map.fetchAll("/api/v1/areas", { kind }, { max: 2000 });
        for (const a of items) {
          addAreaOption(a);
          if (kind === "city" && !cityCode) cityCode = a.code;
        }
      }
    } catch (e) {
      TW.toast(TW.describe(e), "error");
    }
    const want = params.get("area");
    if (want) {
      if (!TW.$(`#map-area option[value="${CSS.escape(want)}"]`)) addAreaOption({ code: want, name: want, kind: null });
      TW.$("#map-area").value = want;
    } else if (cityCode && !params.has("level")) {
      TW.$("#map-area").value = cityCode; // the city by default: its enclosure is the 出入城卡口 ring
    }
    TW.$("#map-controls").addEventListener("submit", (e) => {
      e.preventDefault();
      draw();
    });
    for (const id of ["#map-area", "#map-level", "#map-blind"]) TW.$(id).addEventListener("change", draw);
    document.addEventListener("tw:lang", () => {
      renderLegend();
      renderStatus();
    });
    window.TW.mapPage = S;
    draw();
  });
})();
