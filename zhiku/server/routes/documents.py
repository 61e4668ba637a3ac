"""Documents: multipart upload (background ingestion jobs), list, delete, re-ingest."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from zhiku.engine import Zhiku
from zhiku.filters import FILTER_META, meta_key, parse_meta_args
from zhiku.ingest import VIRTUAL_PREFIXES
from zhiku.lexical import IndexBusy
from zhiku.server import jobs, uploads
from zhiku.server.deps import Caller, Principal, ServerState, State, editable_kb, readable_kb
from zhiku.server.deps import readable_kb_ids as _kb_ids
from zhiku.server.errors import ApiError
from zhiku.server.schemas import ERRORS, DocumentList, DocumentMetaUpdate, Job, JobList
from zhiku.storage.library import DocumentRef, SqlLibrary
from zhiku.store import KnowledgeBase, Store

log = logging.getLogger("zhiku.server.documents")
router = APIRouter(prefix="/api/v1", tags=["documents"], responses=ERRORS)

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


def _store_files(
    state: ServerState, kb: KnowledgeBase, files: list[UploadFile]
) -> list[dict[str, Any]]:
    """Validate and store each file (per-file errors, never an exception)."""
    s = state.settings
    tmp_dir = uploads.tmp_dir(s.home)
    out: list[dict[str, Any]] = []
    for up in files:
        # Masked before it becomes a file on disk, a document path or a log entry.
        name = Zhiku.ingest_name(kb, uploads.safe_name(up.filename))
        entry: dict[str, Any] = {
            "name": name,
            "path": uploads.doc_path(kb.name, name),
            "status": "pending",
            "size": 0,
        }
        try:
            tmp, digest, size = uploads.spool(up.file, tmp_dir, s.max_upload_bytes)
            entry["size"] = size
            try:
                uploads.check_type(tmp, name, s.max_unzipped_bytes)
            except uploads.Rejected:
                tmp.unlink(missing_ok=True)
                raise
            # On disk the name is only a label: masked in every mode that masks.
            disk_name = Zhiku.redact_path(kb, name)
            stored = uploads.place(s.home, kb.id, tmp, disk_name, digest, size)
            entry.update(stored=stored.stored, sha256=digest)
        except uploads.Rejected as r:
            entry.update(status="failed", reason=r.reason, message=r.message)
            state.metrics.inc("zhiku_upload_rejected_total", {"reason": r.reason})
        out.append(entry)
    return out


def _create_upload_job(
    state: ServerState, p: Principal, kb: KnowledgeBase, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    store = state.store
    job_id = jobs.create_job(store, kb, "upload", p.user_id, entries)
    state.record(
        p.actor,
        "upload",
        kb=kb.name,
        target=job_id,
        detail={
            "files": [
                {
                    "name": e["name"],
                    "size": e["size"],
                    "sha256": e.get("sha256"),
                    "status": e["status"],
                    **({"reason": e["reason"]} if e.get("reason") else {}),
                }
                for e in entries
            ]
        },
    )
    state.wake_worker()
    info = jobs.job_info(store, job_id, [kb.id])
    assert info is not None
    return info


@router.post(
    "/kbs/{kb}/documents",
    status_code=202,
    response_model=Job,
    openapi_extra=_UPLOAD_BODY,
    summary="Upload one or many files (multipart field `files`); ingestion runs in the "
    "background — follow the returned job",
)
async def upload(kb: str, request: Request, p: Caller, state: State) -> JSONResponse:
    kbo = await run_in_threadpool(lambda: editable_kb(state.store, p, kb))
    limit = state.settings.max_files
    try:
        form = await request.form(max_files=limit + 1, max_fields=limit + 20)
    except (MultiPartException, HTTPException) as exc:  # Starlette wraps the former
        detail = str(getattr(exc, "detail", None) or getattr(exc, "message", None) or exc)
        if "Too many files" in detail:
            raise ApiError(413, "too_many_files", limit=limit) from exc
        raise ApiError(400, "invalid_request", detail=detail) from exc
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise ApiError(422, "no_files")
        if len(files) > limit:
            raise ApiError(413, "too_many_files", limit=limit)
        meta = _upload_meta(form.getlist("meta"))
        entries = await run_in_threadpool(_store_files, state, kbo, files)
        for e in entries:
            e["meta"] = meta
        info = await run_in_threadpool(_create_upload_job, state, p, kbo, entries)
    finally:
        await form.close()
    return JSONResponse(info, status_code=202)


def _upload_meta(values: list[Any]) -> dict[str, Any]:
    """The optional multipart field(s) ``meta``: a JSON object (``{"dept": "hr", "tags":
    ["規章"]}``) or ``key=value`` lines; the metadata of every uploaded file."""
    items: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            continue
        text = v.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise ApiError(400, "invalid_request", detail="meta is not valid JSON") from exc
            if not isinstance(obj, dict):
                raise ApiError(400, "invalid_request", detail="meta must be an object")
            for key, val in obj.items():
                vals = val if isinstance(val, list) else [val]
                items.append(f"{key}={','.join(str(x) for x in vals)}")
        else:
            items.extend(line for line in text.splitlines() if line.strip())
    return parse_meta_args(items)


def _masked_title(title: str, kb: KnowledgeBase) -> str:
    return Zhiku.redact_output(kb, title)


@router.get("/kbs/{kb}/documents", response_model=DocumentList, summary="Documents of a KB")
def list_documents(kb: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = readable_kb(store, p, kb)
    docs = store.list_documents(kbo.name, p.where())
    return {
        "documents": [
            {
                "id": state.ids.encode("d", d.id),
                "title": _masked_title(d.title, kbo),
                "path": Zhiku.redact_path(kbo, d.path),
                "kind": d.kind,
                "chunks": d.chunks,
                "size": d.size,
                "updated_at": d.updated_at,
                "uploaded": d.path.startswith("upload://"),
                "meta": {k: d.meta[k] for k in FILTER_META if k in d.meta},
            }
            for d in docs
        ]
    }


@router.patch(
    "/kbs/{kb}/documents/{doc_id}",
    summary="Set a document's metadata for filters "
    "(dept, tags, effective, amended…; null removes a key)",
)
def update_document(
    kb: str, doc_id: str, body: DocumentMetaUpdate, p: Caller, state: State
) -> dict[str, Any]:
    store = state.store
    kbo = editable_kb(store, p, kb)
    row = _doc_row(state, store, kbo, doc_id, p)
    changes: dict[str, Any] = _upload_meta(
        [json.dumps({k: v for k, v in body.meta.items() if v is not None}, ensure_ascii=False)]
    )
    changes.update({meta_key(k): None for k, v in body.meta.items() if v is None})
    with state.pool.engine() as zk:
        zk.store.set_document_meta(kbo.name, row.path, changes)
        try:
            zk.index(kbo).sync()
        except IndexBusy:
            pass  # queued in index_log, applied by the process holding the writer
    state.record(p.actor, "document_meta", kb=kbo.name, target=row.path, detail=changes)
    doc = store.get_document(kbo.name, row.path)
    assert doc is not None
    return {"id": doc_id, "meta": {k: doc.meta[k] for k in FILTER_META if k in doc.meta}}


def _doc_row(
    state: ServerState, store: Store, kb: KnowledgeBase, doc_id: str, p: Principal
) -> DocumentRef:
    """The document ``doc_id`` of ``kb`` if ``p`` may see it (zhiku.access), else 404."""
    n = state.ids.decode("d", doc_id)
    row = None if n is None else SqlLibrary(store.database).document(n, kb.id, p.where())
    if row is None:
        raise ApiError(404, "document_not_found")
    return row


@router.delete("/kbs/{kb}/documents/{doc_id}", summary="Remove a document from the KB")
def delete_document(kb: str, doc_id: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = editable_kb(store, p, kb)
    row = _doc_row(state, store, kbo, doc_id, p)
    with state.pool.engine() as zk:
        zk.remove(kbo.name, row.path)
        # The lexical index only: never the vectors, whose sync waits for the ingest
        # worker's embedding (minutes). Deleted chunks are gone from the store, which every
        # hit is joined with, so neither index can return them meanwhile; the vectors drop
        # them at the next sync, and a search applies any lexical work still queued.
        try:
            zk.index(kbo).sync()
        except IndexBusy:
            pass  # another process holds the writer: queued in index_log, applied there
    library = SqlLibrary(store.database)
    up = library.upload(kbo.id, row.path)
    if up is not None:
        library.delete_upload(kbo.id, row.path)
        if not library.stored_in_use(up.stored):
            uploads.remove_stored(state.settings.home, up.stored)
    state.record(
        p.actor, "document_delete", kb=kbo.name, target=row.path, detail={"title": row.title}
    )
    return {"deleted": doc_id}


@router.post(
    "/kbs/{kb}/documents/{doc_id}/reingest",
    status_code=202,
    response_model=Job,
    summary="Ingest a document again from its stored file (after a policy change…)",
)
def reingest(kb: str, doc_id: str, p: Caller, state: State) -> JSONResponse:
    store = state.store
    kbo = editable_kb(store, p, kb)
    row = _doc_row(state, store, kbo, doc_id, p)
    up = SqlLibrary(store.database).upload(kbo.id, row.path)
    name = row.path.rsplit("/", 1)[-1]
    if up is not None and uploads.stored_path(state.settings.home, up.stored).is_file():
        entry = {
            "name": name,
            "path": row.path,
            "stored": up.stored,
            "sha256": up.sha256,
            "size": up.size,
            "status": "pending",
        }
    elif not row.path.startswith(VIRTUAL_PREFIXES) and Path(row.path).is_file():
        entry = {
            "name": name,
            "path": row.path,
            "stored": None,
            "size": Path(row.path).stat().st_size,
            "status": "pending",
        }
    else:
        raise ApiError(409, "not_reingestable")
    job_id = jobs.create_job(store, kbo, "reingest", p.user_id, [entry])
    state.record(p.actor, "reingest", kb=kbo.name, target=row.path, detail={"job": job_id})
    state.wake_worker()
    return JSONResponse(jobs.job_info(store, job_id, [kbo.id]), status_code=202)


@router.get("/kbs/{kb}/jobs", response_model=JobList, summary="Recent ingestion jobs of a KB")
def list_jobs(kb: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = readable_kb(store, p, kb)
    return {"jobs": jobs.list_jobs(store, kbo)}


@router.get("/jobs/{job_id}", response_model=Job, summary="Progress of an ingestion job")
def get_job(job_id: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    info = jobs.job_info(store, job_id, _kb_ids(store, p))
    if info is None:
        raise ApiError(404, "job_not_found")
    return info
