"""Knowledge bases: list (yours), create and delete (admin), PII policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from zhiku.pii import PiiError
from zhiku.server import uploads
from zhiku.server.deps import Admin, Caller, State, readable_kb
from zhiku.server.errors import ApiError
from zhiku.server.schemas import ERRORS, KbCreate, KbInfo, KbList, PolicyUpdate
from zhiku.store import KnowledgeBase, Store

router = APIRouter(prefix="/api/v1", tags=["knowledge bases"], responses=ERRORS)


def kb_info(store: Store, kb: KnowledgeBase) -> dict[str, Any]:
    docs, chunks, _ = store.kb_counts(kb.id)
    return {"name": kb.name, "created_at": kb.created_at, "documents": docs, "chunks": chunks}


@router.get("/kbs", response_model=KbList, summary="List the knowledge bases you may read")
def list_kbs(p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    return {"kbs": [kb_info(store, kb) for kb in store.list_kbs() if kb.name in p.kbs]}


@router.post("/kbs", response_model=KbInfo, status_code=201, summary="Create a knowledge base")
def create_kb(body: KbCreate, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    name = body.name.strip()
    if store.find_kb(name) is not None:
        raise ApiError(409, "kb_exists", kb=name)
    with state.pool.engine() as zk:
        kb = zk.kb(name, create=True)
        zk.index(kb)  # create the index now, before other processes race to
    state.record(p.actor, "kb_create", kb=kb.name)
    return kb_info(store, kb)


@router.get("/kbs/{kb}", response_model=KbInfo, summary="One knowledge base")
def get_kb(kb: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    return kb_info(store, readable_kb(store, p, kb))


@router.delete("/kbs/{kb}", summary="Delete a knowledge base and all its documents")
def delete_kb(kb: str, p: Admin, state: State) -> JSONResponse:
    store = state.store
    kbo = readable_kb(store, p, kb)
    with state.pool.engine() as zk:
        zk.delete_kb(kbo.name)
    uploads.remove_kb_uploads(state.settings.home, kbo.id)
    state.record(p.actor, "kb_delete", kb=kbo.name)
    return JSONResponse({"deleted": kbo.name})


@router.get("/kbs/{kb}/policy", summary="The knowledge base's PII policy")
def get_policy(kb: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = readable_kb(store, p, kb)
    with state.pool.engine() as zk:
        return zk.pii_policy(kbo).to_dict()


@router.put("/kbs/{kb}/policy", summary="Change the PII policy (admin)")
def put_policy(kb: str, body: PolicyUpdate, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    kbo = readable_kb(store, p, kb)
    changes = body.model_dump(exclude_none=True)
    with state.pool.engine() as zk:
        try:
            policy = zk.pii_policy(kbo).updated(**changes)
        except PiiError as exc:
            raise ApiError(422, "invalid_policy", detail=str(exc)) from exc
        zk.set_pii_policy(kbo.name, policy)
    state.record(p.actor, "policy_update", kb=kbo.name, detail=policy.to_dict())
    return policy.to_dict()
