"""Fusion (三轨联控): the plates, persons and phones that move with a subject, audited with its case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tianwang.analyses import fusion
from tianwang.api.audit import Audited, audited
from tianwang.api.defs.common import unvalidated
from tianwang.api.defs.trajectories import Fusion
from tianwang.api.deps import DB
from tianwang.errors import ValidationFailed
from tianwang.protocol.fields import Instant
from tianwang.records import query

router = APIRouter(prefix="/api/v1", tags=["trajectories"])


@router.get("/trajectories/fusion", response_model=Fusion)
def fuse(
    db: DB,
    a: Annotated[Audited, Depends(audited("trajectories.fusion"))],
    plate_no: str | None = None,
    person_id: str | None = None,
    imsi: str | None = None,
    frm: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
    top: Annotated[int, Query(ge=1, le=100, description="associations kept per kind")] = fusion.Params.top,
) -> Response:
    """Given exactly one of a plate, a person or a phone, the entities of the other two kinds ranked
    by spatio-temporal co-occurrence with it, each with its evidence, and the merged case timeline."""
    given = {
        k: v
        for k, v in (("vehicle", plate_no), ("person", person_id), ("phone", imsi))
        if v is not None and v != ""
    }
    if len(given) != 1:
        names = ", ".join(fusion.SUBJECT_PARAM.values())
        raise ValidationFailed(
            f"give exactly one subject: {names}",
            errors=[
                {"field": fusion.SUBJECT_PARAM[k], "message": "exactly one subject parameter"}
                for k in (given or fusion.SUBJECT_PARAM)
            ],
        )
    ((kind, raw),) = given.items()
    subject = query.subject_of(kind, raw)
    f, t = query.window(frm, to)
    res = fusion.fuse(db, kind, subject, frm=f, to=t, params=fusion.Params(top=top))
    a.record(
        db,
        {"kind": kind, "subject": subject, "from": res["from"], "to": res["to"], "top": top},
        len(res["associations"]),
    )
    return unvalidated(res)
