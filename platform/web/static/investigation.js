// The investigation page (研判): case number first, then trajectories on the map with a timeline,
// fusion (三轨联控), analyses, hotlists (布控) and the live alarm panel.
// Every API call carries the case number (case_no): the API audits each call under it.
"use strict";
(function () {
  const TW = window.TW;
  TW.labels({
    "inv.case": ["案件编号", "Case no."],
    "inv.case.label": ["案件编号（查询事由，每次查询都会记录）", "Case number (every query is recorded under it)"],
    "inv.case.placeholder": ["例如 A4403052026110009", "e.g. A4403052026110009"],
    "inv.case.submit": ["开始研判", "Start"],
    "inv.case.change": ["更换案件", "Change case"],
    "inv.case.hint": [
      "轨迹、分析、布控和告警的每次调用都带上该案件编号，写入审计日志。",
      "Every trajectory, analysis, hotlist and alarm call carries this case number into the audit log.",
    ],
    "inv.case.bad": ["案件编号为 1–64 个可打印字符", "A case number is 1–64 printable characters"],
    "inv.kind": ["对象", "Subject"],
    "inv.kind.vehicle": ["车牌", "Plate"],
    "inv.kind.person": ["人员", "Person"],
    "inv.kind.phone": ["手机 (IMSI)", "Phone (IMSI)"],
    "inv.subject": ["号码", "Number / id"],
    "inv.subject.placeholder": ["粤B12345", "粤B12345"],
    "inv.from": ["开始", "From"],
    "inv.to": ["结束", "To"],
    "inv.limit": ["每页点数", "Points per page"],
    "inv.search": ["查询轨迹", "Search"],
    "inv.more": ["加载更多", "Load more"],
    "inv.timeline": ["时间线", "Timeline"],
    "inv.col.time": ["时间", "Time"],
    "inv.col.sensor": ["点位", "Sensor"],
    "inv.col.detail": ["详情", "Details"],
    "inv.col.trip": ["行程", "Trip"],
    "inv.summary": ["{subject}：{n} 个点，{trips} 段行程", "{subject}: {n} points, {trips} trips"],
    "inv.summary.nopos": ["（{n} 个点位已无坐标，未画出）", " ({n} without a position, not drawn)"],
    "inv.summary.more": ["，还有更多", ", more to load"],
    "inv.nothing": ["该时间段内没有记录", "No records in this window"],
    "inv.bad.window": ["开始时间须早于结束时间", "From must be before To"],
    "inv.lane": ["车道", "lane"],
    "inv.speed": ["车速", "speed"],
    "inv.confidence": ["置信度", "confidence"],
    "inv.trips": ["行程", "trips"],
    "inv.points": ["轨迹点", "points"],
    "inv.alarms": ["实时告警", "Live alarms"],
    "inv.alarms.empty": ["暂无告警", "No alarms yet"],
    "inv.alarms.live": ["实时", "live"],
    "inv.alarms.connecting": ["连接中", "connecting"],
    "inv.alarms.reconnecting": ["重连中", "reconnecting"],
    "inv.alarms.error": ["已断开", "stopped"],
    "inv.alarms.older": ["（更早的告警未全部列出）", "(older alarms not all listed)"],
    "inv.alarm.hotlist": ["布控", "hotlist"],
    "inv.alarm.listed": ["布控号码", "listed as"],
    "inv.alarm.retro": ["历史", "past"],
    "inv.alarm.retro.title": ["发起布控时回溯匹配到的过车", "a past pass matched when the hotlist was created"],
    "inv.alarm.confirmed": ["确认", "Confirm"],
    "inv.alarm.false_positive": ["误报", "False positive"],
    "inv.alarm.note": ["签收备注", "Note"],
    "inv.alarm.ack.confirmed": ["已确认", "confirmed"],
    "inv.alarm.ack.false_positive": ["已判误报", "false positive"],
    "inv.alarm.acked": ["告警已签收：#{id}", "Alarm #{id} acknowledged"],
    "inv.fusion": ["三轨联控", "Fusion"],
    "inv.fusion.hint": [
      "按上方的对象和时间段，找出与之同行的车、人、手机。",
      "Finds the vehicles, people and phones that travel with the subject above, in its window.",
    ],
    "inv.fusion.run": ["融合分析", "Run fusion"],
    "inv.fusion.subject": ["分析对象", "Subject"],
    "inv.fusion.none": ["没有找到关联对象", "No associations found"],
    "inv.fusion.evidence": ["证据 ({n})", "Evidence ({n})"],
    "inv.fusion.timeline": ["案件时间线 ({n})", "Case timeline ({n})"],
    "inv.fusion.draw": ["在地图上显示", "Show on map"],
    "inv.fusion.score": ["关联度", "score"],
    "inv.fusion.co": ["同现次数", "co-occurrences"],
    "inv.fusion.sites": ["地点", "sites"],
    "inv.fusion.days": ["天数", "days"],
    "inv.fusion.unavailable": ["融合分析接口暂不可用", "The fusion service is not available"],
    "inv.fusion.nokind": ["无法画出该类对象的轨迹：{kind}", "Cannot draw a trajectory for kind {kind}"],
    "inv.need.subject": ["请先填写对象号码", "Enter a subject first"],
    "inv.analysis": ["研判分析", "Analyses"],
    "inv.an.kind": ["分析", "Analysis"],
    "inv.an.cloned": ["套牌车", "Cloned plates"],
    "inv.an.companions": ["同行车", "Companions"],
    "inv.an.collision": ["区域碰撞", "Area collision"],
    "inv.an.stay": ["落脚点", "Stay points"],
    "inv.an.entry": ["首次入城", "First entry"],
    "inv.an.night": ["昼伏夜出", "Night-active"],
    "inv.an.lookback": ["回溯天数", "Look-back (days)"],
    "inv.an.nights": ["最少夜数", "Nights at least"],
    "inv.an.subject": ["号码", "Number / id"],
    "inv.an.speed": ["最高合理车速 km/h", "Max plausible speed km/h"],
    "inv.an.window": ["同行时间窗 (秒)", "Window (s)"],
    "inv.an.sites": ["最少同行点位", "Min. shared sites"],
    "inv.an.ckind": ["碰撞对象", "Collide on"],
    "inv.an.run": ["分析", "Run"],
    "inv.an.windows.hint": [
      "每个时空窗：卡口编号列表（逗号或空格分隔），或在地图上点两下画一个矩形；结果是在每个窗里都出现过的对象。",
      "Each window: a list of checkpoint ids (comma or space separated), or a rectangle drawn with two clicks on the map; the answer is what was seen in every window.",
    ],
    "inv.an.window.add": ["添加时空窗", "Add a window"],
    "inv.an.window.n": ["时空窗 {n}", "Window {n}"],
    "inv.an.window.ids": ["卡口编号", "Checkpoint ids"],
    "inv.an.window.rect": ["画矩形", "Draw rectangle"],
    "inv.an.window.rect.set": ["已画矩形", "Rectangle drawn"],
    "inv.an.window.click1": ["在地图上点击矩形的第一个角", "Click the rectangle's first corner on the map"],
    "inv.an.window.click2": ["再点击对角", "Now click the opposite corner"],
    "inv.an.window.remove": ["删除", "Remove"],
    "inv.an.window.empty": ["时空窗 {n}：需要卡口编号或矩形，以及开始和结束时间", "Window {n}: needs checkpoint ids or a rectangle, and From and To"],
    "inv.an.windows.two": ["碰撞至少需要两个时空窗", "A collision needs at least two windows"],
    "inv.an.count": ["{n} 条结果", "{n} results"],
    "inv.unavailable": ["该分析接口暂不可用", "This analysis is not available"],
    "inv.hotlists": ["布控", "Hotlists"],
    "hl.name": ["名称", "Name"],
    "hl.reason": ["事由", "Reason"],
    "hl.from": ["生效", "Valid from"],
    "hl.to": ["截止", "Valid to"],
    "hl.priority": ["优先级 (0 最高 … 100)", "Priority (0 highest … 100)"],
    "hl.priority.short": ["优先级", "Priority"],
    "hl.fuzzy": ["车牌模糊匹配 (O/0, I/1, B/8)", "Fuzzy plates (O/0, I/1, B/8)"],
    "hl.entries": [
      "布控对象，每行一个：类型 号码 [备注]（类型 plate / imsi / person；只写号码时：纯数字按 IMSI，否则按车牌）",
      "Entries, one a line: kind number [note] (kind plate / imsi / person; a bare number: digits are an IMSI, else a plate)",
    ],
    "hl.entries.short": ["对象", "Entries"],
    "hl.checkpoints": ["限定卡口（编号，逗号或空格分隔）", "Only at checkpoints (ids, comma or space separated)"],
    "hl.areas": ["限定区域（行政区划代码或其前缀）", "Only in areas (division codes or their prefixes)"],
    "hl.hours": ["布控时段（北京时间，可跨零点）", "Active hours (+08:00, may wrap midnight)"],
    "hl.directions": ["行驶方向（代码 1–8）", "Directions of travel (codes 1–8)"],
    "hl.retro": ["回溯天数（0–92，留空用默认）", "Match past days (0–92, empty: the default)"],
    "hl.retro.found": ["回溯匹配到 {n} 条历史告警", "{n} past alarms found"],
    "hl.scope.checkpoints": ["卡口", "checkpoints"],
    "hl.scope.areas": ["区域", "areas"],
    "hl.scope.hours": ["时段", "hours"],
    "hl.scope.directions": ["方向", "directions"],
    "hl.withdraw.reason": ["撤控原因", "Reason to withdraw"],
    "hl.create": ["发起布控", "Create hotlist"],
    "hl.created": ["布控已发起：#{id}", "Hotlist #{id} created"],
    "hl.only_case": ["只看本案", "This case only"],
    "hl.only_active": ["只看在控", "Active only"],
    "hl.refresh": ["刷新", "Refresh"],
    "hl.validity": ["有效期", "Validity"],
    "hl.state": ["状态", "State"],
    "hl.active": ["在控", "active"],
    "hl.revoked": ["已撤控", "withdrawn"],
    "hl.expired": ["已过期", "expired"],
    "hl.pending": ["未生效", "not yet"],
    "hl.withdraw": ["撤控", "Withdraw"],
    "hl.withdraw.confirm": ["确认撤控？", "Confirm withdraw?"],
    "hl.withdrawn": ["已撤控：#{id}", "Hotlist #{id} withdrawn"],
    "hl.total": ["共 {n} 个", "{n} in all"],
    "hl.none": ["没有布控", "No hotlists"],
    "hl.line": ["第 {n} 行", "line {n}"],
    "hl.line.novalue": ["缺少号码", "no number"],
    "hl.line.none": ["至少需要一个布控对象", "At least one entry is needed"],
  });

  const TRIP_COLOUR = "#0b5cad";
  const PALETTE = ["#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1b9e77"];
  const ANALYSIS_COLOUR = "#b2182b";
  const TRAJ_KIND = {
    vehicle: "vehicle",
    plate: "vehicle",
    plate_no: "vehicle",
    person: "person",
    person_id: "person",
    face: "person",
    phone: "phone",
    imsi: "phone",
  };
  const SUBJECT_PARAM = { vehicle: "plate_no", person: "person_id", phone: "imsi" };
  const SENSOR = { vehicle: "checkpoint_id", person: "camera_id", phone: "fence_id" };
  const CASE_KEY = "tw.case_no";

  // page state: the case, the map, the trajectory drawn, the last answers (re-rendered on a language switch)
  const S = {
    caseNo: "",
    map: null,
    traj: null, // {kind, subject, params, points, features, trips, nextCursor}
    selected: -1,
    markers: null, // point index → its Leaflet marker
    fusion: null,
    assocDrawn: {},
    analysis: null,
    windows: [],
    drawing: null,
    hotlists: { items: [], next: null },
    alarms: { byId: new Map(), last: 0, ctrl: null, retryMs: 2000, fails: 0, timer: null, older: false },
  };
  TW.inv = S; // for the browser tests and for debugging in the console

  const $ = (id) => document.getElementById(id);
  const kindLabel = (k) => (TRAJ_KIND[k] ? TW.t("inv.kind." + TRAJ_KIND[k]) : String(k));

  // ---- calls with the case number
  const withCase = (path, params) => path + TW.qs(Object.assign({}, params || {}, { case_no: S.caseNo }));
  const get = (path, params, opts) => TW.api(withCase(path, params), opts);

  // ---- rendering of values whose exact shape the contract leaves open (evidence, timeline, analyses)
  const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;
  function fmtValue(v, depth) {
    depth = depth || 0;
    if (v === null || v === undefined) return "—";
    if (typeof v === "string") return ISO.test(v) ? TW.fmtTime(v) : v;
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 1e5) / 1e5);
    if (typeof v === "boolean") return v ? "✓" : "✗";
    if (Array.isArray(v)) {
      const head = v.slice(0, 8).map((x) => fmtValue(x, depth + 1));
      return head.join(", ") + (v.length > 8 ? ` … (+${v.length - 8})` : "");
    }
    if (typeof v === "object") {
      if (depth > 2) return "{…}";
      const keys = Object.keys(v).sort((a, b) => (a === "ts" ? -1 : b === "ts" ? 1 : 0));
      return keys.map((k) => k + ": " + fmtValue(v[k], depth + 1)).join("; ");
    }
    return String(v);
  }
  const sensorOf = (x) => x.checkpoint_id || x.camera_id || x.fence_id || x.sensor_id || "";
  // a sighting {kind, id, ts, <sensor>, lon, lat}: "time · kind id @ sensor"
  const isSighting = (x) => x && typeof x === "object" && x.ts && x.kind && x.id !== undefined;
  const fmtSighting = (x) => `${TW.fmtTime(x.ts)} · ${kindLabel(x.kind)} ${x.id} @ ${sensorOf(x)}`;
  // a fusion evidence item: {subject: sighting, other: sighting, distance_m, dt_s, weight}
  function fmtEvidence(ev) {
    if (ev && isSighting(ev.subject) && isSighting(ev.other)) {
      const extra = [
        ev.distance_m != null ? fmtValue(ev.distance_m) + " m" : null,
        ev.dt_s != null ? "Δt " + fmtValue(ev.dt_s) + " s" : null,
        ev.weight != null ? "w " + fmtValue(ev.weight) : null,
      ].filter(Boolean);
      return `${fmtSighting(ev.subject)} ↔ ${fmtSighting(ev.other)}` + (extra.length ? " · " + extra.join(" · ") : "");
    }
    return isSighting(ev) ? fmtSighting(ev) : fmtValue(ev);
  }
  // a position carried by an item, if any: {lon, lat} itself, or its a/b/site/place
  function positionOf(x) {
    if (!x || typeof x !== "object") return null;
    if (typeof x.lon === "number" && typeof x.lat === "number") return [x.lon, x.lat];
    for (const k of ["place", "site", "location", "centre", "center", "a", "subject", "other"]) {
      const p = positionOf(x[k]);
      if (p) return p;
    }
    return null;
  }

  // ---- the case number gate
  function checkCase(raw) {
    const c = (raw || "").trim();
    // eslint-disable-next-line no-control-regex
    if (!c || c.length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(c)) return null;
    return c;
  }
  function showGate(msg) {
    $("inv-case-gate").hidden = false;
    $("inv-work").hidden = true;
    $("inv-case-badge").hidden = true;
    $("inv-case-no").value = sessionStorage.getItem(CASE_KEY) || "";
    $("inv-case-error").textContent = msg || "";
    $("inv-case-no").focus();
  }
  async function enterCase(ev) {
    ev.preventDefault();
    const c = checkCase($("inv-case-no").value);
    if (!c) {
      $("inv-case-error").textContent = TW.t("inv.case.bad");
      return;
    }
    S.caseNo = c;
    $("inv-case-submit").disabled = true;
    try {
      // the first call of the case: the server checks the number too (422 naming case_no)
      await loadHotlists(false);
    } catch (e) {
      S.caseNo = "";
      $("inv-case-error").textContent = TW.describe(e);
      return;
    } finally {
      $("inv-case-submit").disabled = false;
    }
    sessionStorage.setItem(CASE_KEY, c);
    $("inv-case-error").textContent = "";
    $("inv-case-shown").textContent = c;
    $("inv-case-badge").hidden = false;
    $("inv-case-gate").hidden = true;
    $("inv-work").hidden = false;
    if (!S.map) initMap();
    startAlarms();
  }

  // ---- the map
  function initMap() {
    S.map = TW.map.create($("inv-map"));
    if (!S.map) return;
    S.map.onClick((lon, lat) => drawClick(lon, lat));
  }
  // fit the view to the layers named (all when null); one point alone is shown at street zoom (the
  // map has no tile layer, hence no max zoom: fitting a zero-size box would zoom without end)
  function fitTo(names) {
    if (!S.map) return;
    let b = null;
    for (const name of names || (S.map.names ? S.map.names() : [])) {
      const l = S.map.layer(name);
      if (!l || !l.getBounds) continue;
      const lb = l.getBounds();
      if (lb.isValid()) b = b ? b.extend(lb) : L.latLngBounds(lb.getSouthWest(), lb.getNorthEast());
    }
    if (!b) return;
    if (b.getSouthWest().equals(b.getNorthEast())) S.map.leaflet.setView(b.getCenter(), 16);
    else S.map.leaflet.fitBounds(b, { padding: [20, 20], maxZoom: 17 });
  }
  // divIcon's html is HTML: n is a point's number, never data
  function numberedIcon(n, cls) {
    return L.divIcon({ className: "inv-marker " + (cls || ""), html: String(n), iconSize: [24, 24], iconAnchor: [12, 12] });
  }
  function pointsGeoJSON(points) {
    return {
      type: "FeatureCollection",
      features: points
        .map((p, i) => (typeof p.lon === "number" && typeof p.lat === "number" ? { p, i } : null))
        .filter(Boolean)
        .map(({ p, i }) => ({
          type: "Feature",
          geometry: { type: "Point", coordinates: [p.lon, p.lat] },
          properties: { i },
        })),
    };
  }

  // ---- trajectory search
  function searchParams() {
    const kind = $("inv-kind").value;
    const subject = $("inv-subject").value.trim();
    const from = TW.toIso($("inv-from").value);
    const to = TW.toIso($("inv-to").value);
    return { kind, subject, from, to };
  }
  async function search(ev) {
    ev.preventDefault();
    const q = searchParams();
    $("inv-search-error").textContent = "";
    if (!q.subject) return ($("inv-search-error").textContent = TW.t("inv.need.subject"));
    if (q.from && q.to && q.from >= q.to) return ($("inv-search-error").textContent = TW.t("inv.bad.window"));
    const limit = Math.max(1, Math.min(1000, parseInt($("inv-limit").value, 10) || 500));
    S.traj = { kind: q.kind, subject: q.subject, params: { from: q.from, to: q.to, limit }, points: [], features: [], trips: [], nextCursor: null };
    S.selected = -1;
    if (!$("inv-an-subject").value) {
      $("inv-an-subject").value = q.subject;
      $("inv-an-skind").value = q.kind;
    }
    $("inv-search").disabled = true;
    try {
      await loadPage(null);
    } finally {
      $("inv-search").disabled = false;
    }
  }
  async function loadPage(cursor) {
    const t = S.traj;
    if (!t) return;
    $("inv-more").disabled = true;
    let ans;
    try {
      ans = await get(`/api/v1/trajectories/${t.kind}/${encodeURIComponent(t.subject)}`, Object.assign({ cursor }, t.params));
    } catch (e) {
      $("inv-search-error").textContent = TW.describe(e);
      $("inv-more").disabled = false;
      return;
    }
    const offset = t.points.length;
    const tripOffset = t.trips.length;
    t.subject = ans.subject || t.subject;
    t.points = t.points.concat(ans.points || []);
    t.trips = t.trips.concat(
      (ans.trips || []).map((tr) => Object.assign({}, tr, { first_index: tr.first_index + offset, last_index: tr.last_index + offset }))
    );
    for (const f of (ans.geojson && ans.geojson.features) || []) {
      if (f.geometry) t.features.push(Object.assign({}, f, { properties: Object.assign({}, f.properties, { trip: (f.properties.trip || 0) + tripOffset }) }));
    }
    t.nextCursor = ans.next_cursor || null;
    drawTrajectory(offset === 0);
    renderTimeline();
    $("inv-more").disabled = false;
  }
  function drawTrajectory(fit) {
    const t = S.traj;
    if (!S.map || !t) return;
    S.map.set("trips", { type: "FeatureCollection", features: t.features }, {
      label: TW.t("inv.trips"),
      style: () => ({ color: TRIP_COLOUR, weight: 4, opacity: 0.8 }),
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 10, color: TRIP_COLOUR, fill: false }),
    });
    S.markers = new Map();
    S.map.set("points", pointsGeoJSON(t.points), {
      label: TW.t("inv.points"),
      pointToLayer: (f, ll) => {
        const i = f.properties.i;
        const m = L.marker(ll, { icon: numberedIcon(i + 1, i === S.selected ? "sel" : ""), title: TW.fmtTime(t.points[i].ts) });
        m.on("click", () => selectPoint(i, true));
        S.markers.set(i, m);
        return m;
      },
    });
    if (fit) fitTo(["trips", "points"]);
  }
  function pointDetail(kind, p) {
    if (kind === "vehicle") {
      return [p.lane != null ? TW.t("inv.lane") + " " + p.lane : null, p.speed_kmh != null ? TW.t("inv.speed") + " " + p.speed_kmh + " km/h" : null]
        .filter(Boolean)
        .join(" · ");
    }
    if (kind === "person") return p.confidence != null ? TW.t("inv.confidence") + " " + fmtValue(p.confidence) : "";
    return [p.rssi != null ? "RSSI " + p.rssi : null, p.imei ? "IMEI " + p.imei : null].filter(Boolean).join(" · ");
  }
  function tripOf(i) {
    const t = S.traj;
    for (let n = 0; n < t.trips.length; n++) if (i >= t.trips[n].first_index && i <= t.trips[n].last_index) return n + 1;
    return "";
  }
  function renderTimeline() {
    const t = S.traj;
    const body = TW.$("#inv-timeline tbody");
    body.replaceChildren();
    if (!t) return;
    const sensor = SENSOR[t.kind];
    t.points.forEach((p, i) => {
      body.append(
        TW.el(
          "tr",
          {
            "data-testid": "timeline-row",
            "data-index": i,
            class: (i === S.selected ? "sel " : "") + (p.lon == null ? "inv-nopos" : ""),
            onclick: () => selectPoint(i, false),
          },
          TW.el("td", {}, i + 1),
          TW.el("td", {}, TW.fmtTime(p.ts)),
          TW.el("td", {}, p[sensor] || "—"),
          TW.el("td", {}, pointDetail(t.kind, p)),
          TW.el("td", {}, tripOf(i))
        )
      );
    });
    const nopos = t.points.filter((p) => p.lon == null || p.lat == null).length;
    let s = t.points.length ? TW.t("inv.summary", { subject: t.subject, n: t.points.length, trips: t.trips.length }) : TW.t("inv.nothing");
    if (nopos) s += TW.t("inv.summary.nopos", { n: nopos });
    if (t.nextCursor) s += TW.t("inv.summary.more");
    $("inv-summary").textContent = s;
    $("inv-more").hidden = !t.nextCursor;
  }
  function selectPoint(i, fromMap) {
    const t = S.traj;
    if (!t || !t.points[i]) return;
    const before = S.selected;
    S.selected = i;
    // only the rows and markers that change: a trajectory may hold thousands of points
    for (const [n, on] of [[before, false], [i, true]]) {
      const row = TW.$(`#inv-timeline tbody tr[data-index="${n}"]`);
      if (row) row.classList.toggle("sel", on);
      const m = S.markers && S.markers.get(n);
      if (m) {
        m.setIcon(numberedIcon(n + 1, on ? "sel" : ""));
        m.setZIndexOffset(on ? 1000 : 0);
      }
    }
    const row = TW.$(`#inv-timeline tbody tr[data-index="${i}"]`);
    if (fromMap && row) row.scrollIntoView({ block: "nearest" });
    const p = t.points[i];
    if (S.map && p.lon != null && p.lat != null && !fromMap) {
      S.map.leaflet.setView([p.lat, p.lon], Math.max(S.map.leaflet.getZoom(), 15));
    }
  }

  // ---- fusion (三轨联控)
  async function runFusion() {
    const q = searchParams();
    $("inv-fusion-error").textContent = "";
    if (!q.subject) return ($("inv-fusion-error").textContent = TW.t("inv.need.subject"));
    const params = { from: q.from, to: q.to };
    params[SUBJECT_PARAM[q.kind]] = q.subject;
    $("inv-fusion-run").disabled = true;
    $("inv-fusion-result").replaceChildren(TW.el("p", { class: "tw-hint" }, TW.t("loading")));
    try {
      S.fusion = { ans: await get("/api/v1/trajectories/fusion", params), window: params };
      for (const name of Object.keys(S.assocDrawn)) S.map && S.map.clear(name);
      S.assocDrawn = {};
      renderFusion();
    } catch (e) {
      S.fusion = null;
      $("inv-fusion-result").replaceChildren();
      $("inv-fusion-error").textContent = (e.status === 404 ? TW.t("inv.fusion.unavailable") + " — " : "") + TW.describe(e);
    } finally {
      $("inv-fusion-run").disabled = false;
    }
  }
  function evidenceList(items) {
    return TW.el(
      "ul",
      { class: "inv-evidence" },
      items.map((ev) => {
        const pos = positionOf(ev);
        return TW.el(
          "li",
          { "data-testid": "fusion-evidence", class: pos ? "inv-link" : "", onclick: pos ? () => S.map && S.map.leaflet.setView([pos[1], pos[0]], 16) : null },
          fmtEvidence(ev)
        );
      })
    );
  }
  function renderFusion() {
    const box = $("inv-fusion-result");
    box.replaceChildren();
    if (!S.fusion) return;
    const ans = S.fusion.ans || {};
    const subj = ans.subject && typeof ans.subject === "object" && ans.subject.id !== undefined
      ? `${kindLabel(ans.subject.kind)} ${ans.subject.id}` + (ans.subject.sightings != null ? ` (${ans.subject.sightings})` : "")
      : fmtValue(ans.subject);
    box.append(TW.el("p", {}, TW.t("inv.fusion.subject") + "：", TW.el("b", {}, subj)));
    const assoc = (Array.isArray(ans.associations) ? ans.associations : []).slice().sort((a, b) => (b.score || 0) - (a.score || 0));
    if (!assoc.length) box.append(TW.el("p", { class: "tw-hint", id: "inv-fusion-none" }, TW.t("inv.fusion.none")));
    const ol = TW.el("ol", { class: "inv-assoc", id: "inv-fusion-list" });
    assoc.forEach((a, n) => {
      const name = `assoc:${a.kind}:${a.id}`;
      const drawn = S.assocDrawn[name];
      const swatch = TW.el("span", { class: "inv-swatch", "data-testid": "fusion-swatch" });
      if (drawn) swatch.style.background = drawn;
      const ev = Array.isArray(a.evidence) ? a.evidence : [];
      ol.append(
        TW.el(
          "li",
          { "data-testid": "fusion-assoc", "data-kind": a.kind, "data-id": a.id, "data-rank": n + 1 },
          TW.el(
            "div",
            { class: "inv-assoc-head" },
            swatch,
            TW.el("span", { class: "tw-badge" }, kindLabel(a.kind)),
            TW.el("b", {}, a.id),
            TW.el("span", { class: "inv-score" }, TW.t("inv.fusion.score") + " " + fmtValue(a.score)),
            TW.el("span", {}, TW.t("inv.fusion.co") + " " + fmtValue(a.co_occurrences)),
            a.sites != null ? TW.el("span", {}, TW.t("inv.fusion.sites") + " " + fmtValue(a.sites)) : null,
            a.days != null ? TW.el("span", {}, TW.t("inv.fusion.days") + " " + fmtValue(a.days)) : null,
            TW.el("button", { type: "button", class: "secondary", "data-testid": "fusion-draw", onclick: () => drawAssociation(a, name) }, TW.t("inv.fusion.draw"))
          ),
          TW.el("details", {}, TW.el("summary", {}, TW.t("inv.fusion.evidence", { n: ev.length })), evidenceList(ev))
        )
      );
    });
    box.append(ol);
    const tl = Array.isArray(ans.timeline) ? ans.timeline : ans.timeline ? [ans.timeline] : [];
    if (tl.length) {
      box.append(
        TW.el(
          "details",
          { id: "inv-fusion-timeline" },
          TW.el("summary", {}, TW.t("inv.fusion.timeline", { n: tl.length })),
          evidenceList(tl)
        )
      );
    }
  }
  async function drawAssociation(a, name) {
    const kind = TRAJ_KIND[a.kind];
    $("inv-fusion-error").textContent = "";
    if (!kind) return ($("inv-fusion-error").textContent = TW.t("inv.fusion.nokind", { kind: a.kind }));
    const w = S.fusion.window;
    let ans;
    try {
      ans = await get(`/api/v1/trajectories/${kind}/${encodeURIComponent(a.id)}`, { from: w.from, to: w.to, limit: 1000 });
    } catch (e) {
      $("inv-fusion-error").textContent = TW.describe(e);
      return;
    }
    const colour = S.assocDrawn[name] || PALETTE[Object.keys(S.assocDrawn).length % PALETTE.length];
    S.assocDrawn[name] = colour;
    if (S.map) {
      const fc = { type: "FeatureCollection", features: ((ans.geojson && ans.geojson.features) || []).filter((f) => f.geometry) };
      for (const p of pointsGeoJSON(ans.points || []).features) fc.features.push(p);
      S.map.set(name, fc, {
        label: a.kind + " " + a.id,
        style: () => ({ color: colour, weight: 3, opacity: 0.9, dashArray: "6 4" }),
        pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5, color: colour, fillColor: colour, fillOpacity: 0.8 }),
      });
      fitTo(null);
    }
    // the legend swatch only: a re-render would fold the evidence lists the user opened
    const li = TW.$$("#inv-fusion-list [data-testid=fusion-assoc]").find((x) => x.dataset.kind === String(a.kind) && x.dataset.id === String(a.id));
    const sw = li && TW.$("[data-testid=fusion-swatch]", li);
    if (sw) sw.style.background = colour;
  }

  // ---- analyses
  function showAnalysisFields() {
    const k = $("inv-an-kind").value;
    TW.$$("#inv-analysis-panel [data-an]").forEach((el) => (el.hidden = !el.dataset.an.split(" ").includes(k)));
    if (k === "collision" && !S.windows.length) {
      addWindow();
      addWindow();
    }
  }
  function addWindow() {
    const w = { n: S.windows.length ? Math.max(...S.windows.map((x) => x.n)) + 1 : 1, area: null };
    w.ids = TW.el("input", { "data-testid": "window-ids", maxlength: 4000, autocomplete: "off" });
    w.from = TW.el("input", { type: "datetime-local", "data-testid": "window-from" });
    w.to = TW.el("input", { type: "datetime-local", "data-testid": "window-to" });
    w.from.value = $("inv-an-from").value;
    w.to.value = $("inv-an-to").value;
    w.rect = TW.el("button", { type: "button", class: "secondary", "data-testid": "window-rect", onclick: () => startDraw(w) }, TW.t("inv.an.window.rect"));
    w.li = TW.el(
      "li",
      { "data-testid": "window" },
      TW.el("b", {}, TW.t("inv.an.window.n", { n: w.n })),
      TW.el("label", {}, TW.t("inv.an.window.ids"), w.ids),
      w.rect,
      TW.el("label", {}, TW.t("inv.from"), w.from),
      TW.el("label", {}, TW.t("inv.to"), w.to),
      TW.el("button", { type: "button", class: "secondary", onclick: () => removeWindow(w) }, TW.t("inv.an.window.remove"))
    );
    S.windows.push(w);
    $("inv-windows").append(w.li);
  }
  function removeWindow(w) {
    S.windows = S.windows.filter((x) => x !== w);
    w.li.remove();
    if (S.map) S.map.clear("window-" + w.n);
    if (S.drawing && S.drawing.w === w) S.drawing = null;
  }
  function startDraw(w) {
    S.drawing = { w, first: null };
    $("inv-an-summary").textContent = TW.t("inv.an.window.click1");
    TW.toast(TW.t("inv.an.window.click1"));
    $("inv-map").scrollIntoView({ block: "center" });
  }
  function drawClick(lon, lat) {
    const d = S.drawing;
    if (!d) return;
    if (!d.first) {
      d.first = [lon, lat];
      $("inv-an-summary").textContent = TW.t("inv.an.window.click2");
      TW.toast(TW.t("inv.an.window.click2"));
      return;
    }
    const [x1, y1] = d.first;
    const [a, b, c, e] = [Math.min(x1, lon), Math.min(y1, lat), Math.max(x1, lon), Math.max(y1, lat)];
    d.w.area = { type: "Polygon", coordinates: [[[a, b], [c, b], [c, e], [a, e], [a, b]]] };
    d.w.rect.textContent = TW.t("inv.an.window.rect.set");
    d.w.rect.classList.add("inv-set");
    if (S.map) {
      S.map.set("window-" + d.w.n, d.w.area, { label: TW.t("inv.an.window.n", { n: d.w.n }), style: () => ({ color: "#6a3d9a", weight: 2, fillOpacity: 0.08 }) });
    }
    S.drawing = null;
    $("inv-an-summary").textContent = "";
  }
  function collisionBody() {
    if (S.windows.length < 2) throw new Error(TW.t("inv.an.windows.two"));
    const windows = S.windows.map((w, i) => {
      const ids = w.ids.value.split(/[\s,，;；]+/).filter(Boolean);
      const from = TW.toIso(w.from.value);
      const to = TW.toIso(w.to.value);
      if ((!ids.length && !w.area) || !from || !to) throw new Error(TW.t("inv.an.window.empty", { n: i + 1 }));
      return ids.length ? { checkpoint_ids: ids, from, to } : { area: w.area, from, to };
    });
    return { kind: $("inv-an-ckind").value, windows };
  }
  async function runAnalysis(ev) {
    ev.preventDefault();
    const k = $("inv-an-kind").value;
    const from = TW.toIso($("inv-an-from").value);
    const to = TW.toIso($("inv-an-to").value);
    const subject = $("inv-an-subject").value.trim();
    $("inv-an-error").textContent = "";
    $("inv-an-summary").textContent = "";
    let call;
    try {
      if (k === "cloned") {
        call = () => get("/api/v1/analysis/cloned-plates", { from, to, max_speed_kmh: $("inv-an-speed").value });
      } else if (k === "companions") {
        if (!subject) throw new Error(TW.t("inv.need.subject"));
        call = () => get("/api/v1/analysis/companions", { plate_no: subject, from, to, window_s: $("inv-an-window").value, min_sites: $("inv-an-sites").value });
      } else if (k === "stay") {
        if (!subject) throw new Error(TW.t("inv.need.subject"));
        const p = { [SUBJECT_PARAM[$("inv-an-skind").value]]: subject, from, to };
        call = () => get("/api/v1/analysis/stay-points", p);
      } else if (k === "entry") {
        call = () => get("/api/v1/analysis/first-entry", { from, to, lookback_days: $("inv-an-lookback").value });
      } else if (k === "night") {
        const p = { from, to, min_nights: $("inv-an-nights").value, kind: $("inv-an-ckind").value };
        call = () => get("/api/v1/analysis/night-active", p);
      } else {
        const body = collisionBody();
        call = () => get("/api/v1/analysis/collision", {}, { method: "POST", json: body });
      }
    } catch (e) {
      $("inv-an-error").textContent = e.message;
      return;
    }
    $("inv-an-run").disabled = true;
    try {
      S.analysis = { kind: k, ans: await call() };
      renderAnalysis();
    } catch (e) {
      S.analysis = null;
      $("inv-an-result").replaceChildren();
      if (S.map) S.map.clear("analysis");
      $("inv-an-error").textContent = (e.status === 404 ? TW.t("inv.unavailable") + " — " : "") + TW.describe(e);
    } finally {
      $("inv-an-run").disabled = false;
    }
  }
  // answers are a list, or {params, items}, or an object holding one list (e.g. {ids: [...]})
  function itemsOf(ans) {
    if (Array.isArray(ans)) return { items: ans, params: null };
    if (ans && typeof ans === "object") {
      if (Array.isArray(ans.items)) return { items: ans.items, params: ans.params || null };
      for (const [k, v] of Object.entries(ans)) if (Array.isArray(v)) return { items: v, params: ans.params || null, key: k };
      return { items: [ans], params: null };
    }
    return { items: ans == null ? [] : [ans], params: null };
  }
  function renderAnalysis() {
    const table = $("inv-an-result");
    table.replaceChildren();
    if (!S.analysis) return;
    const { items } = itemsOf(S.analysis.ans);
    const objects = items.length && items.every((x) => x && typeof x === "object" && !Array.isArray(x));
    const cols = [];
    if (objects) for (const it of items.slice(0, 50)) for (const c of Object.keys(it)) if (!cols.includes(c)) cols.push(c);
    table.append(TW.el("thead", {}, TW.el("tr", {}, TW.el("th", {}, "#"), (objects ? cols : ["value"]).map((c) => TW.el("th", {}, c)))));
    const body = TW.el("tbody");
    const features = [];
    items.forEach((it, i) => {
      const pos = positionOf(it);
      const line = it && positionOf(it.a) && positionOf(it.b) ? [positionOf(it.a), positionOf(it.b)] : null;
      if (line) features.push({ type: "Feature", geometry: { type: "LineString", coordinates: line }, properties: { i } });
      else if (pos) features.push({ type: "Feature", geometry: { type: "Point", coordinates: pos }, properties: { i } });
      body.append(
        TW.el(
          "tr",
          {
            "data-testid": "analysis-row",
            class: pos ? "inv-link" : "",
            onclick: pos ? () => S.map && S.map.leaflet.setView([pos[1], pos[0]], Math.max(S.map.leaflet.getZoom(), 14)) : null,
          },
          TW.el("td", {}, i + 1),
          objects ? cols.map((c) => TW.el("td", {}, fmtValue(it[c]))) : TW.el("td", {}, fmtValue(it))
        )
      );
    });
    table.append(body);
    $("inv-an-summary").textContent = TW.t("inv.an.count", { n: items.length });
    if (S.map) {
      if (features.length) {
        S.map.set("analysis", { type: "FeatureCollection", features }, {
          label: TW.t("inv.analysis"),
          style: () => ({ color: ANALYSIS_COLOUR, weight: 3 }),
          pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 7, color: ANALYSIS_COLOUR, fillOpacity: 0.5 }),
        });
        fitTo(["analysis"]);
      } else S.map.clear("analysis");
    }
  }

  // ---- hotlists (布控)
  const ENTRY_KIND = {
    plate: "plate_no",
    plate_no: "plate_no",
    vehicle: "plate_no",
    车牌: "plate_no",
    imsi: "imsi",
    phone: "imsi",
    手机: "imsi",
    person: "person_id",
    person_id: "person_id",
    face: "person_id",
    人员: "person_id",
  };
  // "kind value [note]" | "kind:value [note]" | "value [note]" (digits → imsi, else a plate)
  function parseEntries(text) {
    const entries = [];
    const lines = [];
    const errors = [];
    text.split(/\r?\n/).forEach((raw, n) => {
      const line = raw.trim();
      if (!line || line.startsWith("#")) return;
      const parts = line.split(/\s+/);
      let kind, value, rest;
      const m = parts[0].match(/^([^:：]+)[:：](.*)$/);
      if (m && ENTRY_KIND[m[1].toLowerCase()]) {
        kind = ENTRY_KIND[m[1].toLowerCase()];
        value = m[2] || parts[1];
        rest = m[2] ? parts.slice(1) : parts.slice(2);
      } else if (ENTRY_KIND[parts[0].toLowerCase()]) {
        kind = ENTRY_KIND[parts[0].toLowerCase()];
        value = parts[1];
        rest = parts.slice(2);
      } else {
        value = parts[0];
        kind = /^\d{6,15}$/.test(value) ? "imsi" : "plate_no";
        rest = parts.slice(1);
      }
      if (!value) return errors.push(TW.t("hl.line", { n: n + 1 }) + ": " + TW.t("hl.line.novalue"));
      const e = { [kind]: value };
      if (rest.length) e.note = rest.join(" ");
      entries.push(e);
      lines.push(n + 1);
    });
    if (!entries.length && !errors.length) errors.push(TW.t("hl.line.none"));
    return { entries, lines, errors };
  }
  async function createHotlist(ev) {
    ev.preventDefault();
    const out = $("hl-error");
    out.replaceChildren();
    const parsed = parseEntries($("hl-entries").value);
    if (parsed.errors.length) return out.append(parsed.errors.join("；"));
    const body = {
      name: $("hl-name").value.trim(),
      reason: $("hl-reason").value.trim(),
      case_no: S.caseNo,
      valid_from: TW.toIso($("hl-from").value),
      valid_to: TW.toIso($("hl-to").value),
      priority: parseInt($("hl-priority").value, 10),
      fuzzy: $("hl-fuzzy").checked,
      entries: parsed.entries,
    };
    const words = (id) => $(id).value.split(/[\s,，;；]+/).filter(Boolean);
    const scope = {};
    if (words("hl-checkpoints").length) scope.checkpoint_ids = words("hl-checkpoints");
    if (words("hl-areas").length) scope.area_codes = words("hl-areas");
    if (Object.keys(scope).length) body.scope = scope;
    if ($("hl-hours").value.trim()) body.active_hours = $("hl-hours").value.trim();
    if (words("hl-directions").length) body.directions = words("hl-directions");
    if ($("hl-retro").value !== "") body.retro_days = parseInt($("hl-retro").value, 10);
    $("hl-create").disabled = true;
    try {
      const h = await TW.api("/api/v1/hotlists", { method: "POST", json: body });
      TW.toast(TW.t("hl.created", { id: h.id }) + (h.retro_alarms ? " · " + TW.t("hl.retro.found", { n: h.retro_alarms }) : ""));
      if (h.retro_alarms) loadRecentAlarms();
      $("hl-entries").value = "";
      await loadHotlists(false);
    } catch (e) {
      // entries.3.plate_no → the line it came from
      const p = (e && e.problem) || {};
      const lines = (p.errors || []).map((x) => {
        const m = /^entries\.(\d+)/.exec(x.field || "");
        return m ? TW.t("hl.line", { n: parsed.lines[Number(m[1])] }) + ": " + x.message : (x.field ? x.field + ": " : "") + x.message;
      });
      out.append(TW.describe(e instanceof TW.ApiError ? new TW.ApiError(e.status, { detail: p.detail || p.title }) : e));
      for (const l of lines) out.append(TW.el("br"), l);
    } finally {
      $("hl-create").disabled = false;
    }
  }
  async function loadHotlists(more) {
    const params = { limit: 50 };
    if ($("hl-only-case").checked) params.only_case = "true";
    if ($("hl-only-active").checked) params.active = "true";
    if (more) params.cursor = S.hotlists.next;
    const ans = await get("/api/v1/hotlists", params);
    S.hotlists = { items: (more ? S.hotlists.items : []).concat(ans.items || []), next: ans.next_cursor || null };
    renderHotlists();
  }
  const STATE_COLOUR = { active: "#1a7f37", withdrawn: "#878787", expired: "#878787", pending: "#b26a00" };
  function hotlistState(h) {
    // the server derives the status from its clock; "withdrawn" keeps the page's older name
    if (h.status && STATE_COLOUR[h.status]) return [h.status === "withdrawn" ? "revoked" : h.status, STATE_COLOUR[h.status]];
    if (h.revoked_at) return ["revoked", "#878787"];
    if (h.active) return ["active", "#1a7f37"];
    return new Date(h.valid_from) > new Date() ? ["pending", "#b26a00"] : ["expired", "#878787"];
  }
  function renderHotlists() {
    const body = TW.$("#hl-list tbody");
    body.replaceChildren();
    if (!S.hotlists.items.length) body.append(TW.el("tr", {}, TW.el("td", { colspan: 8, class: "tw-hint" }, TW.t("hl.none"))));
    for (const h of S.hotlists.items) {
      const [state, colour] = hotlistState(h);
      const badge = TW.el("span", { class: "tw-badge", "data-testid": "hotlist-state", "data-state": state }, TW.t("hl." + state));
      badge.style.background = colour;
      const entries = (h.entries || []).map((e) => e.value + (e.note ? ` (${e.note})` : "")).join(", ");
      const sc = h.scope || {};
      const limits = [
        sc.checkpoint_ids && `${TW.t("hl.scope.checkpoints")} ${sc.checkpoint_ids.join(" ")}`,
        sc.area_codes && `${TW.t("hl.scope.areas")} ${sc.area_codes.join(" ")}`,
        h.active_hours && `${TW.t("hl.scope.hours")} ${h.active_hours}`,
        h.directions && `${TW.t("hl.scope.directions")} ${h.directions.join(" ")}`,
      ].filter(Boolean);
      const total = h.entries_total != null ? h.entries_total : (h.entries || []).length;
      let action = null;
      if (!h.revoked_at) {
        action = TW.el("button", { type: "button", class: "secondary", "data-testid": "hotlist-withdraw" }, TW.t("hl.withdraw"));
        action.addEventListener("click", () => withdraw(h, action));
      }
      body.append(
        TW.el(
          "tr",
          { "data-testid": "hotlist-row", "data-id": h.id },
          TW.el("td", {}, h.id),
          TW.el(
            "td",
            { title: h.reason },
            TW.el("b", {}, h.name),
            TW.el("br"),
            TW.el("small", { class: "tw-hint" }, h.reason),
            limits.length ? [TW.el("br"), TW.el("small", { "data-testid": "hotlist-scope" }, limits.join(" · "))] : null,
            h.revoked_reason ? [TW.el("br"), TW.el("small", { class: "tw-hint" }, h.revoked_reason)] : null
          ),
          TW.el("td", {}, h.case_no),
          TW.el("td", {}, h.priority),
          TW.el("td", {}, TW.fmtTime(h.valid_from), " – ", TW.fmtTime(h.valid_to)),
          TW.el("td", {}, entries, total > (h.entries || []).length ? " … " + TW.t("hl.total", { n: total }) : ""),
          TW.el("td", {}, badge),
          TW.el("td", {}, action)
        )
      );
    }
    $("hl-more").hidden = !S.hotlists.next;
  }
  // two clicks, no dialog: the first arms the button for 5 s
  async function withdraw(h, btn) {
    if (!btn.dataset.armed) {
      btn.dataset.armed = "1";
      btn.textContent = TW.t("hl.withdraw.confirm");
      btn.classList.add("inv-armed");
      setTimeout(() => {
        if (btn.isConnected && btn.dataset.armed) {
          delete btn.dataset.armed;
          btn.textContent = TW.t("hl.withdraw");
          btn.classList.remove("inv-armed");
        }
      }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      const reason = $("hl-withdraw-reason").value.trim();
      await get(`/api/v1/hotlists/${h.id}`, reason ? { reason } : {}, { method: "DELETE" });
      $("hl-withdraw-reason").value = "";
      TW.toast(TW.t("hl.withdrawn", { id: h.id }));
      await loadHotlists(false);
    } catch (e) {
      btn.disabled = false;
      TW.toast(TW.describe(e), "error");
    }
  }

  // ---- live alarms: fetch() + a ReadableStream of server-sent events, because EventSource cannot send
  // the Authorization header. The stream opens first (from "now"); then the recent alarms are listed;
  // both are merged by id. A dropped stream reconnects with Last-Event-ID (the last alarm id seen).
  const A = S.alarms;
  const WATCHDOG_MS = 90000; // silence this long = a dead connection (the server beats every 15 s by default)
  function alarmStatus(state, detail) {
    const b = $("inv-alarm-status");
    b.dataset.state = state;
    b.textContent = TW.t("inv.alarms." + state);
    b.title = detail || "";
  }
  function stopAlarms() {
    clearTimeout(A.timer);
    if (A.ctrl) A.ctrl.abort();
    A.ctrl = null;
  }
  function startAlarms() {
    stopAlarms();
    openStream();
    loadRecentAlarms();
  }
  function scheduleReconnect(why) {
    A.ctrl = null;
    alarmStatus("reconnecting", why);
    const delay = Math.min(A.retryMs * Math.pow(2, A.fails), 30000);
    A.fails += 1;
    A.timer = setTimeout(openStream, delay);
  }
  async function openStream() {
    const ctrl = new AbortController();
    A.ctrl = ctrl;
    alarmStatus("connecting");
    const headers = { Accept: "text/event-stream", Authorization: "Bearer " + TW.token() };
    if (A.last) headers["Last-Event-ID"] = String(A.last);
    let r;
    try {
      r = await fetch("/api/v1/alarms/stream" + TW.qs({ case_no: S.caseNo }), { headers, signal: ctrl.signal, cache: "no-store" });
    } catch (e) {
      if (ctrl.signal.aborted && A.ctrl !== ctrl) return;
      return scheduleReconnect(String(e));
    }
    if (!r.ok) {
      const p = await r.json().catch(() => null);
      const err = new TW.ApiError(r.status, p);
      if (r.status >= 500 || r.status === 429) return scheduleReconnect(TW.describe(err));
      if (r.status === 401) TW.api("/api/v1/me").catch(() => null); // shows the login form
      return alarmStatus("error", TW.describe(err));
    }
    alarmStatus("live");
    A.fails = 0;
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let lastByte = Date.now();
    const dog = setInterval(() => {
      if (Date.now() - lastByte > WATCHDOG_MS) ctrl.abort();
    }, 5000);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        lastByte = Date.now();
        buf += dec.decode(value, { stream: true });
        buf = buf.replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          onFrame(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) {
      // aborted by the watchdog, by a case change, or a network error: handled below
    } finally {
      clearInterval(dog);
    }
    if (A.ctrl === ctrl) scheduleReconnect("stream ended");
  }
  function onFrame(text) {
    let id = null;
    let event = "";
    const data = [];
    for (const line of text.split("\n")) {
      if (line.startsWith(":")) {
        // the opening comment names where the stream starts: resume from there if it drops early
        const m = /stream from alarm (\d+)/.exec(line);
        if (m) A.last = Math.max(A.last, Number(m[1]));
        continue;
      }
      if (!line) continue;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? "" : line.slice(c + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) A.retryMs = Number(value);
    }
    if (id !== null && /^\d+$/.test(id)) A.last = Math.max(A.last, Number(id));
    if ((event === "alarm" || event === "") && data.length) {
      try {
        addAlarm(JSON.parse(data.join("\n")), true);
      } catch (e) {
        console.error("bad alarm frame", e);
      }
    }
  }
  async function loadRecentAlarms() {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    let cursor = null;
    try {
      for (let page = 0; page < 5; page++) {
        const ans = await get("/api/v1/alarms", { since, limit: 1000, cursor });
        for (const a of ans.items || []) addAlarm(a, false);
        cursor = ans.next_cursor;
        if (!cursor) break;
      }
      A.older = !!cursor;
    } catch (e) {
      TW.toast(TW.describe(e), "error");
    }
    renderAlarmsFooter();
  }
  const MAX_ALARMS = 200;
  function alarmRow(a, fresh) {
    const badge = TW.el("span", { class: "tw-badge inv-prio" }, "P" + a.priority);
    badge.style.background = a.priority <= 10 ? "#c62828" : a.priority <= 50 ? "#b26a00" : "#878787";
    return TW.el(
      "li",
      {
        "data-testid": "alarm",
        "data-id": a.id,
        class: "inv-alarm" + (fresh ? " inv-new" : "") + (a.case_no !== S.caseNo ? " inv-other-case" : ""),
        onclick: () => showAlarm(a),
      },
      TW.el(
        "div",
        {},
        badge,
        " ",
        TW.el("b", { class: "inv-alarm-subject" }, a.subject),
        " ",
        TW.el("small", {}, kindLabel(a.kind)),
        a.retro ? [" ", TW.el("span", { class: "tw-badge inv-retro", "data-testid": "alarm-retro", title: TW.t("inv.alarm.retro.title") }, TW.t("inv.alarm.retro"))] : null
      ),
      TW.el(
        "div",
        { class: "tw-hint" },
        TW.fmtTime(a.ts),
        " · ",
        a.sensor_id,
        a.listed !== a.subject ? ` · ${TW.t("inv.alarm.listed")} ${a.listed}` : "",
        ` · ${TW.t("inv.alarm.hotlist")} #${a.hotlist_id} · ${a.case_no}`
      ),
      ackPart(a)
    );
  }
  // 签收: the verdict shown once given (with who and the note, as text); until then two buttons and a note
  function ackPart(a) {
    if (a.ack) {
      return TW.el(
        "div",
        { class: "inv-ack", "data-testid": "alarm-ack", "data-verdict": a.ack.verdict },
        TW.t("inv.alarm.ack." + a.ack.verdict),
        ` · ${a.ack.by} · ${TW.fmtTime(a.ack.at)}`,
        a.ack.note ? ` · ${a.ack.note}` : ""
      );
    }
    const note = TW.el("input", { class: "inv-ack-note", maxlength: 1000, placeholder: TW.t("inv.alarm.note"), "data-testid": "alarm-ack-note" });
    const stop = (ev) => ev.stopPropagation(); // the row's click shows the alarm on the map
    note.addEventListener("click", stop);
    const button = (verdict) =>
      TW.el(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-testid": "alarm-ack-" + verdict,
          onclick: (ev) => {
            stop(ev);
            ackAlarm(a, verdict, note.value.trim(), ev.currentTarget);
          },
        },
        TW.t("inv.alarm." + verdict)
      );
    return TW.el("div", { class: "inv-ack" }, note, " ", button("confirmed"), " ", button("false_positive"));
  }
  async function ackAlarm(a, verdict, note, btn) {
    btn.disabled = true;
    try {
      const got = await TW.api(`/api/v1/alarms/${a.id}/ack`, { method: "POST", json: note ? { verdict, note } : { verdict } });
      A.byId.set(a.id, got);
      const li = TW.$(`li[data-id="${a.id}"]`, $("inv-alarm-list"));
      if (li) li.replaceWith(alarmRow(got, false));
      TW.toast(TW.t("inv.alarm.acked", { id: a.id }));
    } catch (e) {
      btn.disabled = false;
      TW.toast(TW.describe(e), "error");
    }
  }
  function addAlarm(a, fresh) {
    if (!a || typeof a.id !== "number" || A.byId.has(a.id)) return;
    A.byId.set(a.id, a);
    const list = $("inv-alarm-list");
    const li = alarmRow(a, fresh);
    // newest first: before the first row with a smaller id
    const after = TW.$$("li", list).find((x) => Number(x.dataset.id) < a.id);
    list.insertBefore(li, after || null);
    if (fresh) setTimeout(() => li.classList.remove("inv-new"), 15000);
    while (list.children.length > MAX_ALARMS) {
      const last = list.lastElementChild;
      A.byId.delete(Number(last.dataset.id));
      last.remove();
    }
    renderAlarmsFooter();
  }
  function renderAlarmsFooter() {
    $("inv-alarm-empty").hidden = A.byId.size > 0;
    let older = $("inv-alarm-older");
    if (A.older && !older) $("inv-alarm-panel").append(TW.el("p", { class: "tw-hint", id: "inv-alarm-older" }, TW.t("inv.alarms.older")));
    else if (!A.older && older) older.remove();
  }
  function showAlarm(a) {
    if (!S.map || a.lon == null || a.lat == null) return;
    S.map.set(
      "alarm",
      { type: "Feature", geometry: { type: "Point", coordinates: [a.lon, a.lat] }, properties: {} },
      { label: TW.t("inv.alarms"), pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 12, color: "#c62828", weight: 3, fillOpacity: 0.2 }) }
    );
    S.map.leaflet.setView([a.lat, a.lon], Math.max(S.map.leaflet.getZoom(), 15));
  }
  function rerenderAlarms() {
    const list = $("inv-alarm-list");
    const all = Array.from(A.byId.values()).sort((x, y) => y.id - x.id);
    list.replaceChildren(...all.map((a) => alarmRow(a, false)));
    renderAlarmsFooter();
  }

  // ---- start
  function defaults() {
    const now = new Date();
    const weekAgo = new Date(now.getTime() - 7 * 86400 * 1000);
    $("inv-from").value = TW.toLocalInput(weekAgo);
    $("inv-to").value = TW.toLocalInput(now);
    $("inv-an-from").value = TW.toLocalInput(weekAgo);
    $("inv-an-to").value = TW.toLocalInput(now);
    $("hl-from").value = TW.toLocalInput(now);
    $("hl-to").value = TW.toLocalInput(new Date(now.getTime() + 30 * 86400 * 1000));
  }
  TW.ready(() => {
    defaults();
    $("inv-case-form").addEventListener("submit", enterCase);
    $("inv-case-change").addEventListener("click", () => {
      // a new case starts a clean page: nothing read under the old number stays on screen
      stopAlarms();
      location.reload();
    });
    $("inv-search-form").addEventListener("submit", search);
    $("inv-more").addEventListener("click", () => S.traj && loadPage(S.traj.nextCursor));
    $("inv-fusion-run").addEventListener("click", runFusion);
    $("inv-an-kind").addEventListener("change", showAnalysisFields);
    $("inv-an-form").addEventListener("submit", runAnalysis);
    $("inv-window-add").addEventListener("click", addWindow);
    $("hl-form").addEventListener("submit", createHotlist);
    const reload = () => loadHotlists(false).catch((e) => TW.toast(TW.describe(e), "error"));
    $("hl-refresh").addEventListener("click", reload);
    $("hl-only-case").addEventListener("change", reload);
    $("hl-only-active").addEventListener("change", reload);
    $("hl-more").addEventListener("click", () => loadHotlists(true).catch((e) => TW.toast(TW.describe(e), "error")));
    showAnalysisFields();
    showGate();
  });
  document.addEventListener("tw:lang", () => {
    if (!S.caseNo) return;
    renderTimeline();
    renderFusion();
    renderAnalysis();
    renderHotlists();
    rerenderAlarms();
    const b = $("inv-alarm-status");
    if (b.dataset.state !== "off") alarmStatus(b.dataset.state, b.title);
  });
})();
