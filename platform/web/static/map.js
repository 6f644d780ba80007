// The console's map: Leaflet over a blank background, tiles only from TIANWANG_MAP_TILE_URL.
// TW.map.create(element) -> a map with named GeoJSON layers; camera sectors are drawn as polygons.
"use strict";
(function () {
  const TW = window.TW;
  const STATE_COLOURS = {
    online: "#1a9850",
    degraded: "#fdae61",
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

  function create(el, opts) {
    opts = opts || {};
    if (!window.L) {
      el.textContent = "Leaflet is not installed (make install)";
      return null;
    }
    const map = L.map(el, { preferCanvas: true, zoomControl: true, attributionControl: !!TW.config.tile_url });
    if (TW.config.tile_url) {
      L.tileLayer(TW.config.tile_url, { maxZoom: 20, attribution: TW.config.tile_attribution || "" }).addTo(map);
    }
    map.setView(opts.center || [22.54, 114.05], opts.zoom || 12);
    const layers = {};
    const control = L.control.layers(null, {}, { collapsed: false }).addTo(map);
    const api = {
      leaflet: map,
      // replace layer `name` with a GeoJSON object; style/popup/point options as in L.geoJSON
      set(name, geojson, options) {
        if (layers[name]) {
          map.removeLayer(layers[name]);
          control.removeLayer(layers[name]);
        }
        const layer = L.geoJSON(geojson, options || {});
        layers[name] = layer;
        layer.addTo(map);
        control.addOverlay(layer, options && options.label ? options.label : name);
        return layer;
      },
      layer(name) {
        return layers[name] || null;
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
        if (b) map.fitBounds(b, { padding: [20, 20] });
      },
      onClick(fn) {
        map.on("click", (e) => fn(e.latlng.lng, e.latlng.lat, e));
      },
    };
    setTimeout(() => map.invalidateSize(), 0);
    return api;
  }
  TW.map = { create };
})();
