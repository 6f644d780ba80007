"""Ground truth for the analyses: a small simulated city and days of movement, loaded into a database.

`world()` builds (and caches per process) the city, the movement batches and the truth; `load()` puts
the registry (areas, roads, key sites, checkpoints, face cameras, fences) and every pass and sighting
into the context's database through the same ingest code the API runs.

The world is the same on every day the suite runs: its days start on a fixed date (`START`), and
`load()` ingests with the service's clock (`tianwang.clock`) set to just after the world's last day,
so the retention and future checks see the records as recent whatever the machine's calendar says.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from simulator.city import City, CityParams, generate_city
from simulator.movement import MovementParams, simulate_movement
from simulator.movement.simulate import Truth
from tianwang import clock
from tianwang.cameras import service as cameras
from tianwang.cameras.schemas import CameraSpec
from tianwang.checkpoints import service as checkpoints
from tianwang.checkpoints.schemas import CheckpointSpec
from tianwang.context import AppContext
from tianwang.places import service as places
from tianwang.places.schemas import AreaIn, FenceIn, KeySiteIn
from tianwang.records import ingest as records

CITY = CityParams(cameras=500, seed=11, inner_checkpoints=250, face_cameras=40)
DAYS = 3


# the first simulated day (local +08:00): a Monday, so the default three days are weekdays
START = dt.date(2026, 3, 2)


@dataclass
class World:
    city: City
    params: MovementParams
    truth: Truth
    items: dict[str, list[dict[str, Any]]]  # kind (passes | faces | phones) -> wire items, time order

    @property
    def owners(self) -> list[dict[str, Any]]:
        return self.truth.owners

    def clock_at(self) -> dt.datetime:
        """The instant the service's clock is set to while the world is loaded: an hour after its
        last day ends."""
        return self.window()[1] + dt.timedelta(hours=1)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The simulated days as an aware UTC window [from, to)."""
        tz = dt.timezone(dt.timedelta(hours=8))
        d0 = dt.datetime.combine(self.params.start, dt.time(), tz)
        return d0.astimezone(dt.UTC), (d0 + dt.timedelta(days=self.params.days)).astimezone(dt.UTC)


@functools.cache
def world(
    people: int = 1500,
    vehicles: int = 1000,
    days: int = DAYS,
    seed: int = 4,
    clones: int = 3,
    companion_groups: int = 4,
    city: CityParams = CITY,
) -> World:
    """One simulated world per argument set (cached: tests in a process share it)."""
    c = generate_city(city)
    mp = MovementParams(
        people=people,
        vehicles=vehicles,
        days=days,
        seed=seed,
        start=START,
        clones=clones,
        companion_groups=companion_groups,
    )
    batches, truth, _ = simulate_movement(c, mp)
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in batches:
        items[b.kind].extend(b.items)
    return World(c, mp, truth, dict(items))


def load(ctx: AppContext, w: World, *, roads: bool = True) -> dict[str, int]:
    """Register the city's places and sensors, then ingest every record; returns stored counts."""
    with clock.travel(w.clock_at()):
        return _load(ctx, w, roads=roads)


def _load(ctx: AppContext, w: World, *, roads: bool) -> dict[str, int]:
    city = w.city
    with ctx.db.session() as s:
        for a in city.areas:
            places.upsert_area(s, AreaIn.model_validate(a))
        if roads:
            rep = places.import_roads(s, city.roads_geojson())
            assert not rep.rejected, rep.rejected[:3]
        for k in city.key_sites:
            places.upsert_key_site(s, KeySiteIn.model_validate(k))
        for f in w.truth.fences:
            places.upsert_fence(s, FenceIn.model_validate(f))
        for cp in city.checkpoints:
            body = {k: v for k, v in cp.items() if k != "camera_ids"}
            checkpoints.create(s, CheckpointSpec.model_validate(body), ctx.box)
        for cam in city.cameras:
            if cam["kind"] == "face":
                cameras.create(s, CameraSpec.model_validate(cam), ctx.box)
    stored = {}
    ingest = {"passes": records.ingest_passes, "faces": records.ingest_faces, "phones": records.ingest_phones}
    for kind, fn in ingest.items():
        n = 0
        data = w.items.get(kind, [])
        for i in range(0, len(data), 5000):
            with ctx.db.session() as s:
                out = fn(s, data[i : i + 5000])
                assert not out.reply.rejected, (kind, out.reply.rejected[:3])
                n += len(data[i : i + 5000])
        stored[kind] = n
    return stored
