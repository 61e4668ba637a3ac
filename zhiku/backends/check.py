"""``zhiku models check``: call each configured backend once and say what works."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from zhiku.backends import BackendConfig, ModelError, build
from zhiku.backends.base import ChatModel, Embedder, Reranker

PROBE_QUESTION = "請只回答「好」。"
PROBE_QUERY = "請假要提前幾天申請？"
PROBE_PASSAGES = ("員工請假應於三日前提出申請。", "出貨異常時應通知物流窗口。")


@dataclass(slots=True)
class CheckResult:
    role: str
    name: str
    target: str
    ok: bool
    detail: str
    ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "target": self.target,
            "ok": self.ok,
            "detail": self.detail,
            "ms": round(self.ms, 1),
        }


def _probe(obj: Any, role: str) -> str:
    if role == "chat":
        assert isinstance(obj, ChatModel)
        reply = obj.complete(
            [{"role": "user", "content": PROBE_QUESTION}], max_tokens=32, temperature=0.0
        ).strip()
        return f"回覆：「{reply[:40]}」" if reply else "可連線，但回覆為空"
    if role == "embed":
        assert isinstance(obj, Embedder)
        vec = obj.embed_documents([PROBE_QUERY])
        return f"向量維度 {vec.shape[1]}（模型 id：{obj.model_id}）"
    assert isinstance(obj, Reranker)
    scores = obj.score(PROBE_QUERY, list(PROBE_PASSAGES))
    if len(scores) != 2 or not all(math.isfinite(s) for s in scores):
        raise ModelError(f"分數不完整：{scores}")
    order = "正確" if scores[0] > scores[1] else "相反（模型可能不適合中文）"
    return f"分數 {scores[0]:.3f} / {scores[1]:.3f}，排序{order}"


def check_backend(cfg: BackendConfig) -> CheckResult:
    """Call one backend once; a model failure is reported, never raised."""
    t0 = time.perf_counter()
    model: Any = None
    try:
        model = build(cfg)
        detail, ok = _probe(model, cfg.role), True
    except ModelError as exc:
        detail, ok = str(exc), False
    finally:
        if model is not None:
            model.close()
    return CheckResult(
        cfg.role, cfg.name, cfg.describe(), ok, detail, (time.perf_counter() - t0) * 1000
    )
