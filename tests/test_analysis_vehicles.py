"""Cloned plates (套牌) and companions (同行车): the pure computations on hand-made columns, ground
truth on the movement simulator's planted clones and companion groups (precision and recall, both
databases), and the API (case number, windows, pages, audit)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import auth
from tests.sightings_support import CP1, CP2, CP3, base_time, pass_item, seed
from tianwang.analyses import clones, companions
from tianwang.analyses.clones import CloneParams, PassColumns, RoadNet, find_clones
from tianwang.analyses.companions import CompanionParams, find_companions
from tianwang.context import AppContext
from tianwang.records import ingest as records
from tianwang.storage.models import AuditEntry, Pass

# five sites on a parallel, 10 km apart east–west (0.0973° of longitude at 22.5° N ≈ 10 km)
LAT = 22.5
LON0 = 114.0
STEP = 0.0973
SITE_LON = LON0 + STEP * np.arange(5)
SITE_LAT = np.full(5, LAT)


def cols(rows: list[tuple[int, float, int]], profile: list[int] | None = None) -> PassColumns:
    """Passes (plate, ts, site), sorted as `find_clones` wants them."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1]))
    r = [rows[i] for i in order]
    return PassColumns(
        plate=np.array([x[0] for x in r], np.int64),
        ts=np.array([x[1] for x in r], float),
        cp=np.array([x[2] for x in r], np.int64),
        profile=None if profile is None else np.array([profile[i] for i in order], np.int64),
    )


def flagged(found: clones.Clones) -> dict[int, int]:
    return {
        int(p): int(n)
        for p, n in zip(found.plates[found.flagged], found.independent[found.flagged], strict=True)
    }


def test_clones_one_misread_is_not_a_clone_two_contradictions_are() -> None:
    rows = [
        # plate 0: an honest day, 10 km legs at 60 km/h, and a return trip
        (0, 0, 0), (0, 600, 1), (0, 1200, 2), (0, 9000, 2), (0, 9600, 1), (0, 10200, 0),
        # plate 1: the same, plus one pass of another car misread as plate 1, 40 km away, in between
        (1, 0, 0), (1, 600, 1), (1, 620, 4), (1, 1200, 2),
        # plate 2: two cars at once, 40 km apart, all morning
        (2, 0, 0), (2, 10, 4), (2, 600, 1), (2, 615, 3), (2, 1200, 2), (2, 1210, 2),
        # plate 3: a misread at the very end of its history: one contradiction only
        (3, 0, 0), (3, 600, 1), (3, 630, 4),
    ]  # fmt: skip
    found = find_clones(cols(rows), SITE_LON, SITE_LAT, CloneParams())
    contra = dict(zip(found.plates.tolist(), found.independent.tolist(), strict=True))
    assert 0 not in contra  # no contradiction at all
    assert contra[1] == 1  # two contradicting pairs sharing the misread pass: one independent
    assert contra[3] == 1
    assert flagged(found) == {2: 2}  # 4 pairs in a row, never explained by one pass
    assert len(found.pair) == 2 + 3 + 1  # plate 2's last legs (10 km in 585 s, one site) are fine
    assert (found.basis == clones.BASIS_SPEED).all()
    # the same plate 1 with a second, separate misread is two independent contradictions
    rows2 = [*rows, (1, 5000, 2), (1, 5030, 4), (1, 5400, 2)]
    assert flagged(find_clones(cols(rows2), SITE_LON, SITE_LAT, CloneParams())) == {1: 2, 2: 2}
    # and min_contradictions=1 reports every plate with one
    assert set(flagged(find_clones(cols(rows), SITE_LON, SITE_LAT, CloneParams(min_contradictions=1)))) == {
        1,
        2,
        3,
    }


def test_clones_colour_mismatch_plus_one_contradiction() -> None:
    white, red = 0, 1
    rows = [
        # plate 0: a white car at sites 0, 1; a red one with the same plate at 4, 3 soon after
        (0, 0, 0), (0, 600, 1), (0, 640, 4), (0, 1240, 3),
        # plate 1: the same timing, the far pass a single red misread (another car) → not a clone
        (1, 0, 0), (1, 600, 1), (1, 640, 4), (1, 1900, 1),
    ]  # fmt: skip
    profile = [white, white, red, red, white, white, red, white]
    found = find_clones(cols(rows, profile), SITE_LON, SITE_LAT, CloneParams())
    assert dict(zip(found.plates.tolist(), found.independent.tolist(), strict=True)) == {0: 1, 1: 1}
    assert flagged(found) == {0: 1}
    assert found.mismatch.tolist() == [True, False]
    # without attributes, one contradiction is not enough
    assert flagged(find_clones(cols(rows), SITE_LON, SITE_LAT, CloneParams())) == {}


def test_clones_ignore_near_sites_and_clock_jitter() -> None:
    lon = np.array([LON0, LON0 + 0.003, LON0 + 0.2])  # 300 m apart, then 20 km
    lat = np.full(3, LAT)
    d = float(clones.haversine_m(lon[:1], lat[:1], lon[2:], lat[2:])[0])
    gap = d / (150 / 3.6) - 2  # 20.5 km just over 150 km/h, and just under it with 4 s of clock jitter
    rows = [
        (0, 0, 0), (0, 1, 1), (0, 2, 0), (0, 3, 1),  # 300 m in 1 s, again and again: below min_distance_m
        (1, 0, 0), (1, gap, 2), (1, 2 * gap, 0),
    ]  # fmt: skip
    found = find_clones(cols(rows), lon, lat, CloneParams(detour=1.0))
    assert len(found.pair) == 0
    found = find_clones(cols(rows), lon, lat, CloneParams(detour=1.0, jitter_s=0))
    assert found.plates.tolist() == [1] and found.independent.tolist() == [1]
    found = find_clones(cols(rows), lon, lat, CloneParams(detour=1.0, min_distance_m=100))
    assert flagged(found) == {0: 2}


def test_clones_fastest_observed_trip() -> None:
    lon = np.array([LON0, LON0 + 0.0487, LON0 + 0.3])  # sites 0 and 1 are 5 km apart
    lat = np.full(3, LAT)
    # 40 plates take 1200–1300 s from 0 to 1 (the fastest observed trip: 1200 s); plate 99 takes
    # 250 s twice: 72 km/h (94 with the detour factor) is a plausible speed, not a fifth of any trip seen
    rows = [(p, 0.0, 0) for p in range(40)] + [(p, 1200.0 + p * 2.5, 1) for p in range(40)]
    rows += [(99, 0, 0), (99, 250, 1), (99, 5000, 2), (99, 9000, 0), (99, 9250, 1)]
    found = find_clones(cols(rows), lon, lat, CloneParams())
    assert flagged(found) == {99: 2}
    assert (found.basis == clones.BASIS_TRIP).all()
    assert np.allclose(found.fastest_s, 1200)  # the fastest by another plate: plate 99's own never count
    assert flagged(find_clones(cols(rows), lon, lat, CloneParams(trip_factor=0))) == {}
    assert flagged(find_clones(cols(rows), lon, lat, CloneParams(trip_min_samples=43))) == {}
    # where the road graph knows the pair, its distance is the bound (5.2 km in 254 s is possible)
    road = RoadNet([("R1", [(lon[0], LAT), (lon[1], LAT)])], lon, lat, ["R1", "R1", None])
    assert flagged(find_clones(cols(rows), lon, lat, CloneParams(), road)) == {}


def test_ocr_twins() -> None:
    twins = clones.ocr_twins("粤B0812")
    assert {"粤80812", "粤BO812", "粤BD812", "粤B0B12", "粤B08I2"} <= twins  # a confusable swapped
    assert {"粤B812", "粤0812", "粤B081"} <= twins  # a character dropped
    assert {"粤BD0812", "粤B08125", "粤B0A812"} <= twins  # one more character (read with one dropped)
    assert "粤B0812" not in twins and "京B0812" not in twins  # the province is never touched


def test_misreads_of_an_ocr_twin_are_not_a_clone() -> None:
    # plate 0 drives sites 0 → 1 and back each day; twice a pass of plate 0's OCR twin, which drives
    # 4 → 3 at the time, is read as plate 0: two independent contradictions
    rows = [
        (0, 0, 0), (0, 600, 1), (0, 650, 4), (0, 1200, 1), (0, 9000, 1), (0, 9060, 3), (0, 9600, 0),
    ]  # fmt: skip
    p = cols(rows)
    found = find_clones(p, SITE_LON, SITE_LAT, CloneParams())
    assert flagged(found) == {0: 2}
    test = np.unique(np.r_[found.pair, found.pair + 1])
    assert test.tolist() == [1, 2, 3, 4, 5, 6]
    # the twin (code 0 among the twins): at site 4 around 650 s, at site 3 around 9060 s
    twin = PassColumns(np.zeros(4, np.int64), np.array([400.0, 900, 8800, 9300]), np.array([4, 4, 3, 3]))
    pairs = (np.array([0]), np.array([0]))
    explained = clones.explain_misreads(
        p, test, twin, pairs, SITE_LON, SITE_LAT, CloneParams(), None, found.trips
    )
    assert test[explained].tolist() == [2, 5]  # the misreads; plate 0's own passes fit nowhere else
    rest = np.setdiff1d(np.arange(len(p)), test[explained])
    assert flagged(find_clones(p.take(rest), SITE_LON, SITE_LAT, CloneParams())) == {}
    # a twin seen only hours away explains nothing; nor does one whose own passes contradict the pass
    far = PassColumns(np.zeros(2, np.int64), np.array([-9000.0, 20000]), np.array([4, 3]))
    assert not clones.explain_misreads(
        p, test, far, pairs, SITE_LON, SITE_LAT, CloneParams(), None, found.trips
    ).any()
    wrong = PassColumns(np.zeros(2, np.int64), np.array([640.0, 9050]), np.array([0, 0]))
    got = clones.explain_misreads(p, test, wrong, pairs, SITE_LON, SITE_LAT, CloneParams(), None, found.trips)
    assert not got[np.isin(test, [2, 5])].any()  # 40 km in 10 s from the twin: not its pass
    rest = np.setdiff1d(np.arange(len(p)), test[got])
    assert flagged(find_clones(p.take(rest), SITE_LON, SITE_LAT, CloneParams())) == {0: 2}


def test_road_distance_sees_a_detour() -> None:
    # sites 0 and 1 are 1.03 km apart across a river; the only road goes round: 3 lines, ≈ 21 km
    a, b = (LON0, LAT), (LON0 + 0.01, LAT)
    far_a, far_b = (LON0, LAT + 0.09), (LON0 + 0.01, LAT + 0.09)
    lines = [("R1", [a, far_a]), ("R2", [far_a, far_b]), ("R3", [far_b, b]), ("R9", [(115, 23), (115.1, 23)])]
    lon = np.array([LON0, LON0 + 0.01, LON0 + 0.005, 115.05])
    lat = np.array([LAT + 0.0001, LAT + 0.0001, LAT + 0.09, 23.0])
    road = RoadNet(lines, lon, lat, ["R1", "R3", "R2", "R9"])
    assert road.known == 4
    d = road.distances(np.array([0, 0, 0, 2, 1]), np.array([1, 2, 3, 2, 0]))
    assert d[0] == pytest.approx(2 * 10_000 + 1_028, rel=0.02)
    assert d[1] == pytest.approx(10_000 + 514, rel=0.02)
    assert np.isnan(d[2])  # another component: unknown
    assert d[3] == 0 and d[4] == pytest.approx(d[0])
    assert np.isnan(
        RoadNet(lines, lon, lat, [None, "R3", "R2", "R9"]).distances(np.array([0]), np.array([1]))
    )[0]
    # 1 km in 60 s is plausible by great-circle × 1.3, not by the road
    rows = [(0, 0, 0), (0, 60, 1), (0, 120, 0), (0, 180, 1)]
    assert flagged(find_clones(cols(rows), lon, lat, CloneParams(min_distance_m=100))) == {}
    found = find_clones(cols(rows), lon, lat, CloneParams(min_distance_m=100), road=road)
    assert flagged(found) == {0: 2}
    assert found.distance_m[0] == pytest.approx(d[0])


def test_companions_pure() -> None:
    # the subject: sites 0,1,2,3 out (from t=0, 100 s apart), back 3,2,1,0 two hours later
    s_ts = np.array([0, 100, 200, 300, 7500, 7600, 7700, 7800], float)
    s_site = np.array([0, 1, 2, 3, 3, 2, 1, 0])
    others = []
    others += [(1, t + 20, c) for t, c in zip(s_ts, s_site, strict=True)]  # 1: along, 20 s behind
    others += [(1, 220, 2)]  # the same pass again (a duplicate row): counted once
    others += [(2, t - 30, c) for t, c in zip(s_ts[:4], s_site[:4], strict=True)]  # 2: out only
    others += [(3, 5, 0), (3, 7510, 3), (3, 7790, 0)]  # 3: two sites over two outings
    others += [(4, t + 90, c) for t, c in zip(s_ts, s_site, strict=True)]  # 4: 90 s behind
    others += [(5, t + 1, c) for t, c in zip(s_ts, s_site, strict=True)]  # 5: a bus, say
    others += [(6, 100, 0), (6, 100, 1), (6, 100, 2)]  # 6: right times, wrong sites (0 and 2)
    o = np.array(others, float)
    frequent = np.array([False, False, False, False, False, True, False])
    found = find_companions(
        s_ts, s_site, o[:, 0].astype(int), o[:, 1], o[:, 2].astype(int), CompanionParams(), frequent
    )
    assert found.plate.tolist() == [1]
    assert (
        found.sites.tolist() == [4] and found.co_occurrences.tolist() == [8] and found.outings.tolist() == [2]
    )
    assert found.mean_abs_dt_s[0] == pytest.approx(20)
    assert found.site_lists[0].tolist() == [0, 1, 2, 3]
    assert found.candidates == 5 and found.excluded_frequent == 1  # 4 never within 60 s
    assert found.share.tolist() == [1.0]
    loose = find_companions(
        s_ts,
        s_site,
        o[:, 0].astype(int),
        o[:, 1],
        o[:, 2].astype(int),
        CompanionParams(min_sites=2, min_outings=1, min_share=0),
    )
    assert loose.plate.tolist() == [5, 1, 2, 3]  # most sites, then most co-occurrences, then smallest |Δt|
    # 3 met 3 of the 8 passes of the two outings it shares; 2 all 4 of the one it shares
    assert loose.share.tolist() == [1.0, 1.0, 1.0, 3 / 8]
    shared = find_companions(
        s_ts,
        s_site,
        o[:, 0].astype(int),
        o[:, 1],
        o[:, 2].astype(int),
        CompanionParams(min_sites=2, min_outings=1),
    )
    assert shared.plate.tolist() == [5, 1, 2]
    wide = find_companions(
        s_ts,
        s_site,
        o[:, 0].astype(int),
        o[:, 1],
        o[:, 2].astype(int),
        CompanionParams(window_s=120),
        frequent,
    )
    assert wide.plate.tolist() == [1, 4]
    empty = find_companions(s_ts, s_site, np.zeros(0, int), np.zeros(0), np.zeros(0, int), CompanionParams())
    assert len(empty.plate) == 0 and empty.candidates == 0


# ---- ground truth: the movement simulator's planted clones and companion groups


def _readable_passes(ctx: AppContext, frm: dt.datetime, to: dt.datetime) -> int:
    """The stored passes the analyses read: a valid plate read off a vehicle, inside the window."""
    with ctx.db.session() as s:
        q = select(func.count()).where(
            Pass.ts >= frm, Pass.ts <= to, Pass.plate_valid.is_(True), Pass.plate_kind.not_in(clones.NOT_READ)
        )
        return int(s.scalar(q) or 0)


def test_cloned_plates_ground_truth(movement_world: tuple[AppContext, Any]) -> None:
    ctx, world = movement_world
    frm, to = world.window()
    with ctx.db.session() as s:
        items, stats = clones.analyse(s, frm, to, CloneParams())
    # every planted pair whose two cars were both recorded (a genuine car left at home leaves the
    # clone alone with the plate: nothing contradicts); in this world that is all of them
    truth = {c["plate_no"] for c in world.truth.clones if all(c["tracks"].values())}
    assert len(truth) == len(world.truth.clones) == 3
    found = {it["plate_no"] for it in items}
    tp = len(found & truth)
    precision, recall = tp / max(1, len(found)), tp / len(truth)
    print(
        f"cloned plates: precision {precision:.3f} recall {recall:.3f} "
        f"({tp}/{len(found)} of {len(truth)}) {stats}"
    )
    assert precision >= 0.9 and recall >= 0.9, (found, truth)
    # every pass with a plate read off a vehicle was read (the world is fixed by its seed and START,
    # not by the day); misreads that lost a character are not a plate and are left out
    assert stats["passes"] == _readable_passes(ctx, frm, to) > 0.95 * len(world.items["passes"])
    assert stats["checkpoints_on_roads"] == stats["checkpoints"]
    for it in items:
        assert it["contradictions"] >= 2
        assert it["implied_speed_kmh"] is None or it["implied_speed_kmh"] > 150
        assert it["a"]["checkpoint_id"] != it["b"]["checkpoint_id"] and it["distance_m"] >= 500
        assert dt.datetime.fromisoformat(it["b"]["ts"]) >= dt.datetime.fromisoformat(it["a"]["ts"])
        # the two sides are the two vehicles of the planted pair: their recorded passes
        pair = next(c for c in world.truth.clones if c["plate_no"] == it["plate_no"])
        owner = {p["key"]: v for v, track in pair["tracks"].items() for p in track}
        assert it["a"]["key"] in owner and it["b"]["key"] in owner
        assert owner[it["a"]["key"]] != owner[it["b"]["key"]]


def test_loaders_agree(movement_world: tuple[AppContext, Any]) -> None:
    """The PostgreSQL binary-COPY loader reads what the portable ordered scan reads."""
    ctx, world = movement_world
    frm, to = world.window()
    with ctx.db.session() as s:
        sites = clones.Sites.load(s)
        fast = clones.load_columns(s, sites, frm, to)
        slow = clones.load_columns(s, sites, frm, to, portable=True)
        names_fast = np.array(fast.names(s, sites, np.arange(fast.n_plates)), object)[fast.cols.plate]
        names_slow = np.array(slow.names(s, sites, np.arange(slow.n_plates)), object)[slow.cols.plate]
    assert len(fast.cols) == len(slow.cols) == _readable_passes(ctx, frm, to)
    assert fast.n_plates == slow.n_plates
    a = sorted(zip(names_fast, fast.cols.ts.round(3).tolist(), fast.cols.cp.tolist(), strict=True))
    b = sorted(zip(names_slow, slow.cols.ts.round(3).tolist(), slow.cols.cp.tolist(), strict=True))
    assert a == b
    for cols in (fast.cols, slow.cols):  # grouped by plate, in time order within each
        same = cols.plate[1:] == cols.plate[:-1]
        assert (np.diff(cols.ts)[same] >= 0).all()
        assert len(np.unique(cols.plate)) == 1 + int((~same).sum())


def test_companions_ground_truth(movement_world: tuple[AppContext, Any]) -> None:
    ctx, world = movement_world
    frm, to = world.window()
    tp = fp = fn = 0
    with ctx.db.session() as s:
        for g in world.truth.companions:
            for plate in g["plates"]:
                items, stats = companions.analyse(s, plate, frm, to, CompanionParams())
                want = set(g["plates"]) - {plate}
                got = {it["plate_no"] for it in items}
                tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
                assert stats["excluded_frequent"] <= stats["candidates"]
    precision, recall = tp / max(1, tp + fp), tp / (tp + fn)
    print(f"companions: precision {precision:.3f} recall {recall:.3f} (tp {tp}, fp {fp}, fn {fn})")
    assert precision >= 0.9 and recall >= 0.9


# ---- the API


def _clone_and_companion_passes(ctx: AppContext) -> dt.datetime:
    """粤B11111 and 粤B22222 seen 2 km apart every 10 s (clones); 粤B33333 drives CP1→CP3 and back
    with 粤B44444 15 s behind (companion); 粤B55555 once, near 粤B33333; 粤B7777B with two misreads
    of its OCR twin 粤B77778 (not a clone)."""
    t = base_time()
    items = []
    for n, plate in enumerate(("粤B11111", "粤B22222")):
        for k in range(4):
            ts = t + dt.timedelta(seconds=10 * k + n)
            items.append(pass_item(f"an-{plate[-5:]}-{k}", plate, ts, (CP1, CP3)[k % 2]))
    trip = [(0, CP1), (100, CP2), (200, CP3), (7200, CP3), (7300, CP2), (7400, CP1)]
    for k, (sec, cp) in enumerate(trip):
        ts = t + dt.timedelta(seconds=3600 + sec)
        items.append(pass_item(f"an-33333-{k}", "粤B33333", ts, cp))
        items.append(pass_item(f"an-44444-{k}", "粤B44444", ts + dt.timedelta(seconds=15), cp))
    items.append(pass_item("an-55555-0", "粤B55555", t + dt.timedelta(seconds=3605), CP1))
    # 粤B7777B waits at CP3 while 粤B77778 waits at CP1, 2 km away; twice a pass of 粤B77778 is
    # read as 粤B7777B (8 → B): two contradictions, both explained as misreads of the twin
    s0 = 4 * 3600
    own = [(s0, CP3), (s0 + 20, CP3), (s0 + 600, CP3), (s0 + 620, CP3)]
    misread = [(s0 + 10, CP1), (s0 + 610, CP1)]
    twin = [(s0 - 50, CP1), (s0 + 70, CP1), (s0 + 560, CP1), (s0 + 660, CP1)]
    for plate, plan in (("粤B7777B", own + misread), ("粤B77778", twin)):
        for k, (sec, cp) in enumerate(plan):
            items.append(pass_item(f"an-{plate[-5:]}-{k}", plate, t + dt.timedelta(seconds=sec), cp))
    with ctx.db.session() as s:
        assert records.ingest_passes(s, items).reply.accepted == len(items)
    return t


def test_api_cloned_plates_and_companions(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ctx)
    t = _clone_and_companion_passes(ctx)
    h = auth(tokens["investigator"])
    win = {"from": (t - dt.timedelta(hours=1)).isoformat(), "to": (t + dt.timedelta(hours=5)).isoformat()}
    q = {**win, "case_no": "A4403052026110007"}

    r = client.get("/api/v1/analysis/cloned-plates", params={**q, "limit": 1}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2 and len(body["items"]) == 1 and body["next_cursor"]
    assert body["stats"]["explained_as_misreads"] == 2 and body["stats"]["twin_plates"] == 1
    assert body["params"]["max_speed_kmh"] == 150 and body["params"]["detour"] == 1.3
    assert body["params"]["from"] == dt.datetime.fromisoformat(win["from"]).isoformat()
    first = body["items"][0]
    assert set(first) >= {"plate_no", "a", "b", "distance_m", "seconds", "implied_speed_kmh", "evidence"}
    assert {first["a"]["checkpoint_id"], first["b"]["checkpoint_id"]} == {CP1, CP3}
    assert first["distance_m"] == pytest.approx(1.3 * 2056, rel=0.01)  # no roads registered
    r2 = client.get(
        "/api/v1/analysis/cloned-plates", params={**q, "limit": 1, "cursor": body["next_cursor"]}, headers=h
    )
    assert r2.status_code == 200 and r2.json()["next_cursor"] is None
    assert {first["plate_no"], r2.json()["items"][0]["plate_no"]} == {"粤B11111", "粤B22222"}
    # a window holding more passes than one analysis reads at once is refused, naming the window
    monkeypatch.setattr(clones, "MAX_PASSES", 10)
    r = client.get("/api/v1/analysis/cloned-plates", params=q, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from", r.text
    monkeypatch.undo()
    # a stricter bound: 2.7 km in 10 s (+4 s jitter) is under 1000 km/h: nothing
    r = client.get("/api/v1/analysis/cloned-plates", params={**q, "max_speed_kmh": 1000}, headers=h)
    assert r.json()["items"] == []

    r = client.get("/api/v1/analysis/companions", params={**q, "plate_no": "粤b 33333"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["params"]["plate_no"] == "粤B33333" and body["params"]["window_s"] == 60
    assert body["params"]["min_sites"] == 3 and body["params"]["min_outings"] == 2
    assert body["params"]["min_share"] == 0.6 and body["params"]["frequency_cut"] == 8 * 5  # median 5 passes
    assert [(i["plate_no"], i["sites"], i["co_occurrences"], i["outings"]) for i in body["items"]] == [
        ("粤B44444", 3, 6, 2)
    ]
    r = client.get(
        "/api/v1/analysis/companions",
        params={
            **q,
            "plate_no": "粤B33333",
            "min_sites": 1,
            "min_outings": 1,
            "min_share": 0,
            "window_s": 10,
        },
        headers=h,
    )
    assert [i["plate_no"] for i in r.json()["items"]] == ["粤B55555"]

    # both calls were audited, with the case and the parameters as applied
    with ctx.db.session() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.route.like("analysis.%"), AuditEntry.outcome == "ok")
        ).all()
    routes = [(e.route, e.case_no, e.result_size) for e in rows]
    assert ("analysis.cloned_plates", "A4403052026110007", 1) in routes
    assert ("analysis.companions", "A4403052026110007", 1) in routes
    assert all(e.user_name == "test-investigator" for e in rows)
    assert any(e.params.get("plate_no") == "粤B33333" and e.params.get("window_s") == 10 for e in rows)


@pytest.mark.parametrize("path", ["/api/v1/analysis/cloned-plates", "/api/v1/analysis/companions"])
def test_api_refusals(client: TestClient, tokens: dict[str, str], path: str) -> None:
    h = auth(tokens["investigator"])
    extra = {"plate_no": "粤B33333"} if "companions" in path else {}
    now = dt.datetime.now(dt.UTC)

    def problem(params: dict[str, Any], field: str, token: str = "investigator", status: int = 422) -> None:
        r = client.get(path, params={**extra, **params}, headers=auth(tokens[token]))
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        if status == 422:
            assert field in {e["field"] for e in r.json()["errors"]}, r.json()

    problem({}, "case_no")
    q = {"case_no": "A1"}
    problem({**q, "from": now.isoformat(), "to": (now - dt.timedelta(hours=1)).isoformat()}, "from")
    problem({**q, "from": (now - dt.timedelta(days=40)).isoformat(), "to": now.isoformat()}, "from")
    problem({**q, "from": "2026-01-01T00:00:00"}, "from")  # no offset
    problem({**q, "cursor": "bm90LWEtY3Vyc29y"}, "cursor")
    problem({**q, "limit": 5000}, "limit")
    problem(q, "", token="staff", status=403)
    if extra:
        problem({**q, "plate_no": "无牌"}, "plate_no")
        problem({**q, "window_s": 0}, "window_s")
    else:
        problem({**q, "max_speed_kmh": -1}, "max_speed_kmh")
    r = client.get(path, params={**extra, **q}, headers=h)
    assert r.status_code == 200 and r.json()["items"] == []
