// The console's map: Leaflet over a blank background, tiles only from TIANWANG_MAP_TILE_URL.
// TW.map.create(element) -> a map with named GeoJSON layers; camera sectors are drawn as polygons.
// TW.map.fetchAll(path, params, opts) pages through a list route; TW.map.cameraSectors / cameraPoints /
// placesGeoJSON turn registry records into GeoJSON (the API gives roads and coverage answers as GeoJSON
// already, devices and areas as records).
"use strict";
(function () {
  const TW = window.TW;
  const STATE_COLOURS = {
    online: "#1a9850",
    degraded: "#fdae61",
    fault: "#f08a24",
    offline: "#d73027",
    auth_failed: "#7b3294",
    registered: "#878787",
    unknown: "#878787",
  };
  TW.stateColour = (s) => STATE_COLOURS[s] || "#4575b4";

  // a camera's view sector as a lon/lat ring: apex, arc from heading-hfov/2 to heading+hfov/2
  TW.sectorRing = (lon, lat, headingDeg, hfovDeg, rangeM) => {
    const kx = 111320 * Math.cos((lat * Math.PI) / 180);
    const ky = 110574;
    const ring = [[lon, lat]];
    const n = 12;
    for (let i = 0; i <= n; i++) {
      const b = ((headingDeg - hfovDeg / 2 + (hfovDeg * i) / n) * Math.PI) / 180;
      ring.push([lon + (rangeM * Math.sin(b)) / kx, lat + (rangeM * Math.cos(b)) / ky]);
    }
    ring.push([lon, lat]);
    return ring;
  };

  // every leaf layer (polygon, line, marker) under a layer or layer group
  function leafCount(layer) {
    if (!layer) return 0;
    if (!layer.getLayers) return 1;
    return layer.getLayers().reduce((n, l) => n + leafCount(l), 0);
  }

  function create(el, opts) {
    opts = opts || {};
    if (!window.L) {
      el.textContent = "Leaflet is not installed (make install)";
      return null;
    }
    const map = L.map(el, { preferCanvas: true, zoomControl: true, attributionControl: !!TW.config.tile_url });
    if (TW.config.tile_url) {
      // Leaflet shows the attribution as HTML: the configured credit line is shown as text
      L.tileLayer(TW.config.tile_url, { maxZoom: 20, attribution: TW.escapeHtml(TW.config.tile_attribution || "") }).addTo(map);
    }
    map.setView(opts.center || [22.54, 114.05], opts.zoom || 12);
    const layers = {};
    const control = L.control.layers(null, {}, { collapsed: !!opts.collapsed }).addTo(map);
    const api = {
      leaflet: map,
      // replace layer `name` with a GeoJSON object; style/popup/point options as in L.geoJSON
      // (plus `label`: the name shown in the layer switch)
      set(name, geojson, options) {
        if (layers[name]) {
          map.removeLayer(layers[name]);
          control.removeLayer(layers[name]);
        }
        const layer = L.geoJSON(geojson, options || {});
        layers[name] = layer;
        layer.addTo(map);
        // the layer switch puts its names in as HTML, and a label may hold data (an area's name, a plate)
        control.addOverlay(layer, TW.escapeHtml(options && options.label ? options.label : name));
        return layer;
      },
      layer(name) {
        return layers[name] || null;
      },
      // how many features layer `name` draws (0 when it is not there)
      count(name) {
        return leafCount(layers[name]);
      },
      names() {
        return Object.keys(layers);
      },
      clear(name) {
        if (layers[name]) {
          map.removeLayer(layers[name]);
          control.removeLayer(layers[name]);
          delete layers[name];
        }
      },
      // fit the view to every layer drawn (or to the ones named)
      fit(names) {
        let b = null;
        for (const [k, l] of Object.entries(layers)) {
          if (names && !names.includes(k)) continue;
          if (!l.getBounds) continue;
          const lb = l.getBounds();
          if (lb.isValid()) b = b ? b.extend(lb) : L.latLngBounds(lb.getSouthWest(), lb.getNorthEast());
        }
        if (b) map.fitBounds(b, { padding: [20, 20], maxZoom: 17 });
      },
      onClick(fn) {
        map.on("click", (e) => fn(e.latlng.lng, e.latlng.lat, e));
      },
    };
    setTimeout(() => map.invalidateSize(), 0);
    return api;
  }

  // Page through a list route (`limit` ≤ 1000, `next_cursor`) until `max` items; -> {items, more}
  // (`more`: the registry holds more than was fetched). opts: {max, key ("items"; roads: "features"),
  // signal, progress(n)}.
  async function fetchAll(path, params, opts) {
    opts = opts || {};
    const max = opts.max || 20000;
    const key = opts.key || "items";
    const items = [];
    let cursor = null;
    do {
      const limit = Math.min(1000, max - items.length);
      const q = Object.assign({}, params || {}, { limit, cursor });
      const page = await TW.api(path + TW.qs(q), { signal: opts.signal });
      for (const it of page[key] || []) items.push(it);
      cursor = page.next_cursor || null;
      if (opts.progress) opts.progress(items.length);
    } while (cursor && items.length < max);
    return { items, more: !!cursor };
  }

  const CAMERA_PROPS = ["device_id", "name", "kind", "status", "status_reason", "lifecycle", "area_code",
    "last_seen", "heading_deg", "hfov_deg", "range_m", "point_class", "address"];
  function pick(rec, keys) {
    const o = {};
    for (const k of keys) o[k] = rec[k] === undefined ? null : rec[k];
    return o;
  }
  // camera records (GET /api/v1/cameras items) -> view sectors as GeoJSON polygons
  function cameraSectors(cameras) {
    return {
      type: "FeatureCollection",
      features: cameras.map((c) => ({
        type: "Feature",
        id: c.device_id,
        properties: pick(c, CAMERA_PROPS),
        geometry: { type: "Polygon", coordinates: [TW.sectorRing(c.lon, c.lat, c.heading_deg, c.hfov_deg, c.range_m)] },
      })),
    };
  }
  // records with lon/lat (cameras, checkpoints, fences) -> GeoJSON points with the record as properties
  function points(records, idKey) {
    return {
      type: "FeatureCollection",
      features: records.map((r) => ({
        type: "Feature",
        id: r[idKey || "device_id"],
        properties: r,
        geometry: { type: "Point", coordinates: [r.lon, r.lat] },
      })),
    };
  }
  // records with a `geometry` (areas, key sites) -> GeoJSON features with the other fields as properties
  function places(records) {
    return {
      type: "FeatureCollection",
      features: records
        .filter((r) => r.geometry)
        .map((r) => {
          const props = Object.assign({}, r);
          delete props.geometry;
          return { type: "Feature", id: r.code || r.id, properties: props, geometry: r.geometry };
        }),
    };
  }
  // a popup body: rows of [label, value] as a small definition table (text only, never HTML)
  function popup(title, rows) {
    return TW.el(
      "div",
      { class: "tw-popup" },
      TW.el("strong", {}, title),
      TW.el(
        "table",
        {},
        rows
          .filter((r) => r[1] !== null && r[1] !== undefined && r[1] !== "")
          .map((r) => TW.el("tr", {}, TW.el("th", {}, r[0]), TW.el("td", {}, String(r[1]))))
      )
    );
  }
  TW.map = { create, fetchAll, cameraSectors, points, places, popup, leafCount };
})();
