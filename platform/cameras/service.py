"""Registry operations on camera records; the API and the bulk importer both go through here."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tianwang.auth.secrets_box import SecretBox
from tianwang.cameras.schemas import CameraOut, CameraPatch, CameraSpec, OnvifOut
from tianwang.errors import Conflict, NotFound, ValidationFailed
from tianwang.pagination import Page, paginate
from tianwang.storage.models import Camera, Checkpoint

# columns that map one-to-one from the spec to the row
_PLAIN = (
    "name", "kind", "lon", "lat", "heading_deg", "hfov_deg", "range_m", "point_class", "area_code",
    "address", "rtsp_url", "snapshot_url", "health_interval_s", "snapshot_interval_s", "ptz_type",
    "position_type", "room_type", "supply_light_type", "direction_type", "resolution",
    "record_retention_days", "install_time", "management_unit", "police_station", "maintenance_unit",
    "construction_batch", "lifecycle", "agent_id", "checkpoint_id",
)  # fmt: skip


def _enum_value(v: Any) -> Any:
    return getattr(v, "value", v)


URL_FIELDS = ("rtsp_url", "snapshot_url")


def split_userinfo(url: str | None) -> tuple[str | None, str | None]:
    """(the URL without `user:password@`, that userinfo or None). The userinfo is a credential: it
    is kept apart, encrypted, and never stored, returned or exported inside the URL."""
    if not url:
        return url, None
    u = urllib.parse.urlsplit(url)
    if "@" not in u.netloc:
        return url, None
    userinfo, _, hostport = u.netloc.rpartition("@")
    return urllib.parse.urlunsplit((u.scheme, hostport, u.path, u.query, u.fragment)), userinfo or None


def join_userinfo(url: str | None, userinfo: str | None) -> str | None:
    """The URL as a device needs it: with its credentials put back (for the agent, never a user)."""
    if not url or not userinfo:
        return url
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, f"{userinfo}@{u.netloc}", u.path, u.query, u.fragment))


def url_credentials(row: Any, box: SecretBox) -> dict[str, str]:
    """The stored userinfo of the row's URLs, by field (empty when none, or when the key cannot read it)."""
    enc = getattr(row, "url_credentials_enc", None)
    if enc is None:
        return {}
    try:
        return dict(json.loads(box.decrypt(enc)))
    except (ValueError, TypeError):
        return {}


def _apply_url_credentials(row: Any, spec: CameraSpec, box: SecretBox) -> None:
    """Store the spec's URLs without userinfo and their credentials encrypted: a URL given with
    `user:password@` replaces its credentials; one given without keeps them while its host and port
    stay (like the ONVIF password), and drops them when it points elsewhere or is removed."""
    before = url_credentials(row, box)
    after: dict[str, str] = {}
    for name in URL_FIELDS:
        old_url = getattr(row, name, None)
        clean, userinfo = split_userinfo(getattr(spec, name))
        if userinfo is not None:
            after[name] = userinfo
        elif clean and name in before and _url_host(clean) == _url_host(old_url):
            after[name] = before[name]
        setattr(row, name, clean)
    if after == before and getattr(row, "url_credentials_enc", None) is not None:
        return  # Fernet is randomised: unchanged credentials keep their bytes
    row.url_credentials_enc = box.encrypt(json.dumps(after, sort_keys=True)) if after else None


def seal_url_credentials(session: Session, box: SecretBox) -> int:
    """Move credentials found inside stored URLs (rows written before they were kept apart) into
    their encrypted column; run at the API's start. Idempotent; returns the rows changed."""
    like = or_(Camera.rtsp_url.like("%@%"), Camera.snapshot_url.like("%@%"))
    n = 0
    for row in session.scalars(select(Camera).where(like)):
        creds = url_credentials(row, box)
        for name in URL_FIELDS:
            clean, userinfo = split_userinfo(getattr(row, name))
            if userinfo is not None:
                creds[name] = userinfo
                setattr(row, name, clean)
        row.url_credentials_enc = box.encrypt(json.dumps(creds, sort_keys=True)) if creds else None
        n += 1
    session.flush()
    return n


def apply_spec(row: Camera, spec: CameraSpec, box: SecretBox, *, keep_password: bool = True) -> Camera:
    _apply_url_credentials(row, spec, box)
    for name in _PLAIN:
        if name in URL_FIELDS:
            continue
        value = getattr(spec, name)
        if name == "lifecycle" and value is None:
            value = "in_use"
        setattr(row, name, _enum_value(value))
    row.photos = list(spec.photos or [])
    if spec.onvif is None:
        row.onvif_host = row.onvif_port = row.onvif_username = None
        row.onvif_password_enc = None
        row.onvif_trust_device_addresses = False
    else:
        row.onvif_host, row.onvif_port = spec.onvif.host, spec.onvif.port
        row.onvif_username = spec.onvif.username
        row.onvif_trust_device_addresses = spec.onvif.trust_device_addresses
        if spec.onvif.password is not None:
            row.onvif_password_enc = box.encrypt(spec.onvif.password.get_secret_value())
        elif not keep_password:
            row.onvif_password_enc = None
    return row


def to_out(row: Camera) -> CameraOut:
    onvif = None
    if row.onvif_host:
        onvif = OnvifOut(
            host=row.onvif_host,
            port=row.onvif_port or 80,
            username=row.onvif_username or "",
            has_password=row.onvif_password_enc is not None,
            trust_device_addresses=bool(row.onvif_trust_device_addresses),
        )
    data = {c: getattr(row, c) for c in CameraOut.model_fields if hasattr(row, c) and c != "onvif"}
    return CameraOut(**data, onvif=onvif, division=row.device_id[:6])


def spec_of(row: Camera) -> dict[str, Any]:
    """The user-settable fields of a stored row, as a CameraSpec-shaped dict (password excluded)."""
    d: dict[str, Any] = {name: getattr(row, name) for name in _PLAIN}
    d["device_id"] = row.device_id
    d["photos"] = list(row.photos or [])
    if row.onvif_host:
        d["onvif"] = {
            "host": row.onvif_host,
            "port": row.onvif_port or 80,
            "username": row.onvif_username or "",
            "trust_device_addresses": bool(row.onvif_trust_device_addresses),
        }
    return {k: v for k, v in d.items() if v is not None}


def _url_host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        u = urllib.parse.urlsplit(url)
        return f"{(u.hostname or '').lower()}:{u.port or ''}"
    except ValueError:
        return url


def password_must_be_repeated(old: Any, spec: CameraSpec) -> bool:
    """True when a stored password would follow the camera to a new address.

    The agent sends a device's password to its ONVIF address and to the registry's snapshot and
    RTSP URLs. Moving any of them while keeping the stored password would let a registry editor
    (installer, staff) collect it at a host of their choosing, so the password must be given again.
    """
    if getattr(old, "onvif_password_enc", None) is None:
        return False
    if spec.onvif is not None and spec.onvif.password is not None:
        return False
    before = (
        old.onvif_host,
        old.onvif_port,
        _url_host(old.snapshot_url),
        _url_host(old.rtsp_url),
    )
    after = (
        spec.onvif.host if spec.onvif else None,
        spec.onvif.port if spec.onvif else None,
        _url_host(spec.snapshot_url),
        _url_host(spec.rtsp_url),
    )
    return before != after


ADDRESS_MOVED = (
    "the device's address changed: give its password again (a stored password never follows a camera)"
)


def get_row(session: Session, device_id: str) -> Camera:
    row = session.scalar(select(Camera).where(Camera.device_id == device_id))
    if row is None:
        raise NotFound(f"camera {device_id} is not registered")
    return row


def _check_checkpoint(session: Session, checkpoint_id: str | None) -> None:
    if (
        checkpoint_id
        and session.scalar(select(Checkpoint.id).where(Checkpoint.checkpoint_id == checkpoint_id)) is None
    ):
        raise Conflict(
            f"checkpoint {checkpoint_id} is not registered",
            errors=[{"field": "checkpoint_id", "message": "not registered"}],
        )


def create(session: Session, spec: CameraSpec, box: SecretBox) -> Camera:
    if session.scalar(select(Camera.id).where(Camera.device_id == spec.device_id)) is not None:
        raise Conflict(f"camera {spec.device_id} is already registered")
    _check_checkpoint(session, spec.checkpoint_id)
    row = apply_spec(Camera(device_id=spec.device_id, status="registered"), spec, box)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as e:  # a concurrent registration of the same code, or a bad checkpoint
        session.rollback()
        raise Conflict(f"camera {spec.device_id} conflicts with the registry: {e.orig}") from None
    return row


def update(session: Session, device_id: str, patch: CameraPatch, box: SecretBox) -> Camera:
    row = get_row(session, device_id)
    merged = spec_of(row)
    changes = patch.model_dump(exclude_unset=True)
    if "onvif" in changes and changes["onvif"] is not None:
        # keep the stored password unless a new one is given
        changes["onvif"] = patch.onvif
        if patch.onvif is not None and "trust_device_addresses" not in patch.onvif.model_fields_set:
            # and the stored address setting: a form that does not show it must not reset it
            changes["onvif"] = patch.onvif.model_copy(
                update={"trust_device_addresses": bool(row.onvif_trust_device_addresses)}
            )
    merged.update({k: v for k, v in changes.items() if k != "onvif"})
    if "onvif" in changes:
        merged["onvif"] = changes["onvif"]
    try:
        spec = CameraSpec.model_validate(merged)
    except ValueError as e:
        raise ValidationFailed(str(e)) from None
    if password_must_be_repeated(row, spec):
        raise ValidationFailed(ADDRESS_MOVED, errors=[{"field": "onvif.password", "message": ADDRESS_MOVED}])
    if spec.checkpoint_id != row.checkpoint_id:
        _check_checkpoint(session, spec.checkpoint_id)
    apply_spec(row, spec, box, keep_password=True)
    try:
        session.flush()
    except StaleDataError:  # a DELETE committed between our read and this write
        raise NotFound(f"camera {device_id} was deleted meanwhile") from None
    return row


def delete(session: Session, device_id: str) -> None:
    session.delete(get_row(session, device_id))
    session.flush()


def list_cameras(
    session: Session,
    *,
    area_code: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    lifecycle: str | None = None,
    q: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[Camera]:
    stmt = select(Camera)
    if area_code:
        stmt = stmt.where(or_(Camera.area_code.startswith(area_code), Camera.device_id.startswith(area_code)))
    if status:
        stmt = stmt.where(Camera.status == status)
    if kind:
        stmt = stmt.where(Camera.kind == kind)
    if lifecycle:
        stmt = stmt.where(Camera.lifecycle == lifecycle)
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Camera.name.like(like), Camera.device_id.like(like), Camera.address.like(like)))
    return paginate(session, stmt, Camera.id, limit, cursor)
