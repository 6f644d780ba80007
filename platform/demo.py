"""`tianwang demo`: the main job on one machine — a living synthetic city on the embedded default.

One start gives, on SQLite and a directory object store (or whatever the settings name):

- the city of `simulator.city` loaded into the registry: areas, roads, key sites, checkpoints (卡口)
  and every camera, face cameras included, plus the phone fences of the movement simulator;
- every camera of that city served as a virtual ONVIF device (`simulator`), a share of them faulty,
  and one edge agent (`tianwang agent`) polling them — so the coverage dashboard and the map show
  states the agent observed, not made-up ones. The city's size follows `--cameras`: it is the city
  that many cameras make (0.15 km of road per camera), with a checkpoint on about one road in four
  and a face camera per ten cameras;
- the movement simulator's people and vehicles feeding passes, faces and phone sightings to the API
  with an agent token: first the history (the last 24 hours; the simulated days start yesterday at
  local midnight) as fast as the API takes it, then live, each record sent when the wall clock reaches
  its time — never a record from the future;
- the console URL, a token per role, and subjects to try (a plate, its owner, their phone; the busiest
  taxi or bus, to hotlist for alarms; the planted cloned plate and companions) with the ground truth.

Ctrl-C (or SIGTERM) stops the feeder, the agent, the devices and then the API, and leaves the data in
the data directory. The next start on that directory reuses it: the same tokens, the same city (by id,
nothing registered twice), and the feed goes on from where it stopped — records are keyed, and what
was delivered is remembered (`demo-state.json`), so nothing is stored twice.

The devices and the feeder run as child processes of this module (`python -m tianwang.demo devices|feed`),
the agent as `tianwang agent`, as they would on machines of their own.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tianwang.config import get_settings

if TYPE_CHECKING:
    from simulator.city import City, CityParams
    from simulator.movement.model import MovementParams

DEMO_ROLES = ("admin", "staff", "installer", "investigator", "agent")
STATE_FILE = "demo-state.json"
TOKENS_FILE = "demo-tokens.json"
DEMO_AGENT_ID = "demo-agent"
# the agent token is bound like a real one: its one agent id, and every zone (the demo's city is
# all there is)
AGENT_BOUNDS = {"zones": ["*"], "agent_ids": [DEMO_AGENT_ID]}
MOVEMENT_DIR = "movement"
LOCAL = dt.timezone(dt.timedelta(hours=8))  # the simulated city keeps China Standard Time
SIM_DAYS = 366  # the longest run the movement simulator takes; the feed idles after it
HISTORY_S = 86_400.0  # the first start sends the last 24 hours as history, then goes live
REBASE_AFTER_DAYS = 7  # an older first day is moved to yesterday (less to replay on a restart)
DEFAULTS = {"cameras": 100, "seed": 1, "people": 1000, "vehicles": 600}
log = logging.getLogger("tianwang.demo")


# ---- tokens ------------------------------------------------------------------------------------


def demo_tokens(ctx: object, path: Path) -> dict[str, str]:
    """The demo's tokens, made on the first start and kept (0600) so a restart prints the same ones."""
    from tianwang.auth.tokens import authenticate, create_token, limit_token
    from tianwang.context import AppContext
    from tianwang.errors import Unauthorized

    assert isinstance(ctx, AppContext)
    tokens: dict[str, str] = {}
    if path.exists():
        try:
            tokens = {k: v for k, v in json.loads(path.read_text()).items() if k in DEMO_ROLES}
        except ValueError:
            tokens = {}
    with ctx.db.session() as s:
        for role in DEMO_ROLES:
            tok = tokens.get(role)
            if tok:
                try:
                    who = authenticate(s, tok)
                except Unauthorized:  # the database was reset: mint a new one
                    pass
                else:
                    if role == "agent" and who.zones is None:  # made before zones: bound it now
                        limit_token(s, who.token_id, AGENT_BOUNDS["zones"], AGENT_BOUNDS["agent_ids"])
                    continue
            bounds = AGENT_BOUNDS if role == "agent" else {}
            tokens[role] = create_token(s, role, f"demo-{role}", **bounds)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f, indent=2)
    return tokens


# ---- the plan: what city and population this data directory holds -----------------------------


@dataclass(frozen=True)
class Plan:
    cameras: int
    seed: int
    people: int
    vehicles: int
    start: str  # first simulated day, YYYY-MM-DD (local +08:00)

    def city_params(self) -> CityParams:
        from simulator.city import CityParams

        return CityParams(
            cameras=self.cameras,
            seed=self.seed,
            inner_checkpoints=max(4, self.cameras // 4),
            face_cameras=max(2, self.cameras // 10),
        )

    def movement_params(self) -> MovementParams:
        from simulator.movement.model import MovementParams

        return MovementParams(
            people=self.people,
            vehicles=self.vehicles,
            days=SIM_DAYS,
            seed=self.seed,
            start=dt.date.fromisoformat(self.start),
        )


def local_today() -> dt.date:
    return dt.datetime.now(LOCAL).date()


def read_state(data: Path) -> dict[str, Any]:
    try:
        state = json.loads((data / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(data: Path, state: dict[str, Any]) -> None:
    """Atomically (write, then rename): a reader sees the old state or the new one."""
    tmp = data / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, data / STATE_FILE)


def resolve_plan(state: dict[str, Any], asked: dict[str, int | None]) -> Plan:
    """The stored plan (a restart), checked against what was asked; or a new one from the arguments."""
    stored = state.get("plan")
    today = local_today()
    if isinstance(stored, dict):
        clash = [
            f"--{k} {v} (this data holds {stored.get(k)})"
            for k, v in asked.items()
            if v is not None and stored.get(k) != v
        ]
        if clash:
            raise RuntimeError(
                "the data directory holds another demo city: "
                + ", ".join(clash)
                + "; start without those options, or set TIANWANG_DATA_DIR to a new directory"
            )
        start = dt.date.fromisoformat(str(stored["start"]))
        if (today - start).days > REBASE_AFTER_DAYS:
            # the same people and plates from yesterday on; what was delivered stays delivered
            start = today - dt.timedelta(days=1)
        return Plan(
            int(stored["cameras"]),
            int(stored["seed"]),
            int(stored["people"]),
            int(stored["vehicles"]),
            start.isoformat(),
        )
    v = {k: (asked.get(k) if asked.get(k) is not None else d) for k, d in DEFAULTS.items()}
    return Plan(
        int(v["cameras"] or 0),
        int(v["seed"] or 0),
        int(v["people"] or 0),
        int(v["vehicles"] or 0),
        (today - dt.timedelta(days=1)).isoformat(),
    )


# ---- the registry --------------------------------------------------------------------------------


def device_specs(city: City, seed: int) -> list[dict[str, Any]]:
    """A virtual device for every camera of the city (DeviceSpec fields), with a stable password."""
    from simulator.spec import KIND_OPTICS

    specs = []
    for cam in city.cameras:
        kind = str(cam["kind"])
        big = kind in ("checkpoint", "ptz")
        digest = hashlib.sha256(f"demo:{seed}:{cam['device_id']}".encode()).hexdigest()
        specs.append(
            {
                "device_id": cam["device_id"],
                "name": cam["name"],
                "kind": kind,
                "lon": cam["lon"],
                "lat": cam["lat"],
                "heading_deg": cam["heading_deg"],
                "hfov_deg": cam["hfov_deg"],
                "range_m": cam["range_m"],
                "point_class": cam["point_class"],
                "password": "Sim" + digest[:10],
                "width": 1920 if big else 1280,
                "height": 1080 if big else 720,
                "model": KIND_OPTICS[kind][2] if kind in KIND_OPTICS else "SIM-IPC-F3140",
            }
        )
    return specs


def register_city(ctx: object, city: City, fences: list[dict[str, Any]]) -> dict[str, int]:
    """Areas, roads, key sites, fences and checkpoints, each upserted by its id (a restart adds none)."""
    from sqlalchemy import select

    from tianwang.checkpoints import service as checkpoints
    from tianwang.checkpoints.schemas import CheckpointSpec
    from tianwang.context import AppContext
    from tianwang.places import service as places
    from tianwang.places.schemas import AreaIn, FenceIn, KeySiteIn
    from tianwang.storage.models import Checkpoint

    assert isinstance(ctx, AppContext)
    with ctx.db.session() as s:
        for a in city.areas:
            places.upsert_area(s, AreaIn.model_validate(a))
        rep = places.import_roads(s, city.roads_geojson())
        if rep.rejected:
            raise RuntimeError(f"the city's roads were refused: {rep.rejected[:3]}")
        for k in city.key_sites:
            places.upsert_key_site(s, KeySiteIn.model_validate(k))
        for f in fences:
            places.upsert_fence(s, FenceIn.model_validate(f))
        known = set(s.scalars(select(Checkpoint.checkpoint_id)))
        for cp in city.checkpoints:
            if cp["checkpoint_id"] not in known:
                body = {k: v for k, v in cp.items() if k != "camera_ids"}
                checkpoints.create(s, CheckpointSpec.model_validate(body), ctx.box)
    return {
        "areas": len(city.areas),
        "roads": len(city.edge_u),
        "key_sites": len(city.key_sites),
        "fences": len(fences),
        "checkpoints": len(city.checkpoints),
    }


def register_devices(ctx: object, devices: list[dict[str, Any]], city: City | None = None) -> tuple[int, int]:
    """Create the cameras with where their virtual devices listen, or update that (ports change
    between runs). With `city`, each record is the city's camera (address, station, checkpoint…)."""
    from sqlalchemy import select

    from tianwang.cameras import service
    from tianwang.cameras.schemas import CameraSpec
    from tianwang.context import AppContext
    from tianwang.storage.models import Camera

    assert isinstance(ctx, AppContext)
    by_id = {c["device_id"]: c for c in city.cameras} if city is not None else {}
    created = updated = 0
    with ctx.db.session() as s:
        for d in devices:
            body = {k: v for k, v in d.items() if k != "faults"}
            body.update(by_id.get(d["device_id"], {}))
            # a lively demo: checks every 30 s, a picture every 2 minutes
            body.setdefault("health_interval_s", 30)
            body.setdefault("snapshot_interval_s", 120)
            spec = CameraSpec.model_validate(body)
            row = s.scalar(select(Camera).where(Camera.device_id == spec.device_id))
            if row is None:
                service.create(s, spec, ctx.box)
                created += 1
            else:
                service.apply_spec(row, spec, ctx.box)
                updated += 1
    return created, updated


# ---- child processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for_json(path: Path, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 90) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            time.sleep(0.1)  # not written yet, or half-written
    raise RuntimeError(f"the simulator did not list its devices within {timeout_s:g} s")


def _spawn(args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
            [sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


def _stop_all(procs: list[tuple[subprocess.Popen[bytes], float]]) -> None:
    """SIGTERM to each (each stops cleanly on it), then wait; whatever outlives its grace is killed."""
    for proc, _grace in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc, grace in procs:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _watch_parent(stop: threading.Event, on_orphan: Any) -> None:
    """In a child: act when the demo that started us is gone (killed without a chance to stop us)."""
    parent = os.getppid()

    def run() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                on_orphan()
                return

    threading.Thread(target=run, name="parent-watch", daemon=True).start()


# ---- the demo ------------------------------------------------------------------------------------


def _percent(s: str) -> str:
    return quote(s, safe="")


def _print_samples(out: Any, port: int, tokens: dict[str, str], sample: dict[str, Any], truth: Path) -> None:
    base = f"http://127.0.0.1:{port}/api/v1"
    print(f"  sample plate:   {sample['plate_no']}  ({sample['passes']} passes so far)", file=out)
    print(f"  sample person:  {sample['person_id']}  (its owner)", file=out)
    print(f"  sample phone:   {sample['imsi']}  (the owner's phone)", file=out)
    if sample.get("busy"):
        print(
            f"  busy plate:     {sample['busy']}  (a taxi or bus: hotlist it for alarms in the daytime)",
            file=out,
        )
    if sample.get("clone"):
        print(f"  cloned plate:   {sample['clone']}  (套牌: two vehicles, one plate)", file=out)
    if sample.get("companions"):
        print(
            f"  companions:     {', '.join(sample['companions'])}  (travel together most evenings)", file=out
        )
    print(f"  ground truth:   {truth}/truth.json, {truth}/owners.jsonl.gz", file=out)
    print(
        f"  try:            curl -H 'Authorization: Bearer {tokens['investigator']}' "
        f"'{base}/trajectories/vehicle/{_percent(sample['plate_no'])}?case_no=DEMO-1'",
        file=out,
        flush=True,
    )


def run_demo(
    port: int = 8000,
    cameras: int | None = None,
    fault_share: float = 0.2,
    *,
    people: int | None = None,
    vehicles: int | None = None,
    seed: int | None = None,
) -> None:
    t_start = time.monotonic()
    settings = get_settings()
    settings.public_url = f"http://127.0.0.1:{port}"
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    lock = (data / "demo.lock").open("a")
    try:
        import fcntl

        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"a demo is already running on {data}") from None
        if not _port_free(port):
            raise RuntimeError(f"port {port} on 127.0.0.1 is taken: choose another with --port")
        _run_locked(
            data,
            port,
            fault_share,
            {"cameras": cameras, "seed": seed, "people": people, "vehicles": vehicles},
            t_start,
        )
    finally:
        lock.close()


def _run_locked(
    data: Path, port: int, fault_share: float, asked: dict[str, int | None], t_start: float
) -> None:
    import uvicorn

    from simulator.city import generate_city
    from simulator.movement.output import write_world
    from simulator.movement.simulate import Simulation
    from tianwang.api.app import create_app
    from tianwang.context import AppContext
    from tianwang.storage import migrate
    from tianwang.storage.db import make_engine

    settings = get_settings()
    url = settings.effective_database_url

    state = read_state(data)
    plan = resolve_plan(state, asked)
    state["plan"] = asdict(plan)
    state.pop("phase", None)
    write_state(data, state)

    make_engine(url).dispose()  # makes the SQLite directory
    migrate.upgrade(url)
    ctx = AppContext.build(settings)
    tokens = demo_tokens(ctx, data / TOKENS_FILE)
    city = generate_city(plan.city_params())
    world = Simulation(city, plan.movement_params())  # the feeder builds the same; here for fences and truth
    truth_dir = data / MOVEMENT_DIR
    write_world(world, truth_dir)
    registry = register_city(ctx, city, world.roads.fence_bodies)

    children: list[tuple[str, subprocess.Popen[bytes], float]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server: uvicorn.Server | None = None
    api_thread: threading.Thread | None = None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        specs_path, dev_json, dev_log = (
            data / "demo-specs.json",
            data / "demo-devices.json",
            data / "demo-devices.log",
        )
        specs_path.write_text(json.dumps(device_specs(city, plan.seed), ensure_ascii=False), encoding="utf-8")
        dev_json.unlink(missing_ok=True)
        print(
            f"Starting the city: {len(city.cameras)} cameras as virtual ONVIF devices, "
            f"{len(city.checkpoints)} checkpoints …",
            flush=True,
        )
        sim = _spawn(
            ["-m", "tianwang.demo", "devices", "--specs", str(specs_path), "--json", str(dev_json),
             "--fault-share", str(fault_share), "--seed", str(plan.seed)],
            dev_log, env,
        )  # fmt: skip
        children.append(("devices", sim, 15))
        devices = _wait_for_json(dev_json, sim, dev_log)
        created, updated = register_devices(ctx, devices, city)
        faulty = sum(1 for d in devices if d.get("faults"))

        logging.basicConfig(level=logging.WARNING)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, ctx),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                # an agent's long-poll heartbeat outlives the agent by up to a minute: do not wait for it
                timeout_graceful_shutdown=3,
            )
        )
        # in a thread of its own: uvicorn then leaves the signals to us, and we stop it last
        api_thread = threading.Thread(target=server.run, name="api", daemon=True)
        api_thread.start()
        while not server.started:
            if not api_thread.is_alive():
                raise RuntimeError(f"the API did not start on 127.0.0.1:{port}")
            if stop.wait(0.05):
                return
        metrics_port = _free_port()
        agent_log = data / "demo-agent.log"
        agent = _spawn(
            ["-m", "tianwang.cli", "agent", "--central", settings.public_url, "--agent-id", DEMO_AGENT_ID,
             "--outbox", str(data / "demo-agent-outbox.db"), "--metrics-port", str(metrics_port)],
            # the token in the environment, not on a command line that ps shows to everyone
            agent_log, {**env, "TIANWANG_AGENT_TOKEN": tokens["agent"]},
        )  # fmt: skip
        children.append(("agent", agent, 20))
        feed_log = data / "demo-feed.log"
        feeder = _spawn(
            ["-m", "tianwang.demo", "feed", "--data", str(data), "--central", settings.public_url],
            feed_log, {**env, "TIANWANG_DEMO_TOKEN": tokens["agent"]},
        )  # fmt: skip
        children.append(("feeder", feeder, 20))

        console = f"http://127.0.0.1:{port}/console"
        print(f"Tianwang demo — database {_redact(url)}, objects {settings.effective_object_store}")
        print(
            f"  city:      {registry['areas']} areas, {registry['roads']} roads, "
            f"{registry['key_sites']} key sites, {registry['checkpoints']} checkpoints, "
            f"{registry['fences']} phone fences"
        )
        print(
            f"  devices:   {len(devices)} cameras live ({created} new, {updated} updated), "
            f"{faulty} with faults; people {plan.people}, vehicles {plan.vehicles}"
        )
        print(f"  console:   {console}")
        print(f"  API docs:  http://127.0.0.1:{port}/docs")
        print(
            f"  metrics:   http://127.0.0.1:{port}/metrics (staff token); agent http://127.0.0.1:{metrics_port}/metrics"
        )
        for role in DEMO_ROLES:
            print(f"  {role + ' token:':<20} {tokens[role]}")
        print(f"  logs:      {dev_log.name}, {agent_log.name}, {feed_log.name} in {data}")
        print(f"  (tokens kept in {data / TOKENS_FILE}; Ctrl-C stops everything, the data stays)")
        print(f"Ready in {time.monotonic() - t_start:.1f} s; loading the movement history …", flush=True)

        shown = False
        while not stop.wait(0.5):
            for name, proc, _grace in children:
                if proc.poll() is not None:
                    log_file = {"devices": dev_log, "agent": agent_log, "feeder": feed_log}[name]
                    print(
                        f"warning: the {name} stopped (exit {proc.returncode}); see {log_file}",
                        file=sys.stderr,
                        flush=True,
                    )
                    children.remove((name, proc, _grace))
                    break
            if not shown:
                st = read_state(data)
                if st.get("phase") == "live" and isinstance(st.get("sample"), dict):
                    shown = True
                    h = st.get("history") or {}
                    print(
                        f"Living city: history loaded in {h.get('seconds', 0):.1f} s "
                        f"({h.get('passes', 0)} passes, {h.get('faces', 0)} faces, "
                        f"{h.get('phones', 0)} phone sightings); now live, "
                        f"{time.monotonic() - t_start:.1f} s after start",
                        flush=True,
                    )
                    _print_samples(sys.stdout, port, tokens, st["sample"], truth_dir)
        print("Stopping: feeder, agent, devices, API …", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # the feeder and the agent together (both only talk to the API), then the devices, then the API
        _stop_all([(p, g) for name, p, g in children if name != "devices"])
        _stop_all([(p, g) for name, p, g in children if name == "devices"])
        if server is not None and api_thread is not None:
            # the stopped agent's last long-poll heartbeat is cut at shutdown: nobody waits for it
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            server.should_exit = True
            api_thread.join(20)
        ctx.close()
    print(f"Stopped. The data stays in {data}; `tianwang demo` again goes on from here.", flush=True)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable database URL)"


# ---- child: the virtual devices -----------------------------------------------------------------


def run_devices(specs_path: Path, json_path: Path, fault_share: float, seed: int) -> int:
    import asyncio

    from simulator.cli import serve
    from simulator.devices import Simulator
    from simulator.spec import DeviceSpec

    specs = [DeviceSpec(**d) for d in json.loads(specs_path.read_text(encoding="utf-8"))]
    sim = Simulator(specs=specs, fault_share=fault_share, seed=seed, control_port=0, discovery_port=None)
    watch = threading.Event()
    _watch_parent(watch, lambda: os.kill(os.getpid(), signal.SIGTERM))
    try:
        asyncio.run(serve(sim, str(json_path)))
    finally:
        watch.set()
    return 0


# ---- child: the movement feeder -----------------------------------------------------------------


class _Stopped(Exception):
    pass


class Feeder:
    """Sends the movement simulator's records to the API, each once its time has come.

    The batches come per window of simulated time, each kind in time order; the feeder pulls them
    until a window beyond now + one window, posts what is due (ts ≤ now) in chunks of ≤ 5000, keeps the
    rest, and then every second posts what fell due. `frontier` is a time before which every record was
    acknowledged by the API; it is saved, and a restart skips what lies before it (what lies after it
    and was sent already comes back as duplicates: the keys are the simulator's, stable across runs)."""

    def __init__(self, data: Path, central: str, token: str) -> None:
        import httpx

        from simulator.city import generate_city
        from simulator.movement.simulate import Simulation

        self.data = data
        self.state = read_state(data)
        self.plan = Plan(**self.state["plan"])
        self.mp = self.plan.movement_params()
        self.sim = Simulation(generate_city(self.plan.city_params()), self.mp)
        # the first start sends the last day as history: trajectories and analyses have a day to work on
        self.frontier = float(self.state.get("frontier") or time.time() - HISTORY_S)
        self.stop = threading.Event()
        self.http = httpx.Client(
            base_url=central.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(60.0, connect=10.0),
            trust_env=False,
        )
        self.buffers: dict[str, deque[tuple[float, dict[str, Any]]]] = {
            k: deque() for k in ("passes", "faces", "phones")
        }
        self.fed = Counter[str]()
        self.totals = Counter[str]()
        self.seen: dict[str, Counter[str]] = {k: Counter() for k in ("plate", "person", "imsi")}
        self.rejected_logged = 0
        self.phase = "history"
        self.history: dict[str, Any] | None = None
        kept = self.state.get("sample")
        self.sample_: dict[str, Any] | None = kept if isinstance(kept, dict) else None

    def _sleep(self, s: float) -> None:
        if self.stop.wait(s):
            raise _Stopped

    def _post(self, kind: str, items: list[dict[str, Any]]) -> None:
        from simulator.movement.feed import feed
        from simulator.movement.simulate import Batch

        rep = feed([Batch(kind, 0, items)], "", "", client=self.http, sleep=self._sleep, max_retries=10)
        self.fed[kind] += len(items)
        self.totals["accepted"] += rep.accepted
        self.totals["duplicates"] += rep.duplicates
        self.totals["rejected"] += len(rep.rejected)
        for rj in rep.rejected[: max(0, 20 - self.rejected_logged)]:
            print(f"rejected {rj['kind']} {rj['key']}: {rj['errors']}", flush=True)
            self.rejected_logged += 1

    def _flush(self, kind: str, now: float, full_only: bool) -> None:
        buf = self.buffers[kind]
        while buf and buf[0][0] <= now:
            if full_only and (len(buf) < 5000 or buf[4999][0] > now):
                return
            items: list[dict[str, Any]] = []
            while buf and buf[0][0] <= now and len(items) < 5000:
                items.append(buf.popleft()[1])
            if self.phase == "history":
                self._note(kind, items)
            self._post(kind, items)

    def _note(self, kind: str, items: list[dict[str, Any]]) -> None:
        field, counter = {
            "passes": ("plate_no", "plate"),
            "faces": ("person_id", "person"),
            "phones": ("imsi", "imsi"),
        }[kind]
        self.seen[counter].update(str(it.get(field)) for it in items)

    def sample(self) -> dict[str, Any]:
        """A private car's plate seen in the history, with its owner and their phone; plus the truth's
        planted subjects: the busiest taxi or bus, the cloned plate, a companion group."""
        truth = self.sim.truth
        clones = {c["plate_no"] for c in truth.clones}
        best: tuple[int, str, str, str] | None = None
        fleet = [v["plate_no"] for o in truth.owners for v in o["vehicles"] if v["kind"] in ("taxi", "bus")]
        busy = max(fleet, key=lambda p: self.seen["plate"][p], default=None)
        for o in truth.owners:
            for v in o["vehicles"]:
                if v["kind"] != "private" or v["plate_no"] in clones or not o["phones"]:
                    continue
                n = self.seen["plate"][v["plate_no"]]
                imsi = max(o["phones"], key=lambda p: self.seen["imsi"][p["imsi"]])["imsi"]
                score = n + (1000 if self.seen["person"][o["person_id"]] else 0)
                if n and (best is None or score > best[0]):
                    best = (score, v["plate_no"], o["person_id"], imsi)
        if best is None:  # nothing seen yet (a restart just after a long stop): any car owner
            o = next(o for o in truth.owners if o["vehicles"] and o["phones"])
            best = (0, o["vehicles"][0]["plate_no"], o["person_id"], o["phones"][0]["imsi"])
        return {
            "plate_no": best[1],
            "person_id": best[2],
            "imsi": best[3],
            "passes": self.seen["plate"][best[1]],
            "busy": busy,
            "clone": truth.clones[0]["plate_no"] if truth.clones else None,
            "companions": truth.companions[0]["plates"] if truth.companions else [],
        }

    def save(self) -> None:
        st = read_state(self.data)
        st.update(
            plan=asdict(self.plan),
            frontier=self.frontier,
            phase=self.phase,
            fed=dict(self.fed),
            totals=dict(self.totals),
            updated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        if self.sample_ is not None:
            st["sample"] = self.sample_
        if self.history is not None:
            st["history"] = self.history
        write_state(self.data, st)

    def write_truth(self) -> None:
        from simulator.movement.output import write_truth

        write_truth(self.sim.truth, self.data / MOVEMENT_DIR)

    def run(self) -> int:
        from simulator.movement.feed import FeedError

        t0 = time.monotonic()
        gen = self.sim.batches()
        window = self.mp.window_s
        max_seen, exhausted = float("-inf"), False
        last_save = last_truth = time.monotonic()
        code = 0
        try:
            while not self.stop.is_set():
                now = time.time()
                while not exhausted and max_seen < now + window + 60 and not self.stop.is_set():
                    try:
                        b = next(gen)
                    except StopIteration:
                        exhausted = True
                        break
                    buf = self.buffers[b.kind]
                    for it in b.items:
                        ts = dt.datetime.fromisoformat(it["ts"]).timestamp()
                        if ts >= self.frontier:
                            buf.append((ts, it))
                        max_seen = max(max_seen, ts)
                    self._flush(b.kind, now, full_only=True)
                for kind in self.buffers:
                    self._flush(kind, now, full_only=False)
                # everything before this was acknowledged: still buffered or not yet made lies after it
                pending = [buf[0][0] for buf in self.buffers.values() if buf]
                bound = min([now, *pending, float("inf") if exhausted else max_seen - window])
                self.frontier = max(self.frontier, bound)
                if self.phase == "history":
                    self.phase = "live"
                    self.history = {
                        "seconds": round(time.monotonic() - t0, 1),
                        **{k: self.fed[k] for k in self.buffers},
                    }
                    if self.sample_ is None or not self.sample_.get("passes"):
                        self.sample_ = self.sample()
                    self.write_truth()
                    self.save()
                    print(
                        f"history delivered in {self.history['seconds']} s: {self.history}; live", flush=True
                    )
                if time.monotonic() - last_save > 5:
                    self.save()
                    last_save = time.monotonic()
                if time.monotonic() - last_truth > 600:
                    self.write_truth()
                    last_truth = time.monotonic()
                nxt = min(pending, default=now + 1.0)
                self.stop.wait(min(1.0, max(0.05, nxt - time.time())))
        except _Stopped:
            pass
        except FeedError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            code = 1
        finally:
            self.phase = "stopped" if self.phase == "live" else self.phase
            self.save()
            with contextlib.suppress(Exception):
                self.write_truth()
            self.http.close()
            print(f"feeder stopped: sent {dict(self.fed)}, {dict(self.totals)}", flush=True)
        return code


def run_feeder(data: Path, central: str, token: str) -> int:
    feeder = Feeder(data, central, token)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: feeder.stop.set())
    _watch_parent(threading.Event(), feeder.stop.set)
    return feeder.run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tianwang.demo", description="the demo's child processes")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("devices", help="serve the city's cameras as virtual ONVIF devices")
    d.add_argument("--specs", required=True)
    d.add_argument("--json", required=True)
    d.add_argument("--fault-share", type=float, default=0.2)
    d.add_argument("--seed", type=int, default=1)
    f = sub.add_parser(
        "feed", help="feed the movement simulator's records to the API (token: TIANWANG_DEMO_TOKEN)"
    )
    f.add_argument("--data", required=True)
    f.add_argument("--central", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "devices":
        return run_devices(Path(a.specs), Path(a.json), a.fault_share, a.seed)
    token = os.environ.get("TIANWANG_DEMO_TOKEN", "")
    if not token:
        print("error: TIANWANG_DEMO_TOKEN (an agent token) is not set", file=sys.stderr)
        return 2
    return run_feeder(Path(a.data), a.central, token)


if __name__ == "__main__":
    sys.exit(main())
