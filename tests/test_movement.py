"""The movement simulator: deterministic, ids valid against the city, noise as configured, and the planted
truth (clones, companions, owners, first entries, night-active people) visible in the data."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import subprocess
import sys
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from simulator.city import CityParams, generate_city
from simulator.movement import PLATE_RE, MovementParams, simulate_movement
from simulator.movement.feed import FeedError, feed
from simulator.movement.output import read_jsonl, write_batches, write_truth

CITY = CityParams(cameras=500, seed=11, inner_checkpoints=250, face_cameras=30)
PARAMS = MovementParams(
    people=1500, vehicles=1000, days=3, seed=4, ocr_error=0.02, clones=2, companion_groups=3
)


def run(city, params):
    batches, truth, sim = simulate_movement(city, params)
    out = list(batches)
    return out, truth, sim


@pytest.fixture(scope="module")
def world():
    city = generate_city(CITY)
    batches, truth, sim = run(city, PARAMS)
    items = defaultdict(list)
    for b in batches:
        items[b.kind].extend(b.items)
    return city, batches, truth, sim, items


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def metres(lon1, lat1, lon2, lat2) -> float:
    kx = 111_320 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574)


def test_same_seed_same_data_other_seed_other_data(world) -> None:
    city, batches, truth, _, _ = world
    again, truth2, _ = run(city, PARAMS)
    assert [(b.kind, b.items) for b in again] == [(b.kind, b.items) for b in batches]
    assert truth2.counts == truth.counts and truth2.clones == truth.clones
    other, _, _ = run(city, MovementParams(people=1500, vehicles=1000, days=3, seed=5))
    assert [b.items for b in other[:5]] != [b.items for b in batches[:5]]


def test_ids_are_registered_devices_and_keys_unique(world) -> None:
    city, _, _, sim, items = world
    cps = {c["checkpoint_id"]: c for c in city.checkpoints}
    faces = {c["device_id"] for c in city.cameras if c["kind"] == "face"}
    fences = {f["fence_id"] for f in sim.roads.fence_bodies}
    assert items["passes"] and items["faces"] and items["phones"]
    assert {p["checkpoint_id"] for p in items["passes"]} <= set(cps)
    assert {f["camera_id"] for f in items["faces"]} <= faces
    assert {p["fence_id"] for p in items["phones"]} <= fences
    # inner checkpoints see traffic, not only the entries
    assert len({p["checkpoint_id"] for p in items["passes"]}) > 0.5 * len(cps)
    for p in items["passes"][:5000]:
        assert 1 <= p["lane"] <= cps[p["checkpoint_id"]]["lanes"]
        assert 0 < p["speed_kmh"] < 250 and 0 <= p["direction_deg"] < 360
    keys = [it["key"] for k in ("passes", "faces", "phones") for it in items[k]]
    assert len(keys) == len(set(keys))
    assert all(re.fullmatch(r"[A-Za-z0-9_.:\-]{8,128}", k) for k in keys)
    for f in sim.roads.fence_bodies:
        assert set(f) == {"fence_id", "name", "lon", "lat", "radius_m"} and f["radius_m"] > 0
    imsis = {p["imsi"] for p in items["phones"]}
    assert all(re.fullmatch(r"460\d{12}", i) for i in imsis)


def test_timestamps_inside_the_days_and_ordered(world) -> None:
    _, batches, _, _, _ = world
    t0 = PARAMS.t0
    last: dict[tuple[str, int], float] = {}
    for b in batches:
        times = [ts(it["ts"]) for it in b.items]
        assert times == sorted(times)
        assert all(t0 + b.day * 86400 <= t < t0 + (b.day + 1) * 86400 for t in times)
        assert all(it["ts"].endswith("+08:00") for it in b.items)
        k = (b.kind, b.day)
        if times:
            assert times[0] >= last.get(k, 0)
            last[k] = times[-1]
        assert len(b.items) <= PARAMS.batch_size
    assert {d for _, d in last} == set(range(PARAMS.days))


def test_plates_valid_except_planted_ocr_errors(world) -> None:
    _, _, truth, _, items = world
    plate_re = re.compile(PLATE_RE)
    bad = {e["key"]: e for e in truth.ocr_errors}
    true_plates = {v["plate_no"] for o in truth.owners for v in o["vehicles"]}
    assert all(plate_re.match(p) for p in true_plates)
    assert any(p.startswith("粤") for p in true_plates) and any(not p.startswith("粤") for p in true_plates)
    nev = [
        p for o in truth.owners for v in o["vehicles"] if v["plate_color"] == "green" for p in [v["plate_no"]]
    ]
    assert nev and all(len(p) == 8 and p[2] in "DF" for p in nev)
    n = len(items["passes"])
    for p in items["passes"]:
        if p["key"] in bad:
            assert p["plate_no"] == bad[p["key"]]["read"] != bad[p["key"]]["true"]
        else:
            assert p["plate_no"] in true_plates and plate_re.match(p["plate_no"])
    invalid = sum(1 for p in items["passes"] if not plate_re.match(p["plate_no"]))
    assert 0 < invalid <= len(bad)
    rate, sigma = PARAMS.ocr_error, math.sqrt(PARAMS.ocr_error * (1 - PARAMS.ocr_error) / n)
    assert abs(len(bad) / n - rate) < 5 * sigma
    assert truth.counts["ocr_errors"] == len(bad)
    miss = truth.counts["passes_missed"] / (truth.counts["passes_missed"] + n)
    assert abs(miss - PARAMS.pass_miss) < 0.02


def test_cloned_plates_give_impossible_speeds(world) -> None:
    city, _, truth, _, items = world
    cps = {c["checkpoint_id"]: (c["lon"], c["lat"]) for c in city.checkpoints}
    assert len(truth.clones) == 2
    for c in truth.clones:
        g, k = c["genuine"]["vehicle_id"], c["clone"]["vehicle_id"]
        assert g != k and c["tracks"][g] and c["tracks"][k]
        # the data (not only the truth) holds both vehicles under one plate
        seen = [p for p in items["passes"] if p["plate_no"] == c["plate_no"]]
        assert len(seen) >= len(c["tracks"][g]) + len(c["tracks"][k]) - 5
        merged = sorted((ts(p["ts"]), p["checkpoint_id"], v) for v in (g, k) for p in c["tracks"][v])
        speeds = [
            metres(*cps[a[1]], *cps[b[1]]) / max(b[0] - a[0], 1.0) * 3.6
            for a, b in itertools.pairwise(merged)
            if a[2] != b[2] and a[1] != b[1]
        ]
        assert max(speeds) > 150, c["plate_no"]
        assert (
            metres(
                c["genuine"]["home"]["lon"],
                c["genuine"]["home"]["lat"],
                c["clone"]["home"]["lon"],
                c["clone"]["home"]["lat"],
            )
            > 1000
        )


def test_companions_co_occur_at_several_sites(world) -> None:
    _, _, truth, _, items = world
    assert truth.companions
    by_plate = defaultdict(list)
    for p in items["passes"]:
        by_plate[p["plate_no"]].append((p["checkpoint_id"], ts(p["ts"])))
    for g in truth.companions:
        assert g["outings"], "each group goes out on some of the days"
        lead, *rest = g["plates"]
        for other in rest:
            sites = {
                c1
                for c1, t1 in by_plate[lead]
                for c2, t2 in by_plate[other]
                if c1 == c2 and abs(t1 - t2) <= g["window_s"]
            }
            assert len(sites) >= 3, (lead, other, len(g["route_checkpoints"]))


def test_owners_phones_travel_with_their_vehicles(world) -> None:
    city, _, truth, sim, items = world
    fences = sim.roads.fence_bodies
    cp_ll = {c["checkpoint_id"]: (c["lon"], c["lat"]) for c in city.checkpoints}
    near = {
        cid: {f["fence_id"] for f in fences if metres(*ll, f["lon"], f["lat"]) < f["radius_m"] + 100}
        for cid, ll in cp_ll.items()
    }
    phone_at = defaultdict(list)
    for s in items["phones"]:
        phone_at[(s["imsi"], s["fence_id"])].append(ts(s["ts"]))
    plate_owner = {}
    for o in truth.owners:
        for v in o["vehicles"]:
            if v["kind"] == "private":
                plate_owner.setdefault(v["plate_no"], [ph["imsi"] for ph in o["phones"]])
    rng = np.random.default_rng(0)
    owners = list(plate_owner.values())
    shuffled = dict(zip(plate_owner, [owners[i] for i in rng.permutation(len(owners))], strict=True))

    def rate(owner_of) -> float:
        hits = tries = 0
        for p in items["passes"]:
            imsis = owner_of.get(p["plate_no"])
            fs = near[p["checkpoint_id"]]
            if imsis is None or not fs:
                continue
            tries += 1
            t = ts(p["ts"])
            hits += any(abs(t - u) <= 300 for i in imsis for f in fs for u in phone_at.get((i, f), ()))
        assert tries > 100
        return hits / tries

    true_rate, random_rate = rate(plate_owner), rate(shuffled)
    assert true_rate > 0.5 and true_rate > 10 * random_rate, (true_rate, random_rate)


def test_first_entries_night_active_and_stay_points(world) -> None:
    city, _, truth, _, items = world
    entry_cps = {c["checkpoint_id"] for c in city.checkpoints if c["name"].startswith("出入城")}
    assert truth.first_entries
    first_seen: dict[str, float] = {}
    for p in items["passes"]:
        first_seen.setdefault(p["plate_no"], ts(p["ts"]))
    observed = [e for e in truth.first_entries if e["observed"]]
    assert observed
    for e in observed:
        assert e["checkpoint_id"] in entry_cps
        assert first_seen[e["plate_no"]] >= PARAMS.t0 + e["day"] * 86400
        assert abs(first_seen[e["plate_no"]] - ts(e["ts"])) < 3600
    # 昼伏夜出: their vehicles move at night
    night_plates = {pl for n in truth.night_active for pl in n["plates"]}
    assert night_plates
    hours = [
        dt.datetime.fromisoformat(p["ts"]).hour for p in items["passes"] if p["plate_no"] in night_plates
    ]
    assert hours and sum(h >= 22 or h < 6 for h in hours) / len(hours) > 0.8
    assert truth.stay_points and any(s["nights"] for s in truth.stay_points)
    for s in truth.stay_points:
        assert s["second_place"]["node"] != s["home"]["node"] or not s["nights"]


def test_writers_round_trip(world, tmp_path) -> None:
    _, batches, truth, _, _ = world
    for _ in write_batches(iter(batches[:30]), tmp_path):
        pass
    paths = write_truth(truth, tmp_path)
    n = sum(len(b.items) for b in batches[:30] if b.kind == "passes")
    assert len(list(read_jsonl(tmp_path / "passes.jsonl.gz"))) == n
    summary = json.loads(paths[0].read_text(encoding="utf-8"))
    assert {"clones", "companions", "night_active", "stay_points", "first_entries", "counts"} <= set(summary)
    assert len(list(read_jsonl(tmp_path / "owners.jsonl.gz"))) == PARAMS.people


class _Ingest(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, int]]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer tok":
            self._send(401, {"title": "no"})
            return
        if _Ingest.fail_first > 0:
            _Ingest.fail_first -= 1
            self._send(503, {"title": "busy"})
            return
        items = body["items"]
        _Ingest.seen.append((self.path, len(items)))
        rejected = [
            {"index": i, "key": it["key"], "errors": ["plate_no: bad syntax"]}
            for i, it in enumerate(items)
            if "plate_no" in it and not re.match(PLATE_RE, it["plate_no"])
        ]
        self._send(200, {"accepted": len(items) - len(rejected), "duplicates": 0, "rejected": rejected})

    def _send(self, code: int, obj: object) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a: object) -> None:
        pass


def test_feed_posts_bounded_batches_retries_and_reports_rejections(world) -> None:
    _, batches, truth, _, _ = world
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        some = batches[:40]
        rep = feed(some, url, "tok", sleep=lambda s: None, timeout_s=5)
        assert rep.retries == 1
        assert rep.sent == sum(len(b.items) for b in some)
        assert all(n <= 5000 for _, n in _Ingest.seen)
        assert {p for p, _ in _Ingest.seen} <= {
            "/api/v1/ingest/passes",
            "/api/v1/ingest/faces",
            "/api/v1/ingest/phones",
        }
        bad_keys = {e["key"] for e in truth.ocr_errors}
        assert rep.rejected and {r["key"] for r in rep.rejected} <= bad_keys
        assert rep.accepted + len(rep.rejected) == rep.sent
        with pytest.raises(FeedError, match="401"):
            feed(some[:1], url, "wrong", sleep=lambda s: None, timeout_s=5)
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)
    with pytest.raises(FeedError, match="gave up"):
        feed(batches[:1], url, "tok", sleep=lambda s: None, timeout_s=1, max_retries=1)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="people"):
        MovementParams(people=0)
    with pytest.raises(ValueError, match="ocr_error"):
        MovementParams(ocr_error=2)
    with pytest.raises(ValueError, match="taxis and buses"):
        simulate_movement(generate_city(CITY), MovementParams(people=10, vehicles=1000))


SCALE = """
import sys, time
def hwm_mib():  # VmHWM starts afresh at exec (ru_maxrss would carry the parent's peak over)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0
from simulator.city import CityParams, generate_city
from simulator.movement import MovementParams, simulate_movement
city = generate_city(CityParams(cameras=2000, seed=2, inner_checkpoints=1000, face_cameras=60))
before = hwm_mib()
t = time.perf_counter()
batches, truth, _ = simulate_movement(city, MovementParams(people=15_000, vehicles=10_000, days=1, seed=9))
n = biggest = 0
for b in batches:
    biggest = max(biggest, len(b.items))
el = time.perf_counter() - t
peak = hwm_mib()
c = truth.counts
print(c["passes"], c["faces"], c["phones"], biggest, f"{el:.2f}", before, peak)
"""


def test_scale_10k_vehicles_one_day_bounded_memory() -> None:
    # in a process of its own, so that its peak memory is its own
    out = subprocess.run(
        [sys.executable, "-c", SCALE], capture_output=True, text=True, timeout=300, check=True
    )
    passes, faces, phones, biggest, el, before_mib, peak_mib = out.stdout.split()
    rate = int(passes) / float(el)
    print(
        f"\n10k vehicles × 1 day: {passes} passes, {faces} face and {phones} phone sightings in {el}s "
        f"= {rate:,.0f} passes/s; peak RSS {peak_mib} MiB (city alone {before_mib} MiB)"
    )
    assert int(passes) > 100_000 and int(phones) > 0 and int(faces) > 0
    assert int(biggest) <= 5000
    assert int(peak_mib) < 2048


def test_items_validate_against_the_platforms_ingest_models(world) -> None:
    """The outside world speaks the platform's wire shapes (tests may import both sides)."""
    from tianwang.checkpoints.plates import colour_code, is_valid
    from tianwang.protocol.sightings import FaceItem, PassItem, PhoneItem

    _, _, truth, _, items = world
    bad = {e["key"] for e in truth.ocr_errors}
    for model, kind in ((PassItem, "passes"), (FaceItem, "faces"), (PhoneItem, "phones")):
        for it in items[kind][:3000]:
            model.model_validate(it)
    for p in items["passes"]:
        colour_code(p["plate_color"])
        colour_code(p["vehicle_color"])
        assert is_valid(p["plate_no"]) or p["key"] in bad
