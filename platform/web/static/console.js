// The console's shared code: the token, API calls with problem-JSON errors, labels in 中文 / English.
// Pages call TW.ready(fn): fn(me) runs once the user is logged in; me = GET /api/v1/me.
"use strict";
(function () {
  const KEY = "tw.token";
  const LANG = "tw.lang";
  const TW = (window.TW = {});
  TW.config = JSON.parse(document.getElementById("tw-config").textContent || "{}");

  // ---- labels: zh first, en beside; pages add their own with TW.labels({...})
  const L = {
    logout: ["退出", "Log out"],
    "login.title": ["登录", "Log in"],
    "login.token": ["访问令牌 (token)", "Access token"],
    "login.submit": ["登录", "Log in"],
    "login.hint": [
      "令牌由管理员用 tianwang token create 发放；make demo 会打印各角色的令牌。",
      "An admin issues tokens with `tianwang token create`; `make demo` prints one per role.",
    ],
    "login.bad": ["令牌无效或已吊销", "The token is not valid or was revoked"],
    "home.title": ["控制台", "Console"],
    "page.coverage": ["覆盖总览", "Coverage"],
    "page.map": ["地图", "Map"],
    "page.install": ["安装调试", "Installer"],
    "page.investigation": ["研判", "Investigation"],
    "page.registry": ["设备档案", "Registry"],
    "page.coverage.about": ["在线率、完好率、故障清单", "Online and intact rates, the fault list"],
    "page.map.about": ["道路、区域、点位、盲区", "Roads, areas, devices, blind spots"],
    "page.install.about": ["登记、检测、定位一台摄像机", "Register, probe and place a camera"],
    "page.investigation.about": ["三轨查询、布控、告警", "Trajectories, hotlists, alarms"],
    "page.registry.about": ["一机一档：检索、编辑、导入导出", "Search, edit, import and export devices"],
    "role.admin": ["管理员", "admin"],
    "role.staff": ["技防", "staff"],
    "role.investigator": ["研判", "investigator"],
    "role.installer": ["安装", "installer"],
    "role.agent": ["边缘代理", "agent"],
    "err.forbidden": ["无权限", "Not allowed for your role"],
    "err.network": ["无法连接服务器", "Cannot reach the server"],
    loading: ["加载中…", "Loading…"],
    none: ["无", "none"],
  };
  TW.labels = (more) => Object.assign(L, more);
  TW.lang = () => localStorage.getItem(LANG) || "zh";
  TW.t = (key, vars) => {
    const pair = L[key];
    let s = pair ? pair[TW.lang() === "en" ? 1 : 0] : key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll("{" + k + "}", String(v));
    return s;
  };
  TW.translate = (root) => {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      if (L[el.dataset.i18n]) el.textContent = TW.t(el.dataset.i18n);
    });
    (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = TW.t(el.dataset.i18nPlaceholder);
    });
    document.documentElement.lang = TW.lang() === "en" ? "en" : "zh-CN";
    const b = document.getElementById("tw-lang");
    if (b) b.textContent = TW.lang() === "en" ? "中文" : "EN";
  };

  // ---- DOM helpers
  TW.$ = (sel, root) => (root || document).querySelector(sel);
  TW.$$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  // el("tr", {class: "x", onclick: fn}, child, "text", ...): text is always set as text, never as HTML.
  // An `on…` attribute must be a function (a string would be an inline handler), and a link or picture
  // address must be http(s), blob or relative (never javascript:).
  const SAFE_URL = /^(?:https?:|blob:|\/|\.|[^:]*$)/i;
  TW.el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (/^on/i.test(k)) {
        if (typeof v !== "function") throw new TypeError("TW.el: " + k + " must be a function");
        e.addEventListener(k.slice(2), v);
      } else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k === "style") e.style.cssText = String(v); // through the CSSOM: the CSP refuses style attributes
      else if ((k === "href" || k === "src") && !SAFE_URL.test(String(v).trim())) continue;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  };
  // for the few places a library insists on an HTML string (Leaflet's layer switch and attribution):
  // the text with every markup character escaped
  TW.escapeHtml = (s) =>
    String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  TW.fmtTime = (iso) => {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString(TW.lang() === "en" ? "en-GB" : "zh-CN", { hour12: false });
  };
  TW.pct = (x) => (x === null || x === undefined ? "—" : (100 * x).toFixed(1) + "%");
  TW.toast = (msg, kind) => {
    const t = document.getElementById("tw-toast");
    t.textContent = msg;
    t.className = "tw-toast show " + (kind || "");
    clearTimeout(TW._toastTimer);
    TW._toastTimer = setTimeout(() => (t.className = "tw-toast"), 6000);
  };

  // ---- the API: Bearer token; errors become ApiError with the problem's detail
  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem || {};
    }
  }
  TW.ApiError = ApiError;
  TW.token = () => sessionStorage.getItem(KEY) || "";
  TW.api = async (path, opts) => {
    opts = Object.assign({ method: "GET" }, opts || {});
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (TW.token()) headers.Authorization = "Bearer " + TW.token();
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    let r;
    try {
      r = await fetch(path, { method: opts.method, headers, body, signal: opts.signal });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, { detail: TW.t("err.network") });
    }
    if (r.status === 401) {
      sessionStorage.removeItem(KEY);
      showLogin(TW.t("login.bad"));
      throw new ApiError(401, { detail: TW.t("login.bad") });
    }
    if (opts.raw) {
      if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
      return r;
    }
    const text = await r.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = { detail: text };
    }
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  };
  // a problem as one readable line, with the first field errors
  TW.describe = (e) => {
    if (!(e instanceof ApiError)) return String(e);
    const p = e.problem || {};
    const errs = (p.errors || []).slice(0, 3).map((x) => (x.field ? x.field + ": " : "") + (x.message || x.msg || ""));
    return [e.status === 403 ? TW.t("err.forbidden") : e.message].concat(errs).join(" — ");
  };
  // ---- query strings: TW.qs({a: 1, b: null}) -> "?a=1"
  TW.qs = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, v);
    const s = q.toString();
    return s ? "?" + s : "";
  };
  // datetime-local input value <-> ISO with the browser's offset
  TW.toIso = (local) => (local ? new Date(local).toISOString() : "");
  TW.toLocalInput = (d) => {
    const z = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
    return z.toISOString().slice(0, 16);
  };

  // ---- log in / out; pages wait for TW.ready
  const waiting = [];
  TW.me = null;
  TW.ready = (fn) => (TW.me ? fn(TW.me) : waiting.push(fn));
  function showLogin(msg) {
    document.getElementById("tw-main").hidden = true;
    document.getElementById("tw-login").hidden = false;
    document.getElementById("tw-logout").hidden = true;
    document.getElementById("tw-who").textContent = "";
    document.getElementById("tw-login-error").textContent = msg || "";
  }
  function filterByRole(role) {
    TW.$$("[data-roles]").forEach((el) => {
      el.hidden = !el.dataset.roles.split(" ").includes(role);
    });
  }
  async function start() {
    if (!TW.token()) return showLogin();
    let me;
    try {
      me = await TW.api("/api/v1/me");
    } catch (e) {
      return showLogin(e instanceof ApiError && e.status === 401 ? TW.t("login.bad") : TW.describe(e));
    }
    TW.me = me;
    document.getElementById("tw-login").hidden = true;
    document.getElementById("tw-main").hidden = false;
    document.getElementById("tw-logout").hidden = false;
    document.getElementById("tw-who").textContent = me.name + " · " + TW.t("role." + me.role);
    filterByRole(me.role);
    TW.translate();
    while (waiting.length) {
      try {
        waiting.shift()(me);
      } catch (e) {
        console.error(e);
        TW.toast(String(e), "error");
      }
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    TW.translate();
    document.getElementById("tw-login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById("tw-token").value.trim());
      document.getElementById("tw-token").value = "";
      start();
    });
    document.getElementById("tw-logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      location.reload();
    });
    document.getElementById("tw-lang").addEventListener("click", () => {
      localStorage.setItem(LANG, TW.lang() === "en" ? "zh" : "en");
      TW.translate();
      document.dispatchEvent(new Event("tw:lang"));
    });
    start();
  });
})();
