// Registry page (设备档案): search and filter cameras, edit one (PATCH), delete, import a sheet, export.
"use strict";
(function () {
  const TW = window.TW;
  const $ = TW.$;

  TW.labels({
    "rg.q": ["搜索（名称、编码、地址）", "Search (name, code, address)"],
    "rg.kind": ["类型", "Kind"],
    "rg.status": ["状态", "Status"],
    "rg.area": ["行政区划", "Area code"],
    "rg.lifecycle": ["生命周期", "Lifecycle"],
    "rg.page_size": ["每页", "Per page"],
    "rg.all": ["全部", "all"],
    "rg.search": ["查询", "Search"],
    "rg.cameras": ["摄像机", "Cameras"],
    "rg.count": ["本页 {n} 台", "{n} on this page"],
    "rg.page": ["第 {n} 页", "page {n}"],
    "rg.prev": ["上一页", "Previous"],
    "rg.next": ["下一页", "Next"],
    "rg.empty": ["没有符合条件的设备", "No device matches"],
    "rg.col.device_id": ["国标编码", "Device code"],
    "rg.col.name": ["名称", "Name"],
    "rg.col.kind": ["类型", "Kind"],
    "rg.col.status": ["状态", "Status"],
    "rg.col.area": ["区划", "Area"],
    "rg.col.address": ["地址", "Address"],
    "rg.col.last_seen": ["最近在线", "Last seen"],
    "rg.col.checkpoint_id": ["卡口编码", "Checkpoint code"],
    "rg.col.road": ["道路", "Road"],
    "rg.col.lanes": ["车道", "Lanes"],
    "rg.col.direction": ["方向 (°)", "Direction (°)"],
    "rg.col.cameras": ["摄像机", "Cameras"],
    "rg.edit": ["编辑", "Edit"],
    "rg.point_class": ["点位类别", "Point class"],
    "rg.lon": ["经度", "Longitude"],
    "rg.lat": ["纬度", "Latitude"],
    "rg.heading": ["朝向 (°)", "Heading (°)"],
    "rg.hfov": ["视场角 (°)", "Field of view (°)"],
    "rg.range": ["监视距离 (米)", "Range (m)"],
    "rg.police_station": ["所属派出所", "Police station"],
    "rg.maintenance_unit": ["维护单位", "Maintenance unit"],
    "rg.agent_id": ["指定代理", "Pinned agent"],
    "rg.save": ["保存", "Save"],
    "rg.place": ["在地图上调整", "Adjust on the map"],
    "rg.close": ["关闭", "Close"],
    "rg.delete": ["删除", "Delete"],
    "rg.delete.confirm": ["删除设备 {id}（{name}）的档案？此操作不可撤销。", "Delete the record of {id} ({name})? This cannot be undone."],
    "rg.deleted": ["已删除 {id}", "Deleted {id}"],
    "rg.saved": ["已保存 {id}", "Saved {id}"],
    "rg.nochange": ["没有修改", "Nothing changed"],
    "rg.info": ["厂商 {m} · 型号 {model} · 固件 {fw} · 最近检测 {probe} · 更新于 {updated}", "maker {m} · model {model} · firmware {fw} · last probe {probe} · updated {updated}"],
    "rg.password.kept": ["已保存密码：留空则不变", "A password is stored: leave empty to keep it"],
    "rg.password.none": ["未保存密码", "No password stored"],
    "rg.password.again": [
      "地址已改：请重新输入密码（保存的密码不会跟到新地址）",
      "The address changed: enter the password again (a stored password never follows a camera)",
    ],
    "rg.import": ["导入", "Import"],
    "rg.import.hint": [
      "CSV（UTF-8 或 GB18030）或 XLSX；表头可用中文或英文字段名，每行按与接口相同的规则检查。",
      "CSV (UTF-8 or GB18030) or XLSX; headers in Chinese or as field names; every row is checked by the same rules as the API.",
    ],
    "rg.import.file": ["文件", "File"],
    "rg.import.dry": ["仅检查（不写入）", "Check only (write nothing)"],
    "rg.import.all": ["有错则全部不写", "Write nothing if any row is rejected"],
    "rg.import.go": ["导入", "Import"],
    "rg.import.pick": ["请选择文件", "Choose a file"],
    "rg.import.running": ["导入中…", "Importing…"],
    "rg.import.summary": [
      "共 {rows} 行：新增 {created}，更新 {updated}，未变 {unchanged}，拒绝 {rejected}",
      "{rows} rows: {created} created, {updated} updated, {unchanged} unchanged, {rejected} rejected",
    ],
    "rg.import.written": ["已写入", "written"],
    "rg.import.notwritten": ["未写入", "nothing written"],
    "rg.import.dryrun": ["（仅检查）", "(check only)"],
    "rg.import.row": ["行", "Row"],
    "rg.import.errors": ["问题", "Problems"],
    "rg.import.warnings": ["提示", "Warnings"],
    "rg.export": ["导出", "Export"],
    "rg.export.hint": [
      "按当前筛选（类型、状态、区划）导出；不含密码，可原样再导入。",
      "Exports what the filters (kind, status, area) select; never passwords; imports back unchanged.",
    ],
    "rg.export.format": ["格式", "Format"],
    "rg.export.lang": ["表头", "Headers"],
    "rg.export.go": ["导出", "Export"],
    "rg.export.running": ["导出中…", "Exporting…"],
    "rg.export.done": ["已下载 {name}（{kb} KB）", "Downloaded {name} ({kb} KB)"],
    "rg.checkpoints": ["卡口", "Checkpoints"],
    "kind.bullet": ["枪机", "bullet"],
    "kind.dome": ["半球", "dome"],
    "kind.ptz": ["球机", "PTZ"],
    "kind.turret": ["筒机", "turret"],
    "kind.fisheye": ["鱼眼", "fisheye"],
    "kind.face": ["人脸", "face"],
    "kind.checkpoint": ["卡口", "checkpoint"],
    "status.registered": ["已登记", "registered"],
    "status.online": ["在线", "online"],
    "status.offline": ["离线", "offline"],
    "status.fault": ["故障", "fault"],
    "life.in_use": ["在用", "in use"],
    "life.under_repair": ["维修", "under repair"],
    "life.removed": ["拆除", "removed"],
    "pc.1": ["一类点", "class 1"],
    "pc.2": ["二类点", "class 2"],
    "pc.3": ["三类点", "class 3"],
    "in.onvif_host": ["ONVIF 地址", "ONVIF host"],
    "in.onvif_port": ["ONVIF 端口", "ONVIF port"],
    "in.onvif_username": ["用户名", "Username"],
    "in.onvif_password": ["密码", "Password"],
    "in.rtsp_url": ["RTSP 地址", "RTSP URL"],
    "in.snapshot_url": ["抓图地址", "Snapshot URL"],
    // GA/T 1400 checkpoint attributes (codes and sources: docs/standards.md)
    "rg.col.tollgate": ["类型 / 用途", "Type / use"],
    "rg.col.lane_list": ["车道（出入城、限速）", "Lanes (city, limit)"],
    "tg.10": ["国际", "international"],
    "tg.20": ["省际", "inter-provincial"],
    "tg.30": ["市际", "inter-city"],
    "tg.31": ["市区", "urban"],
    "tg.40": ["县际", "inter-county"],
    "tg.41": ["县区", "county"],
    "tg.99": ["其他", "other"],
    "tu.80": ["治安", "public security"],
    "tu.81": ["交通", "traffic"],
    "tu.82": ["其他", "other"],
    "city.1": ["进城", "in"],
    "city.2": ["出城", "out"],
    "city.3": ["非进出城", "through"],
    "city.4": ["进出城", "in/out"],
  });

  const STATUS_COLOURS = { registered: "#878787", online: "#1a9850", offline: "#d73027", fault: "#b26a00" };
  const badge = (status) =>
    TW.el("span", { class: "tw-badge", style: "background:" + (STATUS_COLOURS[status] || TW.stateColour(status)) }, TW.t("status." + status));

  // ---- a paginated list: cursors[i] fetches page i (cursors[0] is the first page, null)
  function pager(prefix, load) {
    const st = { cursors: [null], i: 0 };
    const show = (next) => {
      $("#" + prefix + "-prev").disabled = st.i === 0;
      $("#" + prefix + "-next").disabled = !next;
      $("#" + prefix + "-page").textContent = TW.t("rg.page", { n: st.i + 1 });
      if (next) st.cursors[st.i + 1] = next;
      st.cursors.length = st.i + (next ? 2 : 1);
    };
    const go = async (i) => {
      st.i = i;
      show(await load(st.cursors[i]));
    };
    $("#" + prefix + "-prev").addEventListener("click", () => go(Math.max(0, st.i - 1)));
    $("#" + prefix + "-next").addEventListener("click", () => go(st.i + 1));
    return { first: () => go(0), again: () => go(st.i) };
  }

  // ---- cameras
  let cameras = [];
  let current = null; // the camera being edited, as the server last returned it
  const filters = () => ({
    q: $("#rg-q").value.trim(),
    kind: $("#rg-kind").value,
    status: $("#rg-status").value,
    area_code: $("#rg-area").value.trim(),
    lifecycle: $("#rg-lifecycle").value,
  });

  async function loadCameras(cursor) {
    $("#rg-list-error").textContent = "";
    const tb = $("#rg-table tbody");
    let page;
    try {
      page = await TW.api("/api/v1/cameras" + TW.qs(Object.assign(filters(), { limit: $("#rg-limit").value, cursor })));
    } catch (e) {
      $("#rg-list-error").textContent = TW.describe(e);
      tb.replaceChildren();
      return null;
    }
    cameras = page.items;
    $("#rg-count").textContent = TW.t("rg.count", { n: cameras.length });
    if (!cameras.length) {
      tb.replaceChildren(TW.el("tr", {}, TW.el("td", { colspan: 7, class: "tw-hint" }, TW.t("rg.empty"))));
      return page.next_cursor;
    }
    tb.replaceChildren(
      ...cameras.map((c) =>
        TW.el(
          "tr",
          {
            dataset: { id: c.device_id },
            tabindex: 0,
            class: current && current.device_id === c.device_id ? "selected" : null,
            onclick: () => edit(c.device_id),
            onkeydown: (ev) => (ev.key === "Enter" ? edit(c.device_id) : null),
          },
          TW.el("td", {}, TW.el("code", {}, c.device_id)),
          TW.el("td", {}, c.name),
          TW.el("td", {}, TW.t("kind." + c.kind)),
          TW.el("td", { title: c.status_reason || "" }, badge(c.status)),
          TW.el("td", {}, c.area_code),
          TW.el("td", {}, c.address || ""),
          TW.el("td", {}, TW.fmtTime(c.last_seen)),
        ),
      ),
    );
    return page.next_cursor;
  }

  // ---- edit one camera
  const FIELDS = [
    "name", "kind", "point_class", "lifecycle", "lon", "lat", "heading_deg", "hfov_deg", "range_m",
    "area_code", "address", "police_station", "maintenance_unit", "agent_id", "rtsp_url", "snapshot_url",
  ];
  const ONVIF = ["onvif_host", "onvif_port", "onvif_username"];
  const form = () => $("#rg-edit-form");
  const input = (name) => form().elements.namedItem(name);
  const str = (v) => (v === null || v === undefined ? "" : String(v));

  function originalOf(c) {
    const o = {};
    for (const f of FIELDS) o[f] = str(c[f]);
    o.onvif_host = c.onvif ? c.onvif.host : "";
    o.onvif_port = c.onvif ? String(c.onvif.port) : "";
    o.onvif_username = c.onvif ? c.onvif.username : "";
    return o;
  }

  function clearErrors() {
    TW.$$("#rg-edit .tw-field-error").forEach((e) => (e.textContent = ""));
    $("#rg-edit-error").textContent = "";
    $("#rg-edit-saved").textContent = "";
  }

  async function edit(id) {
    let c;
    try {
      c = await TW.api("/api/v1/cameras/" + encodeURIComponent(id));
    } catch (e) {
      return TW.toast(TW.describe(e), "error");
    }
    show(c);
    TW.$$("#rg-table tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.id === id));
    $("#rg-edit").scrollIntoView({ block: "start", behavior: "smooth" });
    input("name").focus({ preventScroll: true });
  }

  function show(c) {
    current = c;
    clearErrors();
    $("#rg-edit").hidden = false;
    $("#rg-edit-id").textContent = c.device_id;
    const b = $("#rg-edit-status");
    b.textContent = TW.t("status." + c.status);
    b.style.background = STATUS_COLOURS[c.status] || "";
    const o = originalOf(c);
    for (const [k, v] of Object.entries(o)) input(k).value = v;
    input("onvif_password").value = ""; // never filled from the server: it has no password to give
    $("#rg-place").href = "/console/install" + TW.qs({ device_id: c.device_id });
    $("#rg-edit-info").textContent = TW.t("rg.info", {
      m: c.manufacturer || "—",
      model: c.model || "—",
      fw: c.firmware || "—",
      probe: TW.fmtTime(c.last_probe_at),
      updated: TW.fmtTime(c.updated_at),
    });
    passwordHint();
  }

  const urlHost = (u) => {
    try {
      return u ? new URL(u).host.toLowerCase() : "";
    } catch (e) {
      return u;
    }
  };
  // the server's rule (password_must_be_repeated): a stored password never follows a camera elsewhere
  function addressMoved() {
    if (!current || !current.onvif || !current.onvif.has_password) return false;
    const o = originalOf(current);
    return (
      input("onvif_host").value.trim() !== o.onvif_host ||
      input("onvif_port").value.trim() !== o.onvif_port ||
      urlHost(input("rtsp_url").value.trim()) !== urlHost(o.rtsp_url) ||
      urlHost(input("snapshot_url").value.trim()) !== urlHost(o.snapshot_url)
    );
  }
  function passwordHint() {
    const h = $("#rg-e-password-hint");
    if (!current) return;
    const has = current.onvif && current.onvif.has_password;
    const again = addressMoved() && !input("onvif_password").value;
    h.textContent = TW.t(again ? "rg.password.again" : has ? "rg.password.kept" : "rg.password.none");
    h.className = again ? "tw-warn" : "tw-hint";
  }

  // only what changed goes in the PATCH; the ONVIF record travels whole when any of it changed
  function patchBody() {
    const o = originalOf(current);
    const b = {};
    for (const f of FIELDS) {
      const el = input(f);
      const v = el.value.trim();
      if (v === o[f]) continue;
      if (v === "") b[f] = null;
      else if (el.type === "number" || el.dataset.type === "int") b[f] = Number(v);
      else b[f] = v;
    }
    const pw = input("onvif_password").value;
    const onvifChanged = ONVIF.some((f) => input(f).value.trim() !== o[f]) || pw !== "";
    if (onvifChanged) {
      const host = input("onvif_host").value.trim();
      if (!host) b.onvif = null;
      else {
        b.onvif = { host, port: Number(input("onvif_port").value || 80), username: input("onvif_username").value.trim() };
        if (pw) b.onvif.password = pw;
      }
    }
    return b;
  }

  function showProblem(e) {
    const p = (e && e.problem) || {};
    const loose = [];
    for (const x of p.errors || []) {
      const el = TW.$$("#rg-edit .tw-field-error").find((s) => s.dataset.field === x.field);
      if (el) el.textContent = x.message;
      else loose.push((x.field && x.field !== "body" ? x.field + ": " : "") + x.message);
    }
    // when every error sits beside its field, the line under the form only names the problem
    const head = e.status === 403 ? TW.t("err.forbidden") : loose.length || !(p.errors || []).length ? e.message : p.title || e.message;
    $("#rg-edit-error").textContent = [head].concat(loose).join(" — ");
  }

  async function save(ev) {
    ev.preventDefault();
    if (!current) return;
    clearErrors();
    const b = patchBody();
    if (!Object.keys(b).length) return ($("#rg-edit-saved").textContent = TW.t("rg.nochange"));
    $("#rg-save").disabled = true;
    try {
      const c = await TW.api("/api/v1/cameras/" + encodeURIComponent(current.device_id), { method: "PATCH", json: b });
      show(c);
      $("#rg-edit-saved").textContent = TW.t("rg.saved", { id: c.device_id });
      await cams.again();
    } catch (e) {
      if (e instanceof TW.ApiError) showProblem(e);
      else $("#rg-edit-error").textContent = String(e);
    } finally {
      $("#rg-save").disabled = false;
    }
  }

  async function remove() {
    if (!current) return;
    if (!window.confirm(TW.t("rg.delete.confirm", { id: current.device_id, name: current.name }))) return;
    try {
      await TW.api("/api/v1/cameras/" + encodeURIComponent(current.device_id), { method: "DELETE" });
      TW.toast(TW.t("rg.deleted", { id: current.device_id }));
      current = null;
      $("#rg-edit").hidden = true;
      await cams.again();
    } catch (e) {
      $("#rg-edit-error").textContent = TW.describe(e);
    }
  }

  // ---- import: the sheet goes up as multipart; the per-row report comes back
  async function doImport(ev) {
    ev.preventDefault();
    const out = $("#rg-import-report");
    const file = $("#rg-import-file").files[0];
    if (!file) return out.replaceChildren(TW.el("p", { class: "tw-error" }, TW.t("rg.import.pick")));
    const fd = new FormData();
    fd.append("file", file, file.name);
    const q = TW.qs({ dry_run: $("#rg-import-dry").checked || null, all_or_nothing: $("#rg-import-all").checked || null });
    $("#rg-import").disabled = true;
    out.replaceChildren(TW.el("p", { class: "tw-hint" }, TW.t("rg.import.running")));
    try {
      const r = await TW.api("/api/v1/cameras/import" + q, { method: "POST", body: fd });
      out.replaceChildren(...report(r));
      if (r.written) await cams.first();
    } catch (e) {
      out.replaceChildren(TW.el("p", { class: "tw-error", id: "rg-import-error" }, TW.describe(e)));
    } finally {
      $("#rg-import").disabled = false;
    }
  }

  function report(r) {
    const parts = [
      TW.el(
        "p",
        {
          id: "rg-import-summary",
          class: r.rejected.length ? "tw-warn" : "tw-ok",
          dataset: { created: r.created, updated: r.updated, unchanged: r.unchanged, rejected: r.rejected.length, written: r.written },
        },
        TW.t("rg.import.summary", { rows: r.rows, created: r.created, updated: r.updated, unchanged: r.unchanged, rejected: r.rejected.length }),
        " · ",
        TW.t(r.written ? "rg.import.written" : "rg.import.notwritten"),
        r.dry_run ? " " + TW.t("rg.import.dryrun") : "",
      ),
    ];
    if (r.rejected.length) {
      parts.push(
        TW.el(
          "div",
          { class: "tw-table-wrap" },
          TW.el(
            "table",
            { id: "rg-import-rejected" },
            TW.el("thead", {}, TW.el("tr", {}, TW.el("th", {}, TW.t("rg.import.row")), TW.el("th", {}, TW.t("rg.col.device_id")), TW.el("th", {}, TW.t("rg.import.errors")))),
            TW.el(
              "tbody",
              {},
              r.rejected.map((x) =>
                TW.el(
                  "tr",
                  { dataset: { row: x.row } },
                  TW.el("td", {}, x.row),
                  TW.el("td", {}, x.device_id || "—"),
                  TW.el("td", {}, TW.el("ul", { class: "tw-plain" }, x.errors.map((er) => TW.el("li", {}, (er.field ? er.field + ": " : "") + er.message)))),
                ),
              ),
            ),
          ),
        ),
      );
    }
    if (r.warnings && r.warnings.length) {
      parts.push(TW.el("p", { class: "tw-hint" }, TW.t("rg.import.warnings")));
      parts.push(TW.el("ul", { id: "rg-import-warnings" }, r.warnings.map((w) => TW.el("li", {}, w))));
    }
    return parts;
  }

  // ---- export: fetched with the token, handed to the browser as a Blob link
  async function doExport(ev) {
    ev.preventDefault();
    const f = filters();
    const q = TW.qs({ format: $("#rg-export-format").value, lang: $("#rg-export-lang").value, kind: f.kind, status: f.status, area_code: f.area_code });
    const st = $("#rg-export-status");
    st.className = "tw-hint";
    st.textContent = TW.t("rg.export.running");
    $("#rg-export").disabled = true;
    try {
      const r = await TW.api("/api/v1/cameras/export" + q, { raw: true });
      const blob = await r.blob();
      const m = /filename="?([^";]+)"?/.exec(r.headers.get("Content-Disposition") || "");
      const name = m ? m[1] : "cameras." + $("#rg-export-format").value;
      const url = URL.createObjectURL(blob);
      const a = TW.el("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      st.textContent = TW.t("rg.export.done", { name, kb: (blob.size / 1024).toFixed(1) });
    } catch (e) {
      st.className = "tw-error";
      st.textContent = TW.describe(e);
    } finally {
      $("#rg-export").disabled = false;
    }
  }

  // ---- checkpoints (read here; edited through the API)
  const tollgate = (p) =>
    [p.tollgate_type && TW.t("tg." + p.tollgate_type), p.tollgate_use && TW.t("tu." + p.tollgate_use)]
      .filter(Boolean)
      .join(" / ");
  const laneText = (l) =>
    [String(l.lane_no), l.city_pass && TW.t("city." + l.city_pass), l.speed_limit_kmh && l.speed_limit_kmh + " km/h"]
      .filter(Boolean)
      .join(" ");
  async function loadCheckpoints(cursor) {
    const tb = $("#rg-checkpoints tbody");
    let page;
    try {
      page = await TW.api("/api/v1/checkpoints" + TW.qs({ area_code: $("#rg-area").value.trim(), limit: 50, cursor }));
    } catch (e) {
      tb.replaceChildren(TW.el("tr", {}, TW.el("td", { colspan: 10, class: "tw-error" }, TW.describe(e))));
      return null;
    }
    $("#rg-cp-count").textContent = TW.t("rg.count", { n: page.items.length });
    if (!page.items.length) {
      tb.replaceChildren(TW.el("tr", {}, TW.el("td", { colspan: 10, class: "tw-hint" }, TW.t("rg.empty"))));
      return page.next_cursor;
    }
    tb.replaceChildren(
      ...page.items.map((p) =>
        TW.el(
          "tr",
          { dataset: { id: p.checkpoint_id } },
          TW.el("td", {}, TW.el("code", {}, p.checkpoint_id)),
          TW.el("td", {}, p.name),
          TW.el("td", {}, p.road || ""),
          TW.el("td", {}, p.lanes),
          TW.el("td", {}, Math.round(p.direction_deg)),
          TW.el("td", { title: p.status_reason || "" }, badge(p.status)),
          TW.el("td", {}, p.area_code),
          TW.el("td", {}, p.camera_ids.length),
          TW.el("td", {}, tollgate(p)),
          TW.el("td", { class: "tw-lanes" }, (p.lane_list || []).map(laneText).join(" · ")),
        ),
      ),
    );
    return page.next_cursor;
  }

  let cams = null;
  TW.ready(() => {
    cams = pager("rg", loadCameras);
    const cps = pager("rg-cp", loadCheckpoints);
    $("#rg-filters").addEventListener("submit", (ev) => {
      ev.preventDefault();
      cams.first();
      cps.first();
    });
    for (const id of ["#rg-kind", "#rg-status", "#rg-lifecycle", "#rg-limit"]) $(id).addEventListener("change", () => cams.first());
    $("#rg-edit-form").addEventListener("submit", save);
    $("#rg-edit-form").addEventListener("input", passwordHint);
    $("#rg-close").addEventListener("click", () => {
      current = null;
      $("#rg-edit").hidden = true;
      TW.$$("#rg-table tbody tr.selected").forEach((tr) => tr.classList.remove("selected"));
    });
    $("#rg-delete").addEventListener("click", remove);
    $("#rg-import-form").addEventListener("submit", doImport);
    $("#rg-export-form").addEventListener("submit", doExport);
    document.addEventListener("tw:lang", () => {
      cams.again();
      cps.again();
    });
    cams.first();
    cps.first();
  });
})();
