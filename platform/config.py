"""The one typed configuration tree of the central service, read once from `TIANWANG_*` env / `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIANWANG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="where the embedded default keeps its files")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir")
    object_store: str = Field("", description="`dir:PATH` or `s3://KEY:SECRET@HOST:PORT?secure=false`")
    bucket: str = "tianwang"
    # Key for camera passwords at rest (Fernet, urlsafe base64 of 32 bytes). Empty: a key file
    # in data_dir is made once and reused, which suits the embedded default only.
    secret_key: SecretStr = SecretStr("")
    # Base URL at which this API is reached by agents and browsers; used for the directory
    # store's signed object URLs. Unset, `tianwang serve` makes it the address it serves.
    public_url: str = "http://127.0.0.1:8000"
    presign_expiry_s: int = Field(900, ge=10, le=7 * 86400)
    direct_probe: bool = False
    probe_deadline_s: float = Field(15.0, gt=0, le=120)
    # a device is offline after this many health intervals without an answer (evidence, not a guess)
    allowed_misses: int = Field(3, ge=1, le=100)
    # a camera is not intact (不完好) after this many snapshots in a row that gave no picture
    allowed_snapshot_misses: int = Field(3, ge=1, le=100)
    # a device clock further than this from the agent's is the `clock` fault (时钟不准); still online
    max_clock_skew_s: float = Field(60.0, gt=0, le=365 * 86400)
    # how often the API re-derives the status of devices whose reports stopped
    sweep_interval_s: float = Field(30.0, ge=1, le=3600)
    max_page: int = 1000
    # passes and sightings: day partitions made this far ahead, dropped past the retention
    pass_retention_days: int = Field(365, ge=1, le=36500)
    partitions_ahead_days: int = Field(7, ge=1, le=366)
    maintain_interval_s: float = Field(3600.0, ge=10, le=86400)
    # ingest batches at least this large go through COPY on PostgreSQL
    ingest_copy_threshold: int = Field(50, ge=1)
    # alarm stream: how often a listener re-reads the database (other replicas' alarms), heartbeat
    alarm_poll_s: float = Field(0.5, gt=0, le=10)
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300)
    # a new hotlist is matched against the passes of this many past days unless it names retro_days
    hotlist_retro_days: int = Field(7, ge=0, le=92)
    # alarm delivery to webhooks and MQTT (the outbox): how often it is read when nothing wakes it,
    # the timeout of one call, the retry backoff (doubling from base to max, with jitter), how long
    # a claimed delivery is leased to one worker, and how many are claimed at once
    alarm_delivery: bool = True
    alarm_delivery_poll_s: float = Field(1.0, gt=0, le=60)
    alarm_delivery_timeout_s: float = Field(5.0, gt=0, le=120)
    alarm_retry_base_s: float = Field(1.0, gt=0, le=3600)
    alarm_retry_max_s: float = Field(300.0, gt=0, le=86400)
    alarm_delivery_lease_s: float = Field(60.0, ge=1, le=3600)
    alarm_delivery_batch: int = Field(200, ge=1, le=10_000)
    import_max_bytes: int = 50 * 1024 * 1024
    # any other request body (ingest batches, registry writes); imports and object uploads have their own
    # the console's map: a tile URL template of the police GIS ({z}/{x}/{y}); empty: no tiles are fetched
    map_tile_url: str = ""
    map_tile_attribution: str = ""
    # where the console's npm libraries (Leaflet) are installed; empty: platform/web/node_modules
    web_vendor_dir: str = ""
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    # vertices per GeoJSON geometry (areas, key sites, roads, collision areas): validity checks on a
    # self-intersecting polygon grow much faster than its size, so a larger one is refused (422)
    max_geometry_vertices: int = Field(10_000, ge=4, le=1_000_000)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tianwang.db').resolve()}"

    @property
    def effective_object_store(self) -> str:
        return self.object_store or f"dir:{(self.data_dir / 'objects').resolve()}"


def served_public_url(settings: Settings, host: str, port: int) -> str | None:
    """The public URL for a server on host:port when none was configured (None: one was).

    A wildcard address names no host an agent could use: it becomes loopback, and `serve` says so.
    """
    if "public_url" in settings.model_fields_set:
        return None
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (compared, not bound)
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
