"""Registry operations on checkpoints; a checkpoint's cameras are camera records pointing at it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tianwang.auth.secrets_box import SecretBox
from tianwang.cameras.schemas import OnvifOut
from tianwang.checkpoints.schemas import CheckpointOut, CheckpointPatch, CheckpointSpec, LaneOut, LaneSpec
from tianwang.errors import Conflict, NotFound, ValidationFailed
from tianwang.pagination import Page, paginate
from tianwang.storage.models import Camera, Checkpoint, CheckpointLane

_PLAIN = (
    "name",
    "lon",
    "lat",
    "direction_deg",
    "lanes",
    "road",
    "area_code",
    "tollgate_type",
    "tollgate_use",
)
_LANE = ("lane_no", "direction", "city_pass", "speed_limit_kmh")


def get_row(session: Session, checkpoint_id: str) -> Checkpoint:
    row = session.scalar(select(Checkpoint).where(Checkpoint.checkpoint_id == checkpoint_id))
    if row is None:
        raise NotFound(f"checkpoint {checkpoint_id} is not registered")
    return row


def camera_ids(session: Session, checkpoint_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Camera.device_id).where(Camera.checkpoint_id == checkpoint_id).order_by(Camera.id)
        )
    )


def lanes(session: Session, checkpoint_id: str) -> list[CheckpointLane]:
    return list(
        session.scalars(
            select(CheckpointLane)
            .where(CheckpointLane.checkpoint_id == checkpoint_id)
            .order_by(CheckpointLane.lane_no)
        )
    )


def _set_lanes(session: Session, checkpoint_id: str, specs: list[LaneSpec]) -> None:
    session.execute(sql_delete(CheckpointLane).where(CheckpointLane.checkpoint_id == checkpoint_id))
    session.add_all(
        CheckpointLane(checkpoint_id=checkpoint_id, **{f: getattr(spec, f) for f in _LANE}) for spec in specs
    )


def _link_cameras(session: Session, checkpoint_id: str, ids: list[str]) -> None:
    found = set(session.scalars(select(Camera.device_id).where(Camera.device_id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(
            "camera_ids names cameras that are not registered",
            errors=[{"field": "camera_ids", "message": f"not registered: {', '.join(missing)}"}],
        )
    session.execute(update(Camera).where(Camera.checkpoint_id == checkpoint_id).values(checkpoint_id=None))
    if ids:
        session.execute(update(Camera).where(Camera.device_id.in_(ids)).values(checkpoint_id=checkpoint_id))


def _apply(row: Checkpoint, spec: CheckpointSpec, box: SecretBox) -> None:
    for name in _PLAIN:
        setattr(row, name, getattr(spec, name))
    if spec.onvif is None:
        row.onvif_host = row.onvif_port = row.onvif_username = None
        row.onvif_password_enc = None
        row.onvif_trust_device_addresses = False
    else:
        row.onvif_host, row.onvif_port, row.onvif_username = (
            spec.onvif.host,
            spec.onvif.port,
            spec.onvif.username,
        )
        row.onvif_trust_device_addresses = spec.onvif.trust_device_addresses
        if spec.onvif.password is not None:
            row.onvif_password_enc = box.encrypt(spec.onvif.password.get_secret_value())


def to_out(session: Session, row: Checkpoint) -> CheckpointOut:
    onvif = None
    if row.onvif_host:
        onvif = OnvifOut(
            host=row.onvif_host,
            port=row.onvif_port or 80,
            username=row.onvif_username or "",
            has_password=row.onvif_password_enc is not None,
            trust_device_addresses=bool(row.onvif_trust_device_addresses),
        )
    data = {
        c: getattr(row, c)
        for c in CheckpointOut.model_fields
        if c not in ("onvif", "camera_ids", "lane_list")
    }
    lane_list = [
        LaneOut(**{f: getattr(lane, f) for f in _LANE}) for lane in lanes(session, row.checkpoint_id)
    ]
    return CheckpointOut(
        **data, onvif=onvif, camera_ids=camera_ids(session, row.checkpoint_id), lane_list=lane_list
    )


def create(session: Session, spec: CheckpointSpec, box: SecretBox) -> Checkpoint:
    if (
        session.scalar(select(Checkpoint.id).where(Checkpoint.checkpoint_id == spec.checkpoint_id))
        is not None
    ):
        raise Conflict(f"checkpoint {spec.checkpoint_id} is already registered")
    row = Checkpoint(checkpoint_id=spec.checkpoint_id)
    _apply(row, spec, box)
    session.add(row)
    session.flush()
    if spec.camera_ids:
        _link_cameras(session, spec.checkpoint_id, spec.camera_ids)
    if spec.lane_list:
        _set_lanes(session, spec.checkpoint_id, spec.lane_list)
        session.flush()
    return row


def update_checkpoint(
    session: Session, checkpoint_id: str, patch: CheckpointPatch, box: SecretBox
) -> Checkpoint:
    row = get_row(session, checkpoint_id)
    merged: dict[str, Any] = {n: getattr(row, n) for n in _PLAIN if getattr(row, n) is not None}
    merged["checkpoint_id"] = checkpoint_id
    # the lanes stay as they are unless given, but must still fit a changed lane count
    merged["lane_list"] = [{f: getattr(lane, f) for f in _LANE} for lane in lanes(session, checkpoint_id)]
    if row.onvif_host:
        merged["onvif"] = {
            "host": row.onvif_host,
            "port": row.onvif_port or 80,
            "username": row.onvif_username or "",
            "trust_device_addresses": bool(row.onvif_trust_device_addresses),
        }
    changes = patch.model_dump(exclude_unset=True)
    for k, v in changes.items():
        if k == "onvif":
            merged["onvif"] = patch.onvif
            if patch.onvif is not None and "trust_device_addresses" not in patch.onvif.model_fields_set:
                # a form that does not show the address setting must not reset it
                merged["onvif"] = patch.onvif.model_copy(
                    update={"trust_device_addresses": bool(row.onvif_trust_device_addresses)}
                )
        elif k != "camera_ids":
            merged[k] = v
    try:
        spec = CheckpointSpec.model_validate(merged)
    except ValueError as e:
        raise ValidationFailed(str(e)) from None
    _apply(row, spec, box)
    try:
        if "camera_ids" in changes:
            _link_cameras(session, checkpoint_id, patch.camera_ids or [])
        if "lane_list" in changes:
            _set_lanes(session, checkpoint_id, spec.lane_list or [])
        session.flush()
    except StaleDataError:  # a DELETE committed between our read and this write
        raise NotFound(f"checkpoint {checkpoint_id} was deleted meanwhile") from None
    return row


def delete(session: Session, checkpoint_id: str) -> None:
    row = get_row(session, checkpoint_id)
    session.execute(update(Camera).where(Camera.checkpoint_id == checkpoint_id).values(checkpoint_id=None))
    session.execute(sql_delete(CheckpointLane).where(CheckpointLane.checkpoint_id == checkpoint_id))
    session.delete(row)
    session.flush()


def list_checkpoints(
    session: Session, *, area_code: str | None, limit: int, cursor: str | None
) -> Page[Checkpoint]:
    stmt = select(Checkpoint)
    if area_code:
        stmt = stmt.where(Checkpoint.area_code.startswith(area_code))
    return paginate(session, stmt, Checkpoint.id, limit, cursor)
