"""Admin: snapshots of the live index (admin key), taken while searches and writes go on."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from heed.snapshots import SnapshotInfo, create_snapshot, list_snapshots
from service.auth import require_admin
from service.deps import EngineDep
from service.schemas import SnapshotList, SnapshotResponse, error_responses

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
ERRORS = error_responses(401, 403, 503)


def snapshot_response(info: SnapshotInfo) -> SnapshotResponse:
    return SnapshotResponse.model_validate(info, from_attributes=True)


@router.post("/snapshots", status_code=201, response_model=SnapshotResponse, responses=ERRORS)
def create(engine: EngineDep) -> SnapshotResponse:
    """Archive the live generation with a sha256 per file; restore it with `heed snapshot
    restore NAME`."""
    return snapshot_response(create_snapshot(engine.settings))


@router.get("/snapshots", response_model=SnapshotList, responses=ERRORS)
def list_(engine: EngineDep) -> SnapshotList:
    """The archives in the snapshot folder, newest first."""
    return SnapshotList(snapshots=[snapshot_response(s) for s in list_snapshots(engine.settings)])
