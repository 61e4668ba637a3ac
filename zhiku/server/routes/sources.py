"""Sources (admin only): folders and web sites a KB syncs on a schedule, and their runs.

The job workers run the syncs (:mod:`zhiku.server.jobs`); these endpoints register,
list, trigger and remove sources. A source's last run — status, counts, the first
errors with the file or URL and the reason — is part of every answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from zhiku.server.deps import Admin, State
from zhiku.server.errors import ApiError
from zhiku.server.schemas import ERRORS, SourceCreate, SourceInfo, SourceList, SourceRun
from zhiku.sources import registry

router = APIRouter(prefix="/api/v1", tags=["sources"], responses=ERRORS)


def _get(state: Any, kb: str, name: str) -> dict[str, Any]:
    state.store.get_kb(kb)
    try:
        return registry.get_source(state.store, kb, name)
    except registry.SourceNotFound as exc:
        raise ApiError(404, "source_not_found", name=name) from exc


@router.get("/sources", response_model=SourceList, summary="All sources, with their last run")
def list_sources(p: Admin, state: State, kb: str | None = None) -> dict[str, Any]:
    return {"sources": registry.list_sources(state.store, kb)}


@router.post(
    "/kbs/{kb}/sources",
    response_model=SourceInfo,
    status_code=201,
    summary="Register (or update) a folder or web site as a source of a KB",
)
def create_source(kb: str, body: SourceCreate, p: Admin, state: State) -> dict[str, Any]:
    state.store.get_kb(kb)
    settings = {**body.crawl, "meta": body.meta}
    with state.pool.engine() as zk:
        src = registry.add_source(
            zk, kb, body.name, body.target, every=body.every, settings=settings
        )
    state.record(
        p.actor,
        "source_add",
        kb=kb,
        target=body.name,
        detail={"kind": src["kind"], "target": src["target"], "every": src["every"]},
    )
    state.wake_worker()
    return src


@router.get("/kbs/{kb}/sources/{name}", response_model=SourceInfo, summary="One source")
def get_source(kb: str, name: str, p: Admin, state: State) -> dict[str, Any]:
    return _get(state, kb, name)


@router.post(
    "/kbs/{kb}/sources/{name}/run",
    response_model=SourceRun,
    status_code=202,
    summary="Sync a source now (queued for the job workers)",
)
def run_source(kb: str, name: str, p: Admin, state: State) -> dict[str, Any]:
    src = _get(state, kb, name)
    job, created = registry.queue_run(state.store, src["id"], p.user_id)
    state.record(p.actor, "source_run", kb=kb, target=name, detail={"job": job})
    state.wake_worker()
    return {"job": job, "created": created}


@router.delete("/kbs/{kb}/sources/{name}", summary="Remove a source (its documents stay)")
def delete_source(kb: str, name: str, p: Admin, state: State) -> dict[str, Any]:
    _get(state, kb, name)
    registry.delete_source(state.store, kb, name)
    state.record(p.actor, "source_delete", kb=kb, target=name)
    return {"deleted": name}
