"""Day plans → observations: checkpoint passes, face sightings and phone sightings in the wire shapes of
docs/api.md, produced one window of simulated time at a time (bounded memory), with the ground truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulator.city import City
from simulator.movement.model import (
    BUS,
    COMMUTER,
    DAY,
    EV_CP,
    EV_FACE,
    EV_FENCE,
    F64,
    I64,
    NIGHT,
    TZ_OFFSET_S,
    MovementParams,
    Population,
    Roads,
    Templates,
    build_population,
    build_roads,
    build_templates,
    finish_population,
    template_pairs,
    to_lonlat,
)

KINDS = ("passes", "faces", "phones")
# OCR confusions of plate readers: O/0, I/1, B/8, D/0 (and a character dropped)
OCR_SUBST = {"0": "OD", "1": "I", "8": "B", "B": "8", "D": "0"}


@dataclass
class Batch:
    """One bounded batch of one kind, in the wire shape of POST /api/v1/ingest/{kind}."""

    kind: str  # passes | faces | phones
    day: int
    items: list[dict[str, Any]]


@dataclass
class Truth:
    """What really happened, for measuring fusion and analyses. Filled as the batches are produced:
    read it after the iterator is exhausted."""

    params: dict[str, Any]
    run: str
    owners: list[dict[str, Any]] = field(default_factory=list)
    clones: list[dict[str, Any]] = field(default_factory=list)
    companions: list[dict[str, Any]] = field(default_factory=list)
    night_active: list[dict[str, Any]] = field(default_factory=list)
    stay_points: list[dict[str, Any]] = field(default_factory=list)
    first_entries: list[dict[str, Any]] = field(default_factory=list)
    ocr_errors: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("passes", "faces", "phones", "passes_missed", "ocr_errors", "trips"), 0
        )
    )
    fences: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """truth.json: everything but the bulky owner list and OCR errors (written beside it as JSONL)."""
        d = asdict(self)
        d.pop("owners")
        d.pop("ocr_errors")
        d["files"] = {"owners": "owners.jsonl.gz", "ocr_errors": "ocr_errors.jsonl.gz"}
        return d


@dataclass
class Trips:
    start: F64
    tmpl: I64
    rev: NDArray[np.bool_]
    fac: F64
    veh: I64
    person: I64
    tag: I64  # companion group or -1
    entry: NDArray[np.bool_]  # a visitor's first entry into the city
    end: F64

    @classmethod
    def empty(cls) -> Trips:
        z = np.zeros(0)
        zi = np.zeros(0, np.int64)
        zb = np.zeros(0, bool)
        return cls(z, zi, zb, z, zi, zi, zi, zb, z)

    def take(self, m: NDArray[Any]) -> Trips:
        return Trips(*(getattr(self, f)[m] for f in self.__dataclass_fields__))

    @classmethod
    def concat(cls, parts: list[Trips]) -> Trips:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))


class Simulation:
    """The prepared world: roads, people, routes. `batches()` runs the days."""

    def __init__(self, city: City, mp: MovementParams) -> None:
        self.city = city
        self.mp = mp
        self.rng = np.random.default_rng([mp.seed, 0x4D4F5645])
        self.roads: Roads = build_roads(city, self.rng, mp.fences)
        if not self.roads.cp_ids:
            raise ValueError("the city has no checkpoints: vehicles would never be seen")
        self.pop: Population = build_population(city, self.roads, mp, self.rng)
        o, h = template_pairs(self.pop, self.roads)
        self.tm: Templates = build_templates(self.roads, self.pop.hub_nodes, o, h)
        finish_population(self.pop, self.roads, self.tm, self.rng)
        self.run = hashlib.sha256(
            json.dumps([repr(mp), city.params.__repr__()], sort_keys=True).encode()
        ).hexdigest()[:8]
        self.truth = Truth(params={k: str(v) for k, v in asdict(mp).items()}, run=self.run)
        self.truth.fences = self.roads.fence_bodies
        self._lookups()
        self._truth_static()
        self._plate_arr = np.array(self.pop.plate, dtype=object)
        self._cp_ids = np.array(self.roads.cp_ids, dtype=object)
        self._face_ids = np.array(self.roads.face_ids, dtype=object)
        self._fence_ids = np.array([f["fence_id"] for f in self.roads.fence_bodies], dtype=object)
        self._person_ids = np.array(self.pop.person_ids, dtype=object)
        self._clone_veh = {v for pair in self.pop.clones for v in pair}
        self._entry_truth: dict[int, dict[str, Any]] = {}

    # ---- routes per person
    def _lookups(self) -> None:
        pop, tm, hn = self.pop, self.tm, self.pop.hub_nodes
        n = pop.n_people
        w = np.maximum(pop.work, 0)
        self.t_commute = np.where(pop.work >= 0, tm.lookup(pop.home, w), -1)
        self.t_errand = tm.lookup(pop.home, pop.errand)
        self.t_night = tm.lookup(pop.home, pop.night_hub)
        s = np.maximum(pop.stay, 0)
        self.t_to_stay = np.where(pop.stay >= 0, tm.lookup(hn[w], s), -1)
        self.t_from_stay = np.where(pop.stay >= 0, tm.lookup(hn[s], w), -1)
        dest = np.where(pop.work >= 0, pop.work, pop.errand)
        self.t_entry = np.where(pop.entry_day >= 0, tm.lookup(np.maximum(pop.entry_origin, 0), dest), -1)
        self.fleet_t = [tm.lookup(hn[np.array(r)], np.roll(np.array(r), -1)) for r in pop.fleet_route]
        self.slept_stay = np.zeros(n, bool)
        self.carry = Trips.empty()
        kcount = np.diff(pop.veh_ptr)
        self._kcount = kcount

    def _truth_static(self) -> None:
        pop, roads, city, tr = self.pop, self.roads, self.city, self.truth
        hlon, hlat = to_lonlat(city, roads.xy)

        def place(node: int) -> dict[str, float]:
            return {"lon": round(float(hlon[node]), 7), "lat": round(float(hlat[node]), 7), "node": int(node)}

        def subject(p: int) -> dict[str, Any]:
            return {
                "person_id": pop.person_ids[p],
                "vehicles": [pop.vehicle_ids[v] for v in pop.vehicles_of(p)],
                "plates": [pop.plate[v] for v in pop.vehicles_of(p)],
                "imsis": [pop.imsi[k] for k in pop.phones_of(p)],
            }

        roles = {0: "commuter", 1: "night_active", 2: "driver"}
        for p in range(pop.n_people):
            tr.owners.append(
                {
                    "person_id": pop.person_ids[p],
                    "role": roles[int(pop.role[p])],
                    "home": place(int(pop.home[p])),
                    "vehicles": [
                        {
                            "vehicle_id": pop.vehicle_ids[v],
                            "plate_no": pop.plate[v],
                            "plate_color": pop.plate_color[v],
                            "vehicle_type": pop.vtype[v],
                            "vehicle_color": pop.vcolor[v],
                            "kind": ("private", "taxi", "bus")[int(pop.vkind[v])],
                        }
                        for v in pop.vehicles_of(p)
                    ],
                    "phones": [
                        {"imsi": pop.imsi[k], "imei": pop.imei[k], "mac": pop.mac[k]}
                        for k in pop.phones_of(p)
                    ],
                }
            )
        for va, vb in pop.clones:
            tr.clones.append(
                {
                    "plate_no": pop.plate[va],
                    "plate_color": pop.plate_color[va],
                    "genuine": {
                        "vehicle_id": pop.vehicle_ids[va],
                        "person_id": pop.person_ids[pop.driver[va]],
                        "home": place(int(pop.home[pop.driver[va]])),
                    },
                    "clone": {
                        "vehicle_id": pop.vehicle_ids[vb],
                        "person_id": pop.person_ids[pop.driver[vb]],
                        "home": place(int(pop.home[pop.driver[vb]])),
                    },
                    "tracks": {pop.vehicle_ids[va]: [], pop.vehicle_ids[vb]: []},
                }
            )
        for gi, g in enumerate(pop.groups):
            members = g["members"]
            t = g["template"]
            a, b = self.tm.ptr[t], self.tm.ptr[t + 1]
            cps = [
                self.roads.cp_ids[int(c)]
                for c, k in zip(self.tm.dev[a:b], self.tm.kind[a:b], strict=True)
                if k == EV_CP
            ]
            tr.companions.append(
                {
                    "group": gi,
                    "persons": [pop.person_ids[p] for p in members],
                    "vehicles": [pop.vehicle_ids[pop.vehicles_of(p)[0]] for p in members],
                    "plates": [pop.plate[pop.vehicles_of(p)[0]] for p in members],
                    "offsets_s": [round(x, 1) for x in g["offsets"]],
                    "window_s": self.mp.companion_window_s,
                    "route_checkpoints": cps,
                    "home": place(int(pop.home[members[0]])),
                    "outings": [],
                    "passes": [],
                }
            )
        self._night_rows = {}
        for p in np.flatnonzero(pop.role == NIGHT).tolist():
            row = subject(p) | {
                "home": place(int(pop.home[p])),
                "haunt": place(int(pop.hub_nodes[pop.night_hub[p]])),
                "nights": [],
            }
            tr.night_active.append(row)
            self._night_rows[p] = row
        self._stay_rows = {}
        for p in np.flatnonzero(pop.stay >= 0).tolist():
            row = subject(p) | {
                "home": place(int(pop.home[p])),
                "work": place(int(pop.hub_nodes[pop.work[p]])),
                "second_place": place(int(pop.hub_nodes[pop.stay[p]])),
                "nights": [],
            }
            tr.stay_points.append(row)
            self._stay_rows[p] = row

    # ---- one day's trips
    def plan_day(self, d: int) -> Trips:
        pop, mp, tm = self.pop, self.mp, self.tm
        rng = np.random.default_rng([mp.seed, 0x504C414E, d])
        n = pop.n_people
        d0 = mp.t0 + d * DAY
        weekday = (mp.start.weekday() + d) % 7 < 5
        k = np.maximum(self._kcount, 1)
        vi = np.minimum(pop.veh_ptr[:-1] + d % k, max(len(pop.veh_idx) - 1, 0))
        veh = np.where(self._kcount > 0, pop.veh_idx[vi] if len(pop.veh_idx) else -1, -1)
        active = (pop.entry_day < 0) | (pop.entry_day <= d)
        fac = np.where(veh >= 0, rng.uniform(0.95, 1.3, n), rng.uniform(1.5, 2.0, n))
        parts: list[Trips] = []

        def add(
            sel: I64,
            start: F64,
            tmpl: I64,
            rev: bool | NDArray[np.bool_],
            tag: I64 | None = None,
            entry: NDArray[np.bool_] | None = None,
        ) -> F64:
            """Trips for persons `sel`; returns their arrival times."""
            tmpl = np.asarray(tmpl, np.int64)
            f = fac[sel]
            end = start + tm.dur[tmpl] * f
            m = len(sel)
            parts.append(
                Trips(
                    start=np.asarray(start, float),
                    tmpl=tmpl,
                    rev=np.broadcast_to(np.asarray(rev, bool), (m,)).copy(),
                    fac=f,
                    veh=veh[sel],
                    person=sel.astype(np.int64),
                    tag=np.full(m, -1, np.int64) if tag is None else tag,
                    entry=np.zeros(m, bool) if entry is None else entry,
                    end=end,
                )
            )
            return end

        commuter = active & (pop.role == COMMUTER)
        stayer = pop.stay >= 0
        works = commuter & (pop.work >= 0) & ((weekday & (rng.random(n) > 0.05)) | stayer)
        entering = pop.entry_day == d
        m_start = d0 + np.clip(rng.normal(7.75, 0.6, n), 5.5, 10.0) * 3600
        e_start = d0 + np.clip(rng.normal(18.2, 0.8, n), 16.0, 22.0) * 3600
        tonight_stay = stayer & works & pop.stay_nights[:, d]
        outing = np.zeros(n, bool)
        group_today = [bool(rng.random() < 0.8) for _ in pop.groups]
        for g, go in zip(pop.groups, group_today, strict=True):
            if go:
                outing[g["members"]] = True
        e_start = np.where(outing, d0 + rng.uniform(17.0, 18.0, n) * 3600, e_start)
        for va, vb in pop.clones:  # the cloner drives when the genuine owner does: impossible speeds
            a, b = pop.driver[va], pop.driver[vb]
            works[b] = works[a]
            m_start[b] = m_start[a] + rng.uniform(-20, 20)
            e_start[b] = e_start[a] + rng.uniform(-20, 20)

        # morning
        sel = np.flatnonzero(works & entering & (self.t_entry >= 0))
        if len(sel):
            arr = add(
                sel,
                d0 + np.clip(rng.normal(8.0, 0.5, len(sel)), 6.0, 11.0) * 3600,
                self.t_entry[sel],
                False,
                entry=np.ones(len(sel), bool),
            )
            m_start[sel] = arr  # the evening trip goes home as usual
            for p, t in zip(sel.tolist(), self.t_entry[sel].tolist(), strict=True):
                self._note_entry(p, d, t)
        sel = np.flatnonzero(works & ~entering & self.slept_stay)
        arr_m = np.zeros(n)
        if len(sel):
            arr_m[sel] = add(sel, m_start[sel], self.t_from_stay[sel], False)
        sel = np.flatnonzero(works & ~entering & ~self.slept_stay)
        if len(sel):
            arr_m[sel] = add(sel, m_start[sel], self.t_commute[sel], False)
        # evening
        e_start = np.maximum(e_start, arr_m + 3 * 3600)
        sel = np.flatnonzero(works & tonight_stay)
        if len(sel):
            add(sel, e_start[sel], self.t_to_stay[sel], False)
            for p in sel.tolist():
                self._stay_rows[p]["nights"].append(d)
        sel = np.flatnonzero(works & ~tonight_stay)
        arr_e = np.zeros(n)
        if len(sel):
            arr_e[sel] = add(sel, e_start[sel], self.t_commute[sel], True)
        self.slept_stay = tonight_stay.copy()
        # errands: after work (some evenings), or in the day when not working
        ev = np.flatnonzero(works & ~tonight_stay & ~outing & (rng.random(n) < 0.25))
        day_off = np.flatnonzero(commuter & ~works & ~entering & (rng.random(n) < 0.5))
        for sel, st in (
            (ev, arr_e[ev] + rng.uniform(1800, 5400, len(ev))),
            (day_off, d0 + rng.uniform(9, 16, len(day_off)) * 3600),
        ):
            if len(sel):
                arr = add(sel, st, self.t_errand[sel], False)
                add(sel, arr + rng.uniform(1200, 4800, len(sel)), self.t_errand[sel], True)
        # 昼伏夜出: out late at night, back before dawn
        night = np.flatnonzero(active & (pop.role == NIGHT) & (rng.random(n) < 0.85))
        if len(night):
            arr = add(night, d0 + rng.uniform(22.5, 25.5, len(night)) * 3600, self.t_night[night], False)
            add(night, arr + rng.uniform(3600, 10800, len(night)), self.t_night[night], True)
            for p in night.tolist():
                self._night_rows[p]["nights"].append(d)
        # companion outings: the group leaves home together, each a few seconds after the other
        for gi, (g, go) in enumerate(zip(pop.groups, group_today, strict=True)):
            if not go:
                continue
            mem = np.array(g["members"], np.int64)
            offs = np.array(g["offsets"])
            fac[mem] = fac[mem[0]]
            t_out = d0 + rng.uniform(20.0, 21.5) * 3600
            tags = np.full(len(mem), gi, np.int64)
            tmpl = np.full(len(mem), g["template"], np.int64)
            arr = add(mem, t_out + offs, tmpl, False, tag=tags)
            add(mem, arr.max() - offs.max() + rng.uniform(2400, 5400) + offs, tmpl, True, tag=tags)
            self.truth.companions[gi]["outings"].append({"day": d, "start_ts": _iso1(t_out)})
        # fleet: buses shuttle between two hubs, taxis ride a cycle of hubs
        for i, ts_ in enumerate(self.fleet_t):
            v = i
            kind = pop.vkind[v]
            t = d0 + (rng.uniform(6.0, 6.5) if kind == BUS else rng.uniform(6.0, 10.0)) * 3600
            stop = d0 + 22 * 3600 if kind == BUS else t + 11 * 3600
            starts: list[float] = []
            tmpls: list[int] = []
            revs: list[bool] = []
            j = 0
            while t < stop and len(starts) < 200:
                if kind == BUS:
                    one, rev = int(ts_[0]), j % 2 == 1
                else:
                    one, rev = int(ts_[j % len(ts_)]), False
                starts.append(t)
                tmpls.append(one)
                revs.append(rev)
                t += tm.dur[one] * 1.1 + (rng.uniform(300, 600) if kind == BUS else rng.uniform(120, 720))
                j += 1
            if starts:
                m = len(starts)
                drv = np.full(m, pop.driver[v], np.int64)
                st = np.array(starts)
                tt = np.array(tmpls, np.int64)
                parts.append(
                    Trips(
                        st,
                        tt,
                        np.array(revs),
                        np.full(m, 1.1),
                        np.full(m, v, np.int64),
                        drv,
                        np.full(m, -1, np.int64),
                        np.zeros(m, bool),
                        st + tm.dur[tt] * 1.1,
                    )
                )
        trips = Trips.concat(parts)
        self.truth.counts["trips"] += len(trips.start)
        return trips

    def _note_entry(self, p: int, d: int, t: int) -> None:
        tm = self.tm
        a, b = tm.ptr[t], tm.ptr[t + 1]
        cps = np.flatnonzero(tm.kind[a:b] == EV_CP)
        cp = int(tm.dev[a + cps[0]]) if len(cps) else -1
        v = self.pop.vehicles_of(p)[0]
        row = {
            "vehicle_id": self.pop.vehicle_ids[v],
            "plate_no": self.pop.plate[v],
            "person_id": self.pop.person_ids[p],
            "day": d,
            "entry_node": int(self.pop.entry_origin[p]),
            "checkpoint_id": self.roads.cp_ids[cp] if cp >= 0 else None,
            "ts": None,
            "observed": False,
        }
        self.truth.first_entries.append(row)
        self._entry_truth[v] = row

    # ---- observations
    def batches(self) -> Iterator[Batch]:
        mp = self.mp
        seq = dict.fromkeys(KINDS, 0)
        t_end = mp.t0 + mp.days * DAY
        for d in range(mp.days):
            d0 = mp.t0 + d * DAY
            trips = Trips.concat([self.carry, self.plan_day(d)])
            order = np.argsort(trips.start, kind="stable")
            trips = trips.take(order)
            dwell = self._dwell(trips, d0, d0 + DAY)
            phone_on = np.random.default_rng([mp.seed, 0x4F4E, d]).random(len(self.pop.imsi)) >= mp.phone_off
            n_w = int(np.ceil(DAY / mp.window_s))
            for w in range(n_w):
                w0 = d0 + w * mp.window_s
                w1 = min(d0 + DAY, w0 + mp.window_s, t_end)
                rng = np.random.default_rng([mp.seed, 0x4F4253, d, w])
                out = self._window(trips, dwell, phone_on, w0, w1, rng, d, seq)
                for kind in KINDS:
                    count, make = out[kind]
                    for i in range(0, count, mp.batch_size):
                        yield Batch(kind, d, make(i, min(i + mp.batch_size, count)))
            self.carry = trips.take(trips.end >= d0 + DAY)

    def _dwell(self, trips: Trips, a: float, b: float) -> tuple[I64, I64, F64, F64]:
        """Where each person stays between trips today: (person, node, from, to), for nodes in a fence."""
        pop, tm = self.pop, self.tm
        order = np.lexsort((trips.start, trips.person))
        per = trips.person[order]
        st, en = trips.start[order], trips.end[order]
        t = trips.tmpl[order]
        rv = trips.rev[order]
        orig = np.where(rv, pop.hub_nodes[tm.hub[t]], tm.origin[t])
        dest = np.where(rv, tm.origin[t], pop.hub_nodes[tm.hub[t]])
        first = np.concatenate([[True], per[1:] != per[:-1]]) if len(per) else np.zeros(0, bool)
        last = np.concatenate([per[1:] != per[:-1], [True]]) if len(per) else np.zeros(0, bool)
        # before the first trip, between trips, after the last; people without trips stay home all day
        idle = np.setdiff1d(np.arange(pop.n_people), per)
        p_ = np.concatenate([per[first], per[~last], per[last], idle])
        node = np.concatenate([orig[first], dest[~last], dest[last], pop.home[idle]])
        lo = np.concatenate([np.full(int(first.sum()), a), en[~last], en[last], np.full(len(idle), a)])
        hi = np.concatenate(
            [
                st[first],
                st[1:][~last[:-1]] if len(st) else st,
                np.full(int(last.sum()), b),
                np.full(len(idle), b),
            ]
        )
        fenced = (self.roads.fence_ptr[node + 1] > self.roads.fence_ptr[node]) & (hi > lo)
        return p_[fenced], node[fenced], np.maximum(lo[fenced], a), np.minimum(hi[fenced], b)

    def _window(
        self,
        trips: Trips,
        dwell: tuple[I64, I64, F64, F64],
        phone_on: NDArray[np.bool_],
        w0: float,
        w1: float,
        rng: np.random.Generator,
        d: int,
        seq: dict[str, int],
    ) -> dict[str, tuple[int, Callable[[int, int], list[dict[str, Any]]]]]:
        mp, tm, roads, pop = self.mp, self.tm, self.roads, self.pop
        sel = np.flatnonzero((trips.start < w1) & (trips.end >= w0))
        tmpl = trips.tmpl[sel]
        a = tm.ptr[tmpl]
        cnt = tm.ptr[tmpl + 1] - a
        tot = int(cnt.sum())
        rep = np.repeat(sel, cnt)
        ei = np.repeat(a - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt) + np.arange(tot)
        off = tm.off[ei].astype(float)
        rv = trips.rev[rep]
        ts = trips.start[rep] + np.where(rv, tm.dur[trips.tmpl[rep]] - off, off) * trips.fac[rep]
        keep = (ts >= w0) & (ts < w1)
        rep, ei, ts, rv = rep[keep], ei[keep], ts[keep], rv[keep]
        kind = tm.kind[ei]
        out: dict[str, tuple[int, Callable[[int, int], list[dict[str, Any]]]]] = {}

        # --- passes
        m = (kind == EV_CP) & (trips.veh[rep] >= 0)
        n_cand = int(m.sum())
        seen = rng.random(n_cand) >= mp.pass_miss
        self.truth.counts["passes_missed"] += int(n_cand - seen.sum())
        r, e, t, rvp = rep[m][seen], ei[m][seen], ts[m][seen], rv[m][seen]
        t = t + rng.normal(0, mp.ts_jitter_s, len(t)) if mp.ts_jitter_s else t
        t = np.clip(t, w0, np.nextafter(w1, w0))
        o = np.argsort(t, kind="stable")
        r, e, t, rvp = r[o], e[o], t[o], rvp[o]
        veh = trips.veh[r]
        cp = tm.dev[e]
        brg = (tm.aux[e].astype(float) + np.where(rvp, 180.0, 0.0)) % 360
        speed = tm.speed[e] / trips.fac[r] * np.exp(rng.normal(0, mp.speed_noise, len(r)))
        lanes = roads.cp_lanes[cp]
        half = np.maximum(lanes // 2, 1)
        same_dir = np.abs((brg - roads.cp_dir[cp] + 180) % 360 - 180) <= 90
        lane_r = rng.random(len(r))
        lane = np.where(
            lanes == 1,
            1,
            np.where(
                same_dir, 1 + (lane_r * half).astype(int), half + 1 + (lane_r * (lanes - half)).astype(int)
            ),
        )
        plates = self._plate_arr[veh].copy()
        bad = np.flatnonzero(rng.random(len(r)) < mp.ocr_error)
        base_p = seq["passes"]
        run = self.run

        def pkey(i: int) -> str:
            return f"mv{run}-p{d}-{base_p + i:09d}"

        for i in bad.tolist():
            true = plates[i]
            plates[i] = _misread(true, rng)
            self.truth.ocr_errors.append({"key": pkey(i), "true": true, "read": plates[i]})
        self.truth.counts["ocr_errors"] += len(bad)
        speed = np.round(speed, 1)
        brg = np.round(brg, 1)
        pop_ = self.pop

        def make_passes(i: int, j: int, t: F64 = t) -> list[dict[str, Any]]:
            # dicts are made one batch at a time: a window's worth of them would not fit at city scale
            vs = veh[i:j].tolist()
            return [
                {
                    "key": pkey(i + q),
                    "checkpoint_id": c,
                    "lane": ln,
                    "ts": ts_,
                    "plate_no": pl,
                    "plate_color": pop_.plate_color[v],
                    "vehicle_type": pop_.vtype[v],
                    "vehicle_color": pop_.vcolor[v],
                    "speed_kmh": sp,
                    "direction_deg": dg,
                }
                for q, (c, ln, ts_, pl, v, sp, dg) in enumerate(
                    zip(
                        self._cp_ids[cp[i:j]].tolist(),
                        lane[i:j].tolist(),
                        _iso(t[i:j]),
                        plates[i:j].tolist(),
                        vs,
                        speed[i:j].tolist(),
                        brg[i:j].tolist(),
                        strict=True,
                    )
                )
            ]

        out["passes"] = (len(r), make_passes)
        seq["passes"] += len(r)
        self.truth.counts["passes"] += len(r)
        self._record_truth(trips, r, veh, cp, t, pkey)

        # --- faces: everyone travelling (drivers behind a windscreen are recognised half as often)
        m = kind == EV_FACE
        r, e, t = rep[m], ei[m], ts[m]
        in_car = trips.veh[r] >= 0
        p_see = (1 - mp.face_miss) * np.where(in_car, 0.5, 1.0)
        ok = rng.random(len(r)) < p_see
        r, e, t, in_car = r[ok], e[ok], t[ok], in_car[ok]
        t = np.clip(t + rng.normal(0, 1.0, len(t)), w0, np.nextafter(w1, w0))
        o = np.argsort(t, kind="stable")
        r, e, t, in_car = r[o], e[o], t[o], in_car[o]
        conf = np.clip(np.where(in_car, 0.78, 0.88) + rng.normal(0, 0.06, len(r)), 0.5, 0.99)
        base_f = seq["faces"]
        cam, who = tm.dev[e], trips.person[r]
        conf = np.round(conf, 3)

        def make_faces(i: int, j: int, t: F64 = t) -> list[dict[str, Any]]:
            return [
                {
                    "key": f"mv{run}-f{d}-{base_f + i + q:09d}",
                    "camera_id": c,
                    "ts": ts_,
                    "person_id": pid,
                    "confidence": cf,
                }
                for q, (c, ts_, pid, cf) in enumerate(
                    zip(
                        self._face_ids[cam[i:j]].tolist(),
                        _iso(t[i:j]),
                        self._person_ids[who[i:j]].tolist(),
                        conf[i:j].tolist(),
                        strict=True,
                    )
                )
            ]

        out["faces"] = (len(r), make_faces)
        seq["faces"] += len(r)
        self.truth.counts["faces"] += len(r)

        # --- phones: every phone of the traveller that is on, through each fence; and dwelling pings
        m = kind == EV_FENCE
        person = trips.person[rep[m]]
        fence = tm.dev[ei[m]]
        dist = tm.aux[ei[m]].astype(float)
        t = ts[m]
        dp, dn, dlo, dhi = dwell
        hit = (dlo < w1) & (dhi > w0)
        if hit.any():
            ping_p, ping_n, ping_t = self._pings(
                dp[hit], dn[hit], np.maximum(dlo[hit], w0), np.minimum(dhi[hit], w1)
            )
            fp = roads.fence_ptr[ping_n]
            fc = roads.fence_ptr[ping_n + 1] - fp
            rp = np.repeat(np.arange(len(ping_n)), fc)
            fj = np.repeat(fp - np.concatenate([[0], np.cumsum(fc)[:-1]]), fc) + np.arange(int(fc.sum()))
            person = np.concatenate([person, ping_p[rp]])
            fence = np.concatenate([fence, roads.fence_idx[fj]])
            dist = np.concatenate([dist, roads.fence_dist[fj]])
            t = np.concatenate([t, ping_t[rp]])
        pp = pop.phone_ptr[person]
        pc = pop.phone_ptr[person + 1] - pp
        rp = np.repeat(np.arange(len(person)), pc)
        phone = pop.phone_idx[
            np.repeat(pp - np.concatenate([[0], np.cumsum(pc)[:-1]]), pc) + np.arange(int(pc.sum()))
        ]
        ok = phone_on[phone] & (rng.random(len(phone)) >= mp.phone_miss)
        rp, phone = rp[ok], phone[ok]
        t = t[rp] + rng.uniform(-mp.phone_noise_s, mp.phone_noise_s, len(rp))
        # noise that pushes a sighting out of the window is reflected back in, so none is lost or doubled
        t = np.where(t < w0, 2 * w0 - t, np.where(t >= w1, 2 * w1 - t - 1e-3, t))
        inw = (t >= w0) & (t < w1)  # only when the noise is wider than the window itself
        rp, phone, t = rp[inw], phone[inw], t[inw]
        fence, dist = fence[rp], dist[rp]
        o = np.argsort(t, kind="stable")
        phone, t, fence, dist = phone[o], t[o], fence[o], dist[o]
        rssi = np.clip(
            -45 - 45 * dist / roads.fence_radius[fence] + rng.normal(0, 4, len(t)), -110, -30
        ).astype(int)
        with_mac = rng.random(len(t)) < 0.3
        base_m = seq["phones"]

        def make_phones(i: int, j: int, t: F64 = t) -> list[dict[str, Any]]:
            items = []
            for q, (f, ts_, ph, rs, wm) in enumerate(
                zip(
                    self._fence_ids[fence[i:j]].tolist(),
                    _iso(t[i:j]),
                    phone[i:j].tolist(),
                    rssi[i:j].tolist(),
                    with_mac[i:j].tolist(),
                    strict=True,
                )
            ):
                it = {
                    "key": f"mv{run}-m{d}-{base_m + i + q:09d}",
                    "fence_id": f,
                    "ts": ts_,
                    "imsi": pop.imsi[ph],
                    "imei": pop.imei[ph],
                    "rssi": rs,
                }
                if wm:
                    it["mac"] = pop.mac[ph]
                items.append(it)
            return items

        out["phones"] = (len(t), make_phones)
        seq["phones"] += len(t)
        self.truth.counts["phones"] += len(t)
        return out

    def _pings(self, p: I64, node: I64, lo: F64, hi: F64) -> tuple[I64, I64, F64]:
        """Phones of people dwelling in a fence are caught every ping_s, on a per-person phase."""
        ps = self.mp.ping_s
        phase = (p * 2654435761 % 1_000_003) / 1_000_003 * ps
        k0 = np.ceil((lo - phase) / ps)
        k1 = np.ceil((hi - phase) / ps)
        cnt = np.maximum(k1 - k0, 0).astype(np.int64)
        rep = np.repeat(np.arange(len(p)), cnt)
        k = np.repeat(k0 - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt) + np.arange(int(cnt.sum()))
        return p[rep], node[rep], phase[rep] + k * ps

    def _record_truth(
        self, trips: Trips, r: I64, veh: I64, cp: I64, t: F64, key: Callable[[int], str]
    ) -> None:
        """Note the recorded passes of the planted subjects (clones, companions, first entries)."""
        if self._clone_veh:
            hit = np.flatnonzero(np.isin(veh, list(self._clone_veh)))
            idx = {}
            for ci, (va, vb) in enumerate(self.pop.clones):
                idx[va] = ci
                idx[vb] = ci
            for i in hit.tolist():
                v = int(veh[i])
                self.truth.clones[idx[v]]["tracks"][self.pop.vehicle_ids[v]].append(
                    {
                        "ts": _iso(t[i : i + 1])[0],
                        "checkpoint_id": self.roads.cp_ids[int(cp[i])],
                        "key": key(i),
                    }
                )
        tag = trips.tag[r]
        for i in np.flatnonzero(tag >= 0).tolist():
            self.truth.companions[int(tag[i])]["passes"].append(
                {
                    "vehicle_id": self.pop.vehicle_ids[int(veh[i])],
                    "ts": _iso(t[i : i + 1])[0],
                    "checkpoint_id": self.roads.cp_ids[int(cp[i])],
                    "key": key(i),
                }
            )
        for i in np.flatnonzero(trips.entry[r]).tolist():
            row = self._entry_truth.get(int(veh[i]))
            if (
                row is not None
                and not row["observed"]
                and row["checkpoint_id"] == self.roads.cp_ids[int(cp[i])]
            ):
                row["observed"] = True
                row["ts"] = _iso(t[i : i + 1])[0]
                row["key"] = key(i)


def _misread(plate: str, rng: np.random.Generator) -> str:
    """One OCR error: a confusable character swapped (O/0, I/1, B/8, D/0), else a character dropped."""
    spots = [i for i, ch in enumerate(plate) if i >= 1 and ch in OCR_SUBST]
    if spots and rng.random() < 0.8:
        i = spots[int(rng.integers(len(spots)))]
        alts = OCR_SUBST[plate[i]]
        return plate[:i] + alts[int(rng.integers(len(alts)))] + plate[i + 1 :]
    i = int(rng.integers(1, len(plate)))
    return plate[:i] + plate[i + 1 :]


def _iso(t: F64) -> list[str]:
    """Epoch seconds → ISO-8601 local time with +08:00, millisecond precision (vectorised)."""
    local = ((np.asarray(t) + TZ_OFFSET_S) * 1000).round().astype("int64").astype("datetime64[ms]")
    return [s + "+08:00" for s in np.datetime_as_string(local, unit="ms").tolist()]


def _iso1(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone(dt.timedelta(seconds=TZ_OFFSET_S))).isoformat(
        timespec="seconds"
    )


def simulate_movement(city: City, params: MovementParams) -> tuple[Iterator[Batch], Truth, Simulation]:
    """Prepare the world and return (batches, truth, simulation). The truth's tracks, counts and
    observed flags are complete once the batches are exhausted."""
    sim = Simulation(city, params)
    return sim.batches(), sim.truth, sim
