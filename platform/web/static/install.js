// Installer page (安装调试): register a camera, place it and its view sector on the map, probe it.
// Works on a phone: one column, big touch targets, the map handles are draggable by finger.
"use strict";
(function () {
  const TW = window.TW;
  const $ = TW.$;

  TW.labels({
    "in.step.device": ["1 · 设备", "1 · Device"],
    "in.step.place": ["2 · 位置与视场", "2 · Position and view"],
    "in.step.link": ["3 · 接入", "3 · Connection"],
    "in.step.probe": ["4 · 检测结果", "4 · Probe result"],
    "in.device_id": ["国标编码 (20 位)", "GB/T 28181 device code (20 digits)"],
    "in.name": ["名称", "Name"],
    "in.kind": ["类型", "Kind"],
    "in.point_class": ["点位类别", "Point class"],
    "in.choose": ["请选择", "Choose"],
    "in.area_code": ["行政区划", "Area code"],
    "in.address": ["安装地址", "Address"],
    "in.more": ["更多档案字段 (GB/T 28181)", "More record fields (GB/T 28181)"],
    "in.room_type": ["室内外", "Indoor / outdoor"],
    "in.supply_light_type": ["补光", "Supplementary light"],
    "in.position_type": ["位置类型", "Position type"],
    "in.resolution": ["分辨率", "Resolution"],
    "in.police_station": ["所属派出所", "Police station"],
    "in.maintenance_unit": ["维护单位", "Maintenance unit"],
    "in.construction_batch": ["建设批次", "Construction batch"],
    "in.record_retention_days": ["录像保存天数", "Recording kept (days)"],
    "in.place.hint": [
      "点击地图放置摄像机（可拖动）；拖动扇形弧中点的手柄调方向和距离，拖动扇形边上的手柄调视场角。",
      "Click the map to place the camera (drag it to move); drag the handle in the middle of the arc to set the heading and range, the handle on the edge to set the field of view.",
    ],
    "in.lon": ["经度", "Longitude"],
    "in.lat": ["纬度", "Latitude"],
    "in.heading": ["朝向 (°, 北=0 顺时针)", "Heading (°, north = 0, clockwise)"],
    "in.hfov": ["水平视场角 (°)", "Horizontal field of view (°)"],
    "in.range": ["监视距离 (米)", "Range (m)"],
    "in.locate": ["用我的位置", "Use my location"],
    "in.locate.none": ["浏览器无法定位", "The browser cannot tell the location"],
    "in.onvif_host": ["ONVIF 地址", "ONVIF host"],
    "in.onvif_port": ["ONVIF 端口", "ONVIF port"],
    "in.onvif_username": ["用户名", "Username"],
    "in.onvif_password": ["密码", "Password"],
    "in.onvif_trust": [
      "使用设备自报的地址（仅当摄像机与代理在同一网络、不经 NAT 或端口映射时勾选）",
      "Use the addresses the device names (only when the agent reaches it directly, without NAT or port forwarding)",
    ],
    "in.password.kept": ["已保存密码：留空则不变", "A password is stored: leave empty to keep it"],
    "in.password.again": [
      "地址已改：请重新输入密码（保存的密码不会跟到新地址）",
      "The address changed: enter the password again (a stored password never follows a camera)",
    ],
    "in.rtsp_url": ["RTSP 地址", "RTSP URL"],
    "in.snapshot_url": ["抓图地址", "Snapshot URL"],
    "in.register": ["登记", "Register"],
    "in.save": ["保存", "Save"],
    "in.probe": ["检测", "Probe"],
    "in.new": ["新的一台", "Another camera"],
    "in.mode.new": ["新登记", "new camera"],
    "in.mode.edit": ["编辑 {id}", "editing {id}"],
    "in.saved.new": ["已登记 {id}，可以检测", "Registered {id}: you can probe it now"],
    "in.saved.edit": ["已保存 {id}", "Saved {id}"],
    "in.need.position": ["请在地图上点击摄像机位置", "Click the map where the camera is"],
    "in.probing": ["检测中：连接、时钟、认证、码流、抓图…", "Probing: connection, clock, authentication, profiles, snapshot…"],
    "in.probed": ["检测完成，用时 {ms} ms", "Probed in {ms} ms"],
    "in.probe.failed": ["检测未能运行", "The probe could not run"],
    "in.verdict": ["结论", "Verdict"],
    "verdict.ok": ["合格 ok", "ok"],
    "verdict.fault": ["不合格 fault", "fault"],
    "verdict.unjudged": ["未诊断", "not judged"],
    "in.reachable": ["网络可达", "Reachable"],
    "in.authenticated": ["认证通过", "Authenticated"],
    "in.clock": ["时钟偏差", "Clock skew"],
    "in.device": ["设备信息", "Device"],
    "in.profiles": ["码流", "Profiles"],
    "in.stream_uri": ["取流地址", "Stream URI"],
    "in.snapshot": ["测试抓图", "Test snapshot"],
    "in.diagnosis": ["图像诊断", "Picture diagnosis"],
    "in.error": ["错误", "Error"],
    "in.no_faults": ["无故障", "no faults"],
    "in.no_snapshot": ["没有抓到图", "No picture was taken"],
    "in.no_snapshot_url": ["服务器未给出图片地址", "The server gave no address for the picture"],
    "in.steps": ["检测步骤", "Probe steps"],
    "in.step": ["步骤", "Step"],
    "in.outcome": ["结果", "Outcome"],
    "in.why": ["原因", "Why"],
    "yes": ["是", "yes"],
    "no": ["否", "no"],
    "kind.bullet": ["枪机", "bullet"],
    "kind.dome": ["半球", "dome"],
    "kind.ptz": ["球机", "PTZ"],
    "kind.turret": ["筒机", "turret"],
    "kind.fisheye": ["鱼眼", "fisheye"],
    "kind.face": ["人脸", "face"],
    "kind.checkpoint": ["卡口", "checkpoint"],
    "pc.1": ["一类点", "class 1"],
    "pc.2": ["二类点", "class 2"],
    "pc.3": ["三类点", "class 3"],
    "room.1": ["室外", "outdoor"],
    "room.2": ["室内", "indoor"],
    "light.1": ["无补光", "none"],
    "light.2": ["红外", "infrared"],
    "light.3": ["白光", "white light"],
    "light.4": ["激光", "laser"],
    "light.9": ["其他", "other"],
    "pos.1": ["省际检查站", "border checkpoint"],
    "pos.2": ["党政机关", "government"],
    "pos.3": ["车站码头", "station / port"],
    "pos.4": ["中心广场", "square"],
    "pos.5": ["体育场馆", "stadium"],
    "pos.6": ["商业中心", "commercial centre"],
    "pos.7": ["宗教场所", "religious site"],
    "pos.8": ["校园周边", "campus"],
    "pos.9": ["治安复杂区域", "complex security area"],
    "pos.10": ["交通干线", "arterial road"],
    "id.len": ["须为 20 位数字（已输入 {n} 位）", "must be 20 digits ({n} so far)"],
    "id.province": ["区划 {d} 不是 GB/T 2260 省级代码开头", "division {d} does not start with a GB/T 2260 province code"],
    "id.type": ["类型码 {t} 不是已知的 GB/T 28181 设备类型", "type code {t} is not a known GB/T 28181 device type"],
    "id.kind": ["类型码 {t}（{n}）与所选类型不符，应为 {want}", "type code {t} ({n}) does not fit the kind: expected {want}"],
    "id.parts": ["区划 {d} · 行业 {i} · 类型 {t} {n} · 网络 {w} · 序号 {s}", "division {d} · industry {i} · type {t} {n} · network {w} · serial {s}"],
  });

  // GB/T 28181 device codes, checked as the server does (platform/cameras/ids.py)
  const PROVINCES = new Set(
    ("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82").split(" "),
  );
  const TYPES = {
    111: ["DVR", "DVR"],
    112: ["视频服务器", "video server"],
    113: ["编码器", "encoder"],
    114: ["解码器", "decoder"],
    118: ["NVR", "NVR"],
    121: ["视频卡口", "video checkpoint"],
    131: ["摄像机", "camera"],
    132: ["网络摄像机", "IP camera"],
    200: ["平台", "platform"],
  };
  const typesForKind = (kind) => (kind === "checkpoint" ? ["121"] : ["131", "132"]);

  // {ok, text}: a readable breakdown of a device code, or what is wrong with it
  function checkDeviceId(v, kind) {
    const en = TW.lang() === "en" ? 1 : 0;
    if (!v) return { ok: false, text: "" };
    if (!/^\d{20}$/.test(v)) return { ok: false, text: TW.t("id.len", { n: v.replace(/\D/g, "").length }) };
    if (!PROVINCES.has(v.slice(0, 2))) return { ok: false, text: TW.t("id.province", { d: v.slice(0, 6) }) };
    const t = v.slice(10, 13);
    if (!TYPES[t]) return { ok: false, text: TW.t("id.type", { t }) };
    const parts = TW.t("id.parts", { d: v.slice(0, 6), i: v.slice(8, 10), t, n: TYPES[t][en], w: v[13], s: v.slice(14) });
    if (!typesForKind(kind).includes(t)) {
      return { ok: false, text: TW.t("id.kind", { t, n: TYPES[t][en], want: typesForKind(kind).join("/") }) + " — " + parts };
    }
    return { ok: true, text: parts, division: v.slice(0, 6) };
  }

  // ---- geometry: the same flat approximation as TW.sectorRing
  const KY = 110574;
  const kx = (lat) => 111320 * Math.cos((lat * Math.PI) / 180);
  function offset(lon, lat, bearingDeg, metres) {
    const b = (bearingDeg * Math.PI) / 180;
    return [lon + (metres * Math.sin(b)) / kx(lat), lat + (metres * Math.cos(b)) / KY];
  }
  function bearingAndDistance(lon, lat, lon2, lat2) {
    const dx = (lon2 - lon) * kx(lat);
    const dy = (lat2 - lat) * KY;
    const b = ((Math.atan2(dx, dy) * 180) / Math.PI + 360) % 360;
    return [b, Math.hypot(dx, dy)];
  }
  const round = (x, n) => Math.round(x * 10 ** n) / 10 ** n;
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  // ---- page state
  let editing = null; // the camera as the server last returned it (null: a new camera)
  let map = null;
  let sector = null;
  let apex = null;
  let hHeading = null;
  let hFov = null;
  let others = null;

  const num = (id) => {
    const v = $(id).value.trim();
    return v === "" ? null : Number(v);
  };
  const view = () => ({
    lon: num("#in-lon"),
    lat: num("#in-lat"),
    heading: num("#in-heading") ?? 0,
    hfov: clamp(num("#in-hfov") ?? 60, 1, 360),
    range: clamp(num("#in-range") ?? 50, 1, 5000),
  });
  const placed = () => {
    const v = view();
    return v.lon !== null && v.lat !== null && isFinite(v.lon) && isFinite(v.lat);
  };

  function handleIcon(cls) {
    return L.divIcon({ className: "tw-handle " + cls, iconSize: [26, 26], iconAnchor: [13, 13] });
  }

  function makeMap() {
    map = TW.map.create($("#in-map"), { zoom: 12 });
    if (!map) return;
    const lm = map.leaflet;
    sector = L.polygon([], { color: "#0b5cad", weight: 2, fillOpacity: 0.2, interactive: false });
    apex = L.marker([0, 0], { icon: handleIcon("tw-handle-apex"), draggable: true, keyboard: false, title: "camera" });
    hHeading = L.marker([0, 0], { icon: handleIcon("tw-handle-heading"), draggable: true, keyboard: false, title: "heading" });
    hFov = L.marker([0, 0], { icon: handleIcon("tw-handle-fov"), draggable: true, keyboard: false, title: "fov" });
    const ids = [
      [apex, "in-handle-apex"],
      [hHeading, "in-handle-heading"],
      [hFov, "in-handle-fov"],
    ];
    for (const [m, id] of ids) m.on("add", () => (m.getElement().id = id));
    map.onClick((lon, lat) => {
      const first = !placed();
      setPosition(lon, lat);
      if (first) lm.setView([lat, lon], Math.max(lm.getZoom(), 17));
    });
    apex.on("drag", (e) => setPosition(e.latlng.lng, e.latlng.lat));
    hHeading.on("drag", (e) => {
      const v = view();
      const [b, d] = bearingAndDistance(v.lon, v.lat, e.latlng.lng, e.latlng.lat);
      $("#in-heading").value = round(b, 1) % 360;
      $("#in-range").value = round(clamp(d, 1, 5000), 1);
      draw(hHeading);
    });
    hFov.on("drag", (e) => {
      const v = view();
      const [b] = bearingAndDistance(v.lon, v.lat, e.latlng.lng, e.latlng.lat);
      let diff = Math.abs((((b - v.heading) % 360) + 540) % 360 - 180); // 0…180
      $("#in-hfov").value = round(clamp(2 * diff, 1, 360), 1);
      draw(hFov);
    });
    // a handle let go snaps back onto the sector it now describes
    for (const m of [hHeading, hFov, apex]) m.on("dragend", () => draw());
  }

  function setPosition(lon, lat) {
    $("#in-lon").value = round(lon, 7);
    $("#in-lat").value = round(lat, 7);
    showFieldError("lon", "");
    draw();
  }

  // redraw the sector and the handles from the inputs (`moving`: the handle under the finger stays put)
  function draw(moving) {
    if (!map) return;
    const lm = map.leaflet;
    if (!placed()) {
      for (const l of [sector, apex, hHeading, hFov]) if (lm.hasLayer(l)) lm.removeLayer(l);
      return;
    }
    const v = view();
    const ring = TW.sectorRing(v.lon, v.lat, v.heading, v.hfov, v.range);
    sector.setLatLngs(ring.map(([x, y]) => [y, x]));
    const put = (m, lonlat) => {
      if (m !== moving) m.setLatLng([lonlat[1], lonlat[0]]);
      if (!lm.hasLayer(m)) m.addTo(lm);
    };
    if (!lm.hasLayer(sector)) sector.addTo(lm);
    put(apex, [v.lon, v.lat]);
    put(hHeading, offset(v.lon, v.lat, v.heading, v.range));
    put(hFov, offset(v.lon, v.lat, v.heading + v.hfov / 2, v.range));
  }

  // cameras already registered, so the installer sees the neighbourhood
  async function drawOthers() {
    if (!map) return;
    try {
      const page = await TW.api("/api/v1/cameras" + TW.qs({ limit: 1000 }));
      const feats = page.items
        .filter((c) => !editing || c.device_id !== editing.device_id)
        .map((c) => ({
          type: "Feature",
          properties: { id: c.device_id, name: c.name, status: c.status },
          geometry: { type: "Point", coordinates: [c.lon, c.lat] },
        }));
      others = map.set(
        "cameras",
        { type: "FeatureCollection", features: feats },
        {
          pointToLayer: (f, ll) =>
            L.circleMarker(ll, { radius: 4, color: TW.stateColour(f.properties.status), weight: 1, fillOpacity: 0.7 }),
          // a DOM node, never an HTML string: the name is what somebody typed
          onEachFeature: (f, layer) => layer.bindTooltip(() => TW.el("span", {}, f.properties.name + " " + f.properties.id)),
        },
      );
      if (others && others.bringToBack) others.bringToBack();
    } catch (e) {
      console.warn("cameras for the map", e);
    }
  }

  // ---- the device-code hint
  function updateIdHint() {
    const v = $("#in-device-id").value.trim();
    const r = checkDeviceId(v, $("#in-kind").value);
    const hint = $("#in-device-id-hint");
    hint.textContent = r.text;
    hint.className = v && !r.ok ? "tw-warn" : "tw-hint";
    hint.dataset.ok = r.ok ? "1" : "0";
    $("#in-area-code").placeholder = r.division || "";
    // the type code decides between a checkpoint camera and the others
    if (v.length === 20 && !editing) {
      const t = v.slice(10, 13);
      if (t === "121" && $("#in-kind").value !== "checkpoint") $("#in-kind").value = "checkpoint";
      else if ((t === "131" || t === "132") && $("#in-kind").value === "checkpoint") $("#in-kind").value = "bullet";
      const again = checkDeviceId(v, $("#in-kind").value);
      hint.textContent = again.text;
      hint.className = again.ok ? "tw-hint" : "tw-warn";
      hint.dataset.ok = again.ok ? "1" : "0";
    }
  }

  // ---- errors beside the fields
  function clearErrors() {
    TW.$$(".tw-field-error").forEach((e) => (e.textContent = ""));
    $("#in-errors").textContent = "";
    $("#in-saved").textContent = "";
  }
  function showFieldError(field, msg) {
    const el = TW.$$(".tw-field-error").find((e) => e.dataset.field === field);
    if (el) el.textContent = msg;
    return !!el;
  }
  function showProblem(e) {
    const p = (e && e.problem) || {};
    const loose = [];
    for (const x of p.errors || []) {
      const field = x.field || "";
      // a field inside the ONVIF record may be named onvif.host; whole-body errors have no field
      if (!showFieldError(field, x.message) && !showFieldError(field.split(".")[0], x.message)) {
        loose.push((field && field !== "body" ? field + ": " : "") + x.message);
      }
    }
    // when every error sits beside its field, the line under the form only names the problem
    let head = e instanceof TW.ApiError ? (e.status === 403 ? TW.t("err.forbidden") : e.message) : String(e);
    if (e instanceof TW.ApiError && e.status !== 403 && !loose.length && (p.errors || []).length) head = p.title || head;
    $("#in-errors").textContent = [head].concat(loose).join(" — ");
    const first = TW.$$(".tw-field-error").find((x) => x.textContent);
    if (first) first.closest("label, section").scrollIntoView({ block: "center", behavior: "smooth" });
  }

  // ---- the request body from the form
  const text = (id) => $(id).value.trim();
  function body() {
    const v = view();
    const b = {
      name: text("#in-name"),
      kind: $("#in-kind").value,
      lon: v.lon,
      lat: v.lat,
      heading_deg: num("#in-heading"),
      hfov_deg: num("#in-hfov"),
      range_m: num("#in-range"),
      point_class: num("#in-point-class"),
    };
    const optional = {
      area_code: text("#in-area-code"),
      address: text("#in-address"),
      rtsp_url: text("#in-rtsp-url"),
      snapshot_url: text("#in-snapshot-url"),
      room_type: num("#in-room-type"),
      supply_light_type: num("#in-supply-light-type"),
      position_type: num("#in-position-type"),
      resolution: text("#in-resolution"),
      police_station: text("#in-police-station"),
      maintenance_unit: text("#in-maintenance-unit"),
      construction_batch: text("#in-construction-batch"),
      record_retention_days: num("#in-record-retention-days"),
    };
    for (const [k, val] of Object.entries(optional)) {
      if (val !== "" && val !== null) b[k] = val;
      else if (editing && editing[k] !== null && editing[k] !== undefined) b[k] = null; // cleared on purpose
    }
    const host = text("#in-onvif-host");
    if (host) {
      b.onvif = {
        host,
        port: num("#in-onvif-port") ?? 80,
        username: text("#in-onvif-username"),
        trust_device_addresses: $("#in-onvif-trust").checked,
      };
      const pw = $("#in-onvif-password").value;
      if (pw) b.onvif.password = pw;
    } else if (editing && editing.onvif) {
      b.onvif = null;
    }
    for (const k of Object.keys(b)) if (b[k] === null && !editing) delete b[k];
    return b;
  }

  // ---- an existing camera into the form (never a password: the server has none to give)
  function fill(c) {
    editing = c;
    const set = (id, v) => ($(id).value = v === null || v === undefined ? "" : String(v));
    set("#in-device-id", c.device_id);
    $("#in-device-id").readOnly = true;
    set("#in-name", c.name);
    set("#in-kind", c.kind);
    set("#in-point-class", c.point_class);
    set("#in-area-code", c.area_code);
    set("#in-address", c.address);
    set("#in-lon", c.lon);
    set("#in-lat", c.lat);
    set("#in-heading", c.heading_deg);
    set("#in-hfov", c.hfov_deg);
    set("#in-range", c.range_m);
    set("#in-rtsp-url", c.rtsp_url);
    set("#in-snapshot-url", c.snapshot_url);
    set("#in-room-type", c.room_type);
    set("#in-supply-light-type", c.supply_light_type);
    set("#in-position-type", c.position_type);
    set("#in-resolution", c.resolution);
    set("#in-police-station", c.police_station);
    set("#in-maintenance-unit", c.maintenance_unit);
    set("#in-construction-batch", c.construction_batch);
    set("#in-record-retention-days", c.record_retention_days);
    set("#in-onvif-host", c.onvif ? c.onvif.host : "");
    set("#in-onvif-port", c.onvif ? c.onvif.port : 80);
    set("#in-onvif-username", c.onvif ? c.onvif.username : "");
    $("#in-onvif-trust").checked = !!(c.onvif && c.onvif.trust_device_addresses);
    $("#in-onvif-password").value = "";
    passwordHint();
    updateMode();
    updateIdHint();
    draw();
    if (map && placed()) map.leaflet.setView([c.lat, c.lon], Math.max(map.leaflet.getZoom(), 17));
  }

  function passwordHint() {
    const h = $("#in-password-hint");
    if (!editing || !editing.onvif || !editing.onvif.has_password) return (h.textContent = "");
    const moved =
      text("#in-onvif-host") !== editing.onvif.host || (num("#in-onvif-port") ?? 80) !== editing.onvif.port;
    h.textContent = TW.t(moved && !$("#in-onvif-password").value ? "in.password.again" : "in.password.kept");
    h.className = moved && !$("#in-onvif-password").value ? "tw-warn" : "tw-hint";
  }

  function updateMode() {
    const m = $("#in-mode");
    m.dataset.mode = editing ? "edit" : "new";
    m.textContent = editing ? TW.t("in.mode.edit", { id: editing.device_id }) : TW.t("in.mode.new");
    $("#in-submit").textContent = TW.t(editing ? "in.save" : "in.register");
    $("#in-probe").disabled = !editing;
  }

  async function submit(ev) {
    ev.preventDefault();
    clearErrors();
    if (!placed()) {
      showFieldError("lon", TW.t("in.need.position"));
      $("#in-errors").textContent = TW.t("in.need.position");
      $("#in-map").scrollIntoView({ block: "center", behavior: "smooth" });
      return;
    }
    const btn = $("#in-submit");
    btn.disabled = true;
    try {
      let saved;
      if (editing) {
        saved = await TW.api("/api/v1/cameras/" + encodeURIComponent(editing.device_id), { method: "PATCH", json: body() });
      } else {
        const b = body();
        b.device_id = text("#in-device-id");
        saved = await TW.api("/api/v1/cameras", { method: "POST", json: b });
      }
      const wasNew = !editing;
      fill(saved);
      $("#in-saved").textContent = TW.t(wasNew ? "in.saved.new" : "in.saved.edit", { id: saved.device_id });
      history.replaceState(null, "", "/console/install" + TW.qs({ device_id: saved.device_id }));
    } catch (e) {
      showProblem(e);
    } finally {
      btn.disabled = false;
    }
  }

  // ---- the probe and its verdict
  function verdictOf(r) {
    const why = [];
    if (!r.reachable) why.push(TW.t("in.reachable") + ": " + TW.t("no"));
    else if (r.authenticated === false) why.push(TW.t("in.authenticated") + ": " + TW.t("no"));
    if (r.error) why.push(r.error.code + ": " + r.error.message);
    if (!r.snapshot) why.push(TW.t("in.no_snapshot"));
    const q = r.snapshot && r.snapshot.quality;
    if (q && q.verdict && q.verdict !== "ok") why.push(TW.t("in.diagnosis") + ": " + (q.faults || []).join(", "));
    return { ok: why.length === 0, why };
  }

  function row(label, value, cls) {
    return TW.el("tr", {}, TW.el("th", {}, label), TW.el("td", { class: cls || null }, value));
  }
  // null: unknown (the device never got that far), neither yes nor no
  const yesNo = (b) =>
    b === null || b === undefined
      ? TW.el("span", { class: "tw-hint" }, "—")
      : TW.el("span", { class: b ? "tw-ok" : "tw-error" }, b ? "✓ " + TW.t("yes") : "✗ " + TW.t("no"));

  function showResult(r) {
    const v = verdictOf(r);
    const badge = $("#in-verdict");
    badge.dataset.verdict = v.ok ? "ok" : "fault";
    badge.textContent = TW.t(v.ok ? "verdict.ok" : "verdict.fault");
    badge.style.background = v.ok ? "var(--ok)" : "var(--bad)";
    $("#in-verdict-why").textContent = v.why.join(" · ");
    const tb = $("#in-probe-table tbody");
    tb.replaceChildren();
    tb.append(row(TW.t("in.reachable"), yesNo(r.reachable)));
    tb.append(row(TW.t("in.authenticated"), yesNo(r.authenticated)));
    if (r.clock_skew_s !== null && r.clock_skew_s !== undefined) {
      tb.append(row(TW.t("in.clock"), r.clock_skew_s.toFixed(1) + " s", Math.abs(r.clock_skew_s) > 5 ? "tw-warn" : ""));
    }
    const info = r.device_info;
    if (info) tb.append(row(TW.t("in.device"), [info.manufacturer, info.model, info.firmware, info.serial].filter(Boolean).join(" · ")));
    if (r.profiles && r.profiles.length) {
      const p = r.profiles
        .map((x) => [x.name || x.token, x.encoding, x.width && x.height ? x.width + "×" + x.height : null, x.fps ? x.fps + " fps" : null].filter(Boolean).join(" "))
        .join("; ");
      tb.append(row(TW.t("in.profiles"), p));
    }
    if (r.stream_uri) tb.append(row(TW.t("in.stream_uri"), r.stream_uri));
    const s = r.snapshot;
    tb.append(row(TW.t("in.snapshot"), s ? s.width + "×" + s.height + " · " + Math.round(s.size / 1024) + " KB" : TW.t("in.no_snapshot"), s ? "" : "tw-error"));
    if (s) {
      const q = s.quality;
      let d;
      if (!s.judged || !q) d = TW.el("span", { class: "tw-hint" }, TW.t("verdict.unjudged"));
      else if (q.verdict === "ok") d = TW.el("span", { class: "tw-ok", id: "in-diagnosis" }, "ok · " + TW.t("in.no_faults"));
      else d = TW.el("span", { class: "tw-error", id: "in-diagnosis" }, (q.verdict || "fault") + " · " + (q.faults || []).join(", "));
      tb.append(row(TW.t("in.diagnosis"), d));
    }
    if (r.error) tb.append(row(TW.t("in.error"), r.error.code + ": " + r.error.message, "tw-error"));

    const img = $("#in-snapshot");
    const cap = $("#in-snapshot-caption");
    img.hidden = true;
    img.removeAttribute("src");
    cap.textContent = "";
    if (s && s.url) {
      img.alt = TW.t("in.snapshot") + " " + r.device_id;
      img.onload = () => (img.hidden = false);
      img.onerror = () => (cap.textContent = TW.t("in.no_snapshot"));
      img.src = s.url;
      cap.textContent = TW.t("in.snapshot") + " · " + TW.fmtTime(r.probed_at);
    } else if (s) {
      cap.textContent = TW.t("in.no_snapshot_url");
    }

    const st = $("#in-steps tbody");
    st.replaceChildren(
      ...(r.steps || []).map((x) =>
        TW.el(
          "tr",
          { class: x.outcome === "failed" ? "tw-error" : x.outcome === "skipped" ? "tw-hint" : "" },
          TW.el("td", {}, x.name),
          TW.el("td", {}, x.outcome),
          TW.el("td", {}, Math.round(x.duration_ms)),
          TW.el("td", {}, [x.code, x.message].filter(Boolean).join(": ")),
        ),
      ),
    );
  }

  async function probe() {
    if (!editing) return;
    const panel = $("#in-probe-panel");
    panel.hidden = false;
    const status = $("#in-probe-status");
    status.className = "tw-hint";
    status.textContent = TW.t("in.probing");
    $("#in-verdict").dataset.verdict = "";
    $("#in-verdict").textContent = "…";
    $("#in-verdict").style.background = "";
    $("#in-verdict-why").textContent = "";
    $("#in-probe-table tbody").replaceChildren();
    $("#in-steps tbody").replaceChildren();
    $("#in-snapshot").hidden = true;
    $("#in-snapshot-caption").textContent = "";
    const btn = $("#in-probe");
    btn.disabled = true;
    panel.scrollIntoView({ block: "start", behavior: "smooth" });
    try {
      const r = await TW.api("/api/v1/cameras/" + encodeURIComponent(editing.device_id) + "/probe", { method: "POST" });
      status.textContent = TW.t("in.probed", { ms: Math.round(r.duration_ms) });
      showResult(r);
      // the probe wrote what it learned onto the record (maker, model, URIs)
      editing = await TW.api("/api/v1/cameras/" + encodeURIComponent(editing.device_id));
    } catch (e) {
      status.className = "tw-error";
      status.textContent = TW.t("in.probe.failed") + ": " + TW.describe(e);
      $("#in-verdict").dataset.verdict = "error";
      $("#in-verdict").textContent = "—";
    } finally {
      btn.disabled = !editing;
    }
  }

  function reset() {
    editing = null;
    $("#in-form").reset();
    $("#in-device-id").readOnly = false;
    clearErrors();
    $("#in-probe-panel").hidden = true;
    history.replaceState(null, "", "/console/install");
    passwordHint();
    updateMode();
    updateIdHint();
    draw();
    drawOthers();
  }

  TW.ready(async () => {
    makeMap();
    $("#in-form").addEventListener("submit", submit);
    $("#in-probe").addEventListener("click", probe);
    $("#in-new").addEventListener("click", reset);
    $("#in-device-id").addEventListener("input", updateIdHint);
    $("#in-kind").addEventListener("change", updateIdHint);
    for (const id of ["#in-lon", "#in-lat", "#in-heading", "#in-hfov", "#in-range"]) $(id).addEventListener("input", () => draw());
    for (const id of ["#in-onvif-host", "#in-onvif-port", "#in-onvif-password"]) $(id).addEventListener("input", passwordHint);
    $("#in-locate").addEventListener("click", () => {
      if (!navigator.geolocation) return TW.toast(TW.t("in.locate.none"), "error");
      navigator.geolocation.getCurrentPosition(
        (p) => {
          setPosition(p.coords.longitude, p.coords.latitude);
          if (map) map.leaflet.setView([p.coords.latitude, p.coords.longitude], 18);
        },
        (err) => TW.toast(TW.t("in.locate.none") + ": " + err.message, "error"),
        { enableHighAccuracy: true, timeout: 15000 },
      );
    });
    document.addEventListener("tw:lang", () => {
      updateMode();
      updateIdHint();
      passwordHint();
    });
    updateMode();
    const wanted = new URLSearchParams(location.search).get("device_id");
    if (wanted) {
      try {
        fill(await TW.api("/api/v1/cameras/" + encodeURIComponent(wanted)));
      } catch (e) {
        showProblem(e);
      }
    }
    drawOthers();
  });
})();
