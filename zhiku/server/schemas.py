"""Request and response bodies of the API (what the OpenAPI schema documents)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "editor", "reader"]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable error code, e.g. `kb_not_found`, `rate_limited`")
    message: str
    type: str
    status: int
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 409, 413, 415, 422, 429)
}

# --- knowledge bases ---------------------------------------------------------------------


class KbCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["hr"])


class KbInfo(BaseModel):
    name: str
    created_at: str
    documents: int
    chunks: int


class KbList(BaseModel):
    kbs: list[KbInfo]


class PolicyUpdate(BaseModel):
    """PII policy changes (see `zhiku kb set`); omitted fields keep their value."""

    mode: Literal["ingest", "output", "off"] | None = None
    types: str | list[str] | None = Field(
        None, description='List of types, or edits such as "+landline,-name"'
    )
    strategy: Literal["mask", "tag", "pseudonym"] | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    keep_business: bool | None = None


# --- documents and jobs ------------------------------------------------------------------


class DocumentInfo(BaseModel):
    id: str
    title: str
    path: str
    kind: str
    chunks: int
    size: int
    updated_at: str
    uploaded: bool
    meta: dict[str, Any] = Field(
        default_factory=dict, description="Filterable metadata (dept, tags, dates, status)"
    )


class DocumentMetaUpdate(BaseModel):
    meta: dict[str, str | list[str] | None] = Field(
        examples=[{"dept": "hr", "tags": ["規章"], "effective": "2024-01-01"}]
    )


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


class JobFile(BaseModel):
    name: str
    path: str | None
    size: int
    status: str = Field(description="pending, added, updated, unchanged, skipped or failed")
    reason: str | None = Field(
        None,
        description="Error code of a failed file: too_large, type_mismatch, unsupported, "
        "empty, bomb, too_complex, corrupt, encrypted…",
    )
    message: str | None
    chunks: int


class Job(BaseModel):
    id: str
    kb: str
    kind: str
    status: str = Field(description="queued, running or done")
    created_at: str
    started_at: str | None
    finished_at: str | None
    total: int
    done: int
    failed: int
    files: list[JobFile]


class JobList(BaseModel):
    jobs: list[Job]


# --- search and ask ------------------------------------------------------------------------


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, examples=["請假規定"])
    k: int = Field(5, ge=1, le=200)
    where: list[str] | dict[str, str | list[str]] | None = Field(
        None,
        description="Metadata filter applied inside the index query: expressions "
        '(`["dept=hr", "amended>=2020-01-01"]`) or `{"dept": "hr", "tag": ["a"]}`; repealed '
        "law is excluded unless `status` is named (docs/admins/sources.md)",
    )


class MultiSearchRequest(SearchRequest):
    kbs: list[str] | None = Field(None, description="KBs to search; default: all yours")


class SearchHit(BaseModel):
    doc: str
    path: str
    section: str | None
    page: int | None
    text: str
    score: float
    kb: str
    passage_id: str


class SearchResponse(BaseModel):
    hits: list[SearchHit]


class AskRequest(BaseModel):
    question: str = Field(min_length=1, examples=["特休假有幾天？"])
    k: int = Field(5, ge=1, le=50, description="Passages to consider")
    conversation_id: str | None = Field(None, description="Continue this conversation")
    stream: bool = Field(False, description="Answer as Server-Sent Events")
    where: list[str] | dict[str, str | list[str]] | None = Field(
        None,
        description="Metadata filter applied inside the index query: expressions "
        '(`["dept=hr", "amended>=2020-01-01"]`) or `{"dept": "hr", "tag": ["a"]}`; repealed '
        "law is excluded unless `status` is named (docs/admins/sources.md)",
    )


class Citation(BaseModel):
    doc: str
    path: str
    section: str | None
    page: int | None
    text: str
    score: float


class AskResponse(BaseModel):
    """The same object as `zhiku ask --json`. The answer and conversation ids come in the
    `X-Answer-Id` and `X-Conversation-Id` headers."""

    answer: str
    refused: bool
    citations: list[Citation]


class Passage(BaseModel):
    passage_id: str
    kb: str
    document_id: str
    doc: str
    path: str
    section: str | None
    label: str | None
    page_start: int | None
    page_end: int | None
    text: str
    before: str | None
    after: str | None


class FeedbackRequest(BaseModel):
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=4000)


class FeedbackResponse(BaseModel):
    answer_id: str
    rating: Literal["up", "down"]
    comment: str


class ConversationInfo(BaseModel):
    id: str
    kb: str
    title: str
    created_at: str
    updated_at: str
    channel: str = Field("api", description="Where it started: web, api, openai, line or widget")


class ConversationList(BaseModel):
    conversations: list[ConversationInfo]


class Turn(BaseModel):
    answer_id: str
    question: str
    answer: AskResponse
    sources: list[dict[str, Any]]
    feedback: FeedbackResponse | None
    created_at: str


class ConversationDetail(ConversationInfo):
    turns: list[Turn]


class ConversationCreate(BaseModel):
    kb: str


# --- accounts ------------------------------------------------------------------------------


class UserInfo(BaseModel):
    id: int
    name: str
    role: Role
    created_at: str
    disabled: bool
    kbs: list[str]


class UserList(BaseModel):
    users: list[UserInfo]


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    kbs: list[str] = Field(default_factory=list)


class UserUpdate(BaseModel):
    role: Role | None = None
    disabled: bool | None = None


class GrantsUpdate(BaseModel):
    kbs: list[str]


class KeyInfo(BaseModel):
    id: int
    prefix: str
    user_id: int
    user: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    active: bool


class KeyList(BaseModel):
    keys: list[KeyInfo]


class KeyCreate(BaseModel):
    user: str | int = Field(description="User name or id")
    name: str = Field("", max_length=100, description="A label, e.g. `erp` or `n8n`")


class KeyCreated(KeyInfo):
    key: str = Field(description="The key itself. It is shown once and never stored.")


class Me(BaseModel):
    user: str
    role: Role
    key_prefix: str
    kbs: list[str]
    limits: dict[str, float] = Field(description="max_upload_mb, max_files, max_question_chars")


# --- OpenAI-compatible ---------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat request; fields zhiku does not use (temperature…) are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="A knowledge base name (see GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None


# --- sources (zhiku.sources.registry) ------------------------------------------------------


class SourceCreate(BaseModel):
    """A folder (absolute path on the server) or a web site, synced on a schedule."""

    name: str = Field(min_length=1, max_length=64, examples=["hr-share"])
    target: str = Field(min_length=1, examples=["/mnt/nas/hr", "https://intranet.example/"])
    every: str | None = Field("1d", description="`30m`, `6h`, `1d`…, or `manual`", examples=["6h"])
    meta: dict[str, Any] = Field(
        default_factory=dict, description="Metadata of every document (dept, tags…)"
    )
    crawl: dict[str, Any] = Field(
        default_factory=dict,
        description="Web sources: max_pages, max_depth, "
        "max_page_bytes, delay_s, allow_hosts, allow_ips, use_sitemap, ca_file",
    )


class SourceInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    kb: str
    name: str
    kind: Literal["folder", "web"]
    target: str
    every: str | None
    next_run_at: str | None
    last_status: str | None
    last_started_at: str | None
    last_finished_at: str | None
    last_counts: dict[str, int]
    last_errors: list[dict[str, Any]]


class SourceList(BaseModel):
    sources: list[SourceInfo]


class SourceRun(BaseModel):
    job: str
    created: bool = Field(description="False when a run was already queued or running")
