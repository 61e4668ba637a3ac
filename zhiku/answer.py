"""Answers without a model: choose the span of the top passages that answers, cite it.

**Choosing the span.** Every sentence of the top passages is a candidate. It scores by
the idf-weighted query tokens it contains (a passage further down the ranking counts
less), and then:

- a sentence that ends in 「：」/「:」 carries what follows it — the list items, lines or
  table rows it introduces, up to :data:`MAX_SPAN_CHARS` — since that is the answer;
- headings, table-of-contents lines, a FAQ's question line and sentences that merely
  restate the question (a question themselves, or bringing almost nothing the question
  does not already say) are never the answer;
- the *answer type* the question asks for steers the choice: 多少/幾 wants a quantity,
  誰 a person, 哪裡 a place, 何時/哪一年 a date or time, 為什麼 a reason, 什麼是 a
  definition (:func:`answer_type`). A candidate of the right type gets a bonus; when
  none of the top passages has one, the answer's confidence is lowered, which counts
  toward refusing.

**Confidence and refusal.** The confidence of an answer combines, for the top passage,
its *query coverage* — the idf-weighted share of the question's tokens found in its text,
title or heading path — its BM25 score relative to the question's total idf, and its
margin over the fifth passage, plus how many of the top five passages come from its
document (:meth:`ExtractiveAnswerer.relevance`, :func:`agreement`), times the
answer-type factor. Below the knowledge base's threshold the question is refused
(「知識庫中找不到相關資料。」). The threshold is calibrated on each knowledge base itself
(:mod:`zhiku.calibration`); :data:`DEFAULT_REFUSE_BELOW` is the fallback.

Over labelled clauses (the articles of a law) every clause among the top five that
supports the answer is cited, in retrieval order (:meth:`ExtractiveAnswerer._supporting_clauses`).
Quotes are always the original text of the stored chunk, never the folded form.
Citations of the same place (document, section and page) are merged into one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zhiku import text as ztext
from zhiku.calibration import adjusted
from zhiku.config import lang
from zhiku.models import Answer, Citation, Hit

# Fallback when a KB has not been calibrated (fitted on DRCD with 20 % of the articles held
# out; bench/answers.py refusal): the calibration of the KB itself replaces it.
DEFAULT_REFUSE_BELOW = 0.49
# A sentence ending in a colon carries at most this much of what follows it.
MAX_SPAN_CHARS = 400
MAX_SPAN_LINES = 12

# A sentence with fewer new characters or words than this (or this share) only restates
# the question: never the answer.
MIN_NEW_UNITS = 2
MIN_FRESH = 0.1

# When no candidate has what the question asks for, the confidence is scaled: strongly
# where the evidence is reliable (digits, dates), mildly where it is a guess (a person).
UNTYPED_FACTOR = {"quantity": 0.5, "date": 0.5, "year": 0.5, "named": 1.0}

REFUSAL = {"zh-TW": "知識庫中找不到相關資料。", "en": "No relevant information was found."}


def refusal_text() -> str:
    return REFUSAL[lang()]


TermStats = Mapping[str, tuple[int, float]]


# --- answer types -------------------------------------------------------------------------

# Question patterns (on the original, unfolded question; Traditional and Simplified).
_TYPE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("reason", re.compile(r"為什麼|为什么|為何|为何|何故|原因|理由|怎麼會|怎么会|\bwhy\b", re.I)),
    (
        "definition",
        re.compile(
            r"什麼是|什么是|何謂|何谓|是什麼意思|是什么意思|定義|定义"
            r"|指的是什麼|指的是什么|\bwhat is\b|\bwhat are\b",
            re.I,
        ),
    ),
    (
        "year",
        re.compile(
            r"哪一年|哪年|何年|哪個年代|哪个年代|哪一個年代|哪一个年代|什麼年代"
            r"|什么年代|哪個世紀|哪个世纪|哪一世紀|哪一世纪|\bwhat year\b"
            r"|\bin which year\b",
            re.I,
        ),
    ),
    (
        "date",
        re.compile(
            r"哪一年|哪年|何年|哪一天|哪天|何時|何时|什麼時候|什么时候|幾年|几年"
            r"|幾月|几月|幾號|几号|哪個年代|哪个年代|多久|\bwhen\b|what year",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(r"是誰|是谁|誰|谁|哪位|何人|哪一位|哪(?:一)?(?:個|个)?人|哪些人|\bwho\b", re.I),
    ),
    (
        "place",
        re.compile(
            r"哪裡|哪里|哪裏|何處|何处|哪個國家|哪个国家|哪個城市|哪个城市"
            r"|位於|位于|在哪|哪(?:一)?(?:個|个)?(?:地方|地區|地区|區域|区域)|\bwhere\b",
            re.I,
        ),
    ),
    (
        "quantity",
        re.compile(
            r"多少|幾|几|多大|多高|多長|多长|多遠|多远|多重|多久|多少錢|多快|多深|多寬|多宽"
            r"|\bhow (?:many|much|long|far|old|big|high)\b",
            re.I,
        ),
    ),
]

_NUM = r"[0-9０-９零〇一二三四五六七八九十百千萬万億亿兩两半]"
_TYPE_EVIDENCE: dict[str, re.Pattern[str]] = {
    "quantity": re.compile(rf"{_NUM}|[%％]|數十|数十|若干|多數|多数"),
    "date": re.compile(
        rf"{_NUM}+\s*(?:年|月|日|號|号|世紀|世纪|年代|時|时|點|点|天|週|周"
        r"|小時|小时|個月|个月|日內|日内|朝)|[0-9]{4}|(?:今|明|昨|前|後|后)天"
        r"|(?:春|夏|秋|冬)(?:天|季)|[初中末]期|年間|年间|時期|时期|期間|期间"
    ),
    # A year, a decade or a century (「九三砲戰於何年爆發」 is not answered by 「9月3日」).
    "year": re.compile(
        rf"[0-9０-９]{{2,4}}\s*(?:年|年代|世紀|世纪)|[0-9]{{4}}"
        rf"|{_NUM}{{2,4}}\s*(?:年|世紀|世纪)|{_NUM}+\s*(?:年代|世紀|世纪)"
        r"|(?:同|該|该|次|翌|隔|前|去|當|当)年"
    ),
    "person": re.compile(
        r"[先生女士教授博士總統总统主席國王国王皇帝部長部长董事長董事长"
        r"經理经理主任老師老师作家導演导演演員演员者人氏家帝王公侯]"
    ),
    "place": re.compile(
        r"[市縣县區区省州國国島岛山河江湖海洋路街鎮镇鄉乡村洲島港灣湾城島]"
        r"|中心|大樓|大楼|地區|地区|境內|境内|位於|位于|於|于|在"
    ),
    "reason": re.compile(
        r"因為|因为|由於|由于|所以|因此|原因|為了|为了|導致|导致|使得|以致"
        r"|是因|緣故|缘故|故|造成|源於|源于"
    ),
    "definition": re.compile(
        r"是指|係指|系指|指的是|稱為|称为|稱之|称之|意指|即|定義|定义"
        r"|是一種|是一种|是一個|是一个|為一|为一|謂|谓|所稱|所称|者"
    ),
}


def answer_type(question: str) -> str | None:
    """What the question asks for: quantity, person, place, date, reason, definition."""
    for name, pat in _TYPE_PATTERNS:
        if pat.search(question):
            return name
    return None


# 「什麼主義」「哪一條河」「哪一家企業」: the noun after the interrogative names the kind of
# thing the answer is; the answer usually ends in it (現實主義, 賈木納河) or in its last
# character (宗教 → 新教).
_WH_NOUN = re.compile(
    r"(?:什麼|什么|哪一|哪|何)[個个種种類类家條条位座所項项支部本間间場场"
    r"款隻只名首張张艘架輛辆屆届]?(?P<head>[\u3400-\u9fff]{1,2})"
)
_HEAD_STOP = set("的是在呢了被會会可要與与和及或嗎吗為为有")
_GENERIC_HEADS = {
    "東西",
    "东西",
    "事",
    "事情",
    "樣",
    "样",
    "麼",
    "么",
    "些",
    "人",
    "內容",
    "内容",
    "方式",
    "方法",
    "地方",
    "情況",
    "情况",
    "意思",
    "作用",
    "影響",
    "影响",
    "特點",
    "特点",
    "原因",
    "問題",
    "问题",
}


def named_head(question: str) -> str | None:
    """The noun a 「什麼 X / 哪一 X」 question asks for (``主義`` in 「什麼主義的內容」), or
    None (no such interrogative, or a noun that says nothing: 東西, 方式…)."""
    for m in _WH_NOUN.finditer(question):
        head = m.group("head")
        for i, ch in enumerate(head):
            if ch in _HEAD_STOP:
                head = head[:i]
                break
        if head and head not in _GENERIC_HEADS and head[:1] not in _GENERIC_HEADS:
            return head
    return None


def has_named(sentence: str, head: str, asked: set[str]) -> bool:
    """Whether the sentence names a new thing of kind ``head``: the head (or its last or
    first character: without word boundaries 「哪一條河相匯」 gives 河相) right after a
    character the question does not have (「現實主義」 for 「什麼主義」, 「新教」 for
    「什麼宗教」)."""
    for target in dict.fromkeys((head, head[-1], head[0])):
        i = sentence.find(target)
        while i >= 0:
            before = sentence[i - 1] if i > 0 else ""
            if before and before not in asked and (before.isalnum()):
                return True
            i = sentence.find(target, i + 1)
    return False


def has_type(sentence: str, kind: str | None) -> bool:
    """Whether a sentence contains something of the answer type (cheap surface evidence)."""
    if kind is None:
        return True
    pat = _TYPE_EVIDENCE.get(kind)
    return pat is None or pat.search(sentence) is not None


# 「幾歲」「幾點」「多少錢」「多少人」: the unit after the interrogative says what the quantity
# counts, and the answer states a number with that unit next to it (「3 萬名好友」 does not
# answer 「今年幾歲」). Only these units: a generic classifier (個, 種, 次…) or a noun
# (「多少顯卡記憶體」) says nothing about how the number is written.
_UNIT_AFTER = re.compile(r"(?:幾|几|多少)\s*(?P<unit>[\u3400-\u9fff])")
_UNIT_SAME: dict[str, str] = {
    "錢": "元|塊|块|圓|圆|美元|美金|日圓|日圆|台幣|台币|臺幣|新臺幣|新台币|[$＄]",
    "塊": "元|塊|块|圓|圆",
    "块": "元|塊|块|圓|圆",
    "元": "元|塊|块|圓|圆",
    "歲": "歲|岁",
    "岁": "歲|岁",
    "點": "點|点|時|时",
    "点": "點|点|時|时",
    "人": "人|名|位",
    "名": "人|名|位",
    "位": "人|名|位",
    "天": "天|日",
    "日": "天|日",
    "週": "週|周|星期|禮拜|礼拜",
    "周": "週|周|星期|禮拜|礼拜",
    "分": "分",
    "秒": "秒",
    "公": "公",
    "坪": "坪",
    "度": "度",
}


def quantity_unit(question: str) -> re.Pattern[str] | None:
    """For a 「幾 X / 多少 X」 question whose X is a unit (歲, 點, 錢, 人…), the evidence an
    answer must show: a number with that unit within a few characters (either side:
    「12 萬人」「人口約 260 萬」), on the folded text; None for any other X."""
    m = _UNIT_AFTER.search(question)
    if m is None:
        return None
    unit = m.group("unit")
    same = _UNIT_SAME.get(unit) or next(
        (v for k, v in _UNIT_SAME.items() if ztext.fold(k) == ztext.fold(unit)), None
    )
    if same is None:
        return None
    alt = ztext.fold(same)  # matched on the folded sentence (a Simplified question)
    return re.compile(rf"{_NUM}[^。！？；\n]{{0,3}}?(?:{alt})|(?:{alt})[^。！？；\n]{{0,4}}?{_NUM}")


# --- coverage -----------------------------------------------------------------------------


def coverage(
    q_tokens: Sequence[str], stats: TermStats, hit: Hit, present: set[str] | None = None
) -> float:
    """Idf-weighted share of query tokens present in the hit's text, title or section.

    A CJK bigram the knowledge base has never seen is left out: in a natural question
    such bigrams mostly straddle two words (「要多」「久內」) and say nothing about the
    passage. An unseen *character* or Latin word still counts, at the highest idf: it
    is strong evidence that the knowledge base does not cover the question.
    """
    if present is None:
        present = set(ztext.tokenize(f"{hit.doc_title}\n{hit.section or ''}\n{hit.text}"))
    total = got = 0.0
    for t in q_tokens:
        df, idf = stats.get(t, (0, 0.0))
        if df == 0 and len(t) == 2 and not t.isascii():
            continue
        total += idf
        if t in present:
            got += idf
    return got / total if total > 0 else 0.0


# --- where a quote comes from ---------------------------------------------------------------


def source_phrase(hit: Hit) -> str:
    """「《出貨異常處理SOP》4.3」 — title, then the clause label or section, then page."""
    where = f"《{hit.doc_title}》"
    tail = hit.label or (hit.section.split(" > ")[-1] if hit.section else "")
    if tail and tail not in hit.doc_title and len(tail) <= 40:
        where += tail
    if hit.page_start:
        pages = str(hit.page_start)
        if hit.page_end and hit.page_end != hit.page_start:
            pages += f"–{hit.page_end}"
        where += f"（第 {pages} 頁）" if lang() == "zh-TW" else f" (p. {pages})"
    return where


def _without_label(quote: str, label: str | None) -> str:
    """「4.3 出貨異常…」 → 「出貨異常…」 when the lead-in already names the clause."""
    if label and quote.startswith(label):
        rest = quote[len(label) :].lstrip(" 　、.．:：")
        return rest or quote
    return quote


_ANSWER_PREFIX = re.compile(r"^(?:答|A|Ａ|回答|解答)\s*[：:]\s*")


def _said(quote: str, hit: Hit) -> str:
    return _ANSWER_PREFIX.sub("", _without_label(quote, hit.label)) or quote


# --- what is never an answer ----------------------------------------------------------------

_QUESTION_END = re.compile(r"[？?]\s*[」』）)\"'”’]*\s*$")
_QUESTION_LINE = re.compile(r"^\s*(?:問|Q|Ｑ|問題)\s*[：:]")
# 「第一章 總則 ........ 3」, 「2. 產品經理 ……… 12」, a line of dotted leaders.
_TOC_LINE = re.compile(
    r"(?:\.{4,}|…{2,}|·{4,}|-{4,}|_{4,})\s*\d*\s*$|^\s*(?:目錄|目次|contents)\s*$", re.I
)
_MD_HEADING = re.compile(r"^\s*#{1,6}\s")
_SENT_FINAL = '。！？；!?;」』）)"”'
_LIST_ITEM = re.compile(
    rf"^\s*(?:[-*•‧・●○■□◆◇▪►➤✓✔]|\d{{1,3}}[.)、．]|[（(][{ztext._CN_NUM}\d]{{1,3}}[）)]"
    rf"|[{ztext._CN_NUM}]{{1,3}}、|[a-zA-Z][.)]\s|第\s*[{ztext._CN_NUM}\d]+\s*[條步項點])"
)


def _is_heading_like(sentence: str, hit: Hit) -> bool:
    """A heading, a TOC line, the passage's own section or label line, or a markdown title."""
    s = sentence.strip()
    if _MD_HEADING.match(s) or _TOC_LINE.search(s):
        return True
    if hit.section:
        for part in hit.section.split(" > "):
            if s == part.strip():
                return True
    return bool(hit.label and s == hit.label.strip())


def _extend_colon(text: str, end: int) -> int:
    """After a sentence ending in a colon, the end of what it introduces: the following
    lines up to a blank line (or, once list items started, the first non-item line),
    bounded by :data:`MAX_SPAN_CHARS` and :data:`MAX_SPAN_LINES`."""
    pos = end
    lines = 0
    in_list = False
    last = ""  # the block's last line
    limit = min(len(text), end + MAX_SPAN_CHARS)
    while pos < limit and lines < MAX_SPAN_LINES:
        nl = text.find("\n", pos)
        line_end = len(text) if nl < 0 else nl
        line = text[pos:line_end]
        if not line.strip():
            if lines:  # a blank line closes the block (a list may be spaced out, though)
                nxt = text[line_end + 1 : line_end + 200].lstrip("\n").split("\n", 1)[0]
                if not (in_list and _LIST_ITEM.match(nxt)) and not _parallel(last, nxt):
                    break
            pos = line_end + 1
            continue
        last = line
        item = _LIST_ITEM.match(line) is not None
        if lines and in_list and not item:
            break
        in_list = in_list or item
        if line_end > limit:  # cut at a sentence end inside the bound, else at the bound
            cut = max((text.rfind(c, pos, limit) for c in "。；;！!？?"), default=-1)
            pos = cut + 1 if cut > pos else limit
            lines += 1
            break
        pos = line_end
        lines += 1
        if nl < 0:
            break
        pos += 1
    while pos > end and text[pos - 1].isspace():
        pos -= 1
    return max(pos, end)


_FIELD = re.compile(r"^[^：:。！？；]{1,30}[：:]\S")


def _parallel(line: str, nxt: str) -> bool:
    """Whether ``nxt`` continues a list of unmarked items that ``line`` belongs to, one
    item a paragraph (「工作滿 1 年以上…：7 日。」 after 「工作滿 6 個月以上…：3 日。」): both
    short, and starting with the same two characters or both 「label：value」."""
    a, b = line.strip(), nxt.strip()
    if not a or not b or len(a) > 80 or len(b) > 80:
        return False
    if a[:2] == b[:2] and all(c.isalnum() for c in a[:2]):
        return True
    return _FIELD.match(a) is not None and _FIELD.match(b) is not None


# 「作者：張育誠　2024 年 11 月」「撰寫：資訊安全部　公開日期：…」: a short label, a colon and
# a value with no sentence in it — a byline or a field, never the answer.
_META_LINE = re.compile(r"^[^\s：:。！？；，,]{1,8}[：:][^。！？；!?;，,]*$")


def answer_spans(hit: Hit) -> list[tuple[int, int]]:
    """The spans of a passage that may be quoted as an answer: its sentences less
    headings, table-of-contents lines, questions, bylines and fragments; a sentence
    ending in a colon carries what it introduces (as the lexical choice does), and the
    items it introduces stay candidates on their own (one item may be the answer). Used
    where the sentence is chosen by meaning, not by shared words (the dense-match
    answer for a question in another language)."""
    out: list[tuple[int, int]] = []
    for s, e in ztext.sentence_spans(hit.text):
        sent = hit.text[s:e].strip()
        if len(sent) < 8 or _is_heading_like(sent, hit):
            continue
        if _QUESTION_END.search(sent) or _QUESTION_LINE.match(sent) or _META_LINE.match(sent):
            continue
        if sent[-1:] in "：:":
            e = _extend_colon(hit.text, e)
        out.append((s, e))
    return out


_EN_STOP = frozenset(
    (
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "many",
        "much",
        "does",
        "did",
        "do",
        "can",
        "could",
        "should",
        "would",
        "will",
        "with",
        "from",
        "that",
        "this",
        "these",
        "those",
        "have",
        "has",
        "had",
        "into",
        "onto",
        "about",
        "after",
        "before",
        "than",
        "then",
        "there",
        "their",
        "they",
        "them",
        "you",
        "your",
        "our",
        "any",
        "all",
        "one",
        "get",
        "got",
        "its",
        "is",
    )
)


def other_language(question: str, hit: Hit) -> bool:
    """Whether the question is mostly in another script than the passage: most of its
    letters Latin over a mostly-CJK passage (English over Chinese, even with Chinese
    names in it)."""

    def cjk_share(t: str) -> float:
        letters = [c for c in t if c.isalpha()]
        return sum(1 for c in letters if ztext.has_cjk(c)) / len(letters) if letters else 0.0

    return cjk_share(question) < 0.5 and cjk_share(f"{hit.doc_title}\n{hit.text}") > 0.5


def _anchor_tokens(question: str) -> set[str]:
    out: set[str] = set()
    for t in ztext.query_tokens(question):
        if t.isascii():
            if (len(t) >= 3 and t.isalpha() and t not in _EN_STOP) or (len(t) >= 2 and t.isdigit()):
                out.add(t)
        elif len(t) >= 2:
            out.add(t)
    return out


def shared_anchors(question: str, text: str) -> int:
    """How many of the question's names, terms and numbers (Chinese words of two or more
    characters, Latin words of three letters or more that are not English function
    words, numbers of two digits or more) the text contains."""
    return len(_anchor_tokens(question) & ztext.token_set(text))


def anchored(question: str, hit: Hit) -> bool:
    """Whether the passage (with its title and section) shares a name, term or number
    with the question (:func:`shared_anchors`)."""
    return shared_anchors(question, f"{hit.doc_title}\n{hit.section or ''}\n{hit.text}") > 0


# --- the answerer ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    score: float
    hit_rank: int
    hit: Hit
    start: int
    end: int
    typed: bool
    index: int = 0  # position among the passage's sentences
    fresh: float = 1.0  # share of the sentence's weight the question does not have
    toks: frozenset[str] = frozenset()  # the span's tokens (tokenised once per answer)


# A sentence opening like this leans on the one before it (「此舉導致…」「他准許…」).
_ANAPHOR = re.compile(
    r"^[「『（(]?(?:此|該|这|這|其|他|她|它|牠|彼|同年|同月|同日|次年|翌年|隔年"
    r"|當時|当时|之後|之后|後來|后来|但|卻|却|而|並|并|因此|於是|于是|然而|另外|此外)"
)


# A reference back to something named before (「這支龍舟隊」「該公司」「他們」) inside the
# sentence's first clause: what it refers to, often what the question asks, is in the
# sentence before.
_BACK_REFERENCE = re.compile(
    r"(?:這|这|該|该|此|上述)(?:一)?[支個个種种位座本項项些類类家所間间部批條条名首張张隻只場场屆届"
    r"次件套份樣样座股群期段]|(?:他|她|它|牠)們|(?:他|她|它|牠)们|^[「『（(]?(?:他|她|它|其)"
)
_REFERENCE_CLAUSES = 2
_CLAUSE_END = re.compile(r"[，,：:；;。]")


def _refers_back(sentence: str) -> bool:
    """Whether the sentence's first clauses (two, an opening 「自…以來，」 being one)
    refer back to something named before."""
    ends = [m.start() for m in _CLAUSE_END.finditer(sentence)]
    head = sentence[: ends[_REFERENCE_CLAUSES - 1]] if len(ends) >= _REFERENCE_CLAUSES else sentence
    return _BACK_REFERENCE.search(head) is not None


def is_clause_list(hits: Sequence[Hit]) -> bool:
    """Whether these passages are labelled clauses (「第 7 條」「4.3」): the top one and
    most of the others open with a clause label, as the articles of laws and the
    clauses of regulations and SOPs do."""
    if not hits or not hits[0].label:
        return False
    return 2 * sum(1 for h in hits if h.label) > len(hits)


AGREEMENT_PASSAGES = 5


def agreement(hits: Sequence[Hit]) -> float:
    """Share of the top :data:`AGREEMENT_PASSAGES` passages from the top one's document
    (0 with a single passage: nothing agrees or disagrees)."""
    top = hits[:AGREEMENT_PASSAGES]
    if len(top) < 2:
        return 0.0
    return sum(1 for h in top[1:] if h.doc_id == top[0].doc_id) / (len(top) - 1)


class ExtractiveAnswerer:
    """Chooses up to ``max_sentences`` spans from the top ``passages`` hits."""

    def __init__(
        self,
        refuse_below: float = DEFAULT_REFUSE_BELOW,
        passages: int = 3,
        max_sentences: int = 2,
        rank_decay: float = 0.8,
        type_bonus: float = 0.35,
        untyped_factor: float = 0.85,
        local_idf: float = 0.3,
        second_same: float = 0.5,
        second_other: float = 0.6,
        complement: float = 0.1,
        clause_passages: int = 5,
        clause_share: float = 0.5,
        agreement: float = 0.2,
    ) -> None:
        self.refuse_below = refuse_below
        self.passages = passages
        self.max_sentences = max_sentences
        self.rank_decay = rank_decay
        self.type_bonus = type_bonus
        self.untyped_factor = untyped_factor
        self.local_idf = local_idf
        self.second_same = second_same
        self.second_other = second_other
        self.complement = complement
        self.clause_passages = clause_passages
        self.clause_share = clause_share
        self.agreement = agreement

    def relevance(
        self,
        question: str,
        hits: Sequence[Hit],
        stats: TermStats,
        tokens: Sequence[str] | None = None,
        present: set[str] | None = None,
        agreement_weight: float | None = None,
    ) -> float:
        """How well the top passage answers the question, in [0, 1], before the
        answer-type factor: a quarter its query coverage, half its BM25 score relative to
        the query's total idf (capped at 1), a quarter how far it stands above the fifth
        passage (an answer stands out, a chance match does not). Coverage alone when the
        passage has no BM25 score (found by vectors only).

        The weights were 0.4 / 0.4 / 0.2; on DRCD with a fifth of the articles held out
        (two different fifths) these refuse 0.9–1.4 points more unanswerable questions at
        5 % answerable refused (bench/RESULTS.md): BM25's term-frequency saturation and
        length normalisation say more than a set overlap does about whether the passage
        is *about* the question.

        Plus :attr:`agreement` × the share of the top five passages that come from the
        top passage's document (:func:`agreement`): a question the KB answers keeps
        finding the one document that is about it, a question from elsewhere matches
        scattered documents on incidental words. On layperson legal questions over all
        laws this separates the two better than any other lexical measure tried (of the
        top five, counting the top one, 0.44 against 0.24 on average); on DRCD it is
        neutral (0.21 / 0.20), so DRCD's refusal curve keeps its figures
        (bench/RESULTS.md "answers-s5")."""
        if not hits:
            return 0.0
        q_tokens = ztext.query_tokens(question) if tokens is None else tokens
        cov = coverage(q_tokens, stats, hits[0], present)
        bm25 = hits[0].scores.get("bm25")
        if bm25 is None or bm25 <= 0:
            return cov
        total = sum(stats.get(t, (0, 0.0))[1] for t in q_tokens)
        strength = min(1.0, bm25 / total) if total > 0 else 0.0
        fifth = hits[4].scores.get("bm25", 0.0) if len(hits) > 4 else 0.0
        margin = max(0.0, (bm25 - fifth) / bm25)
        w = self.agreement if agreement_weight is None else agreement_weight
        return 0.25 * cov + 0.5 * strength + 0.25 * margin + w * agreement(hits)

    def _sentences(
        self,
        q_tokens: Sequence[str],
        hits: Sequence[Hit],
        stats: TermStats,
        kind: str | None,
        head: str | None = None,
        asked: set[str] | None = None,
        passages: int | None = None,
        unit: re.Pattern[str] | None = None,
    ) -> tuple[list[list[_Candidate | None]], set[str]]:
        """Per top passage, its sentences as candidates (None: never an answer); and the
        tokens of the top passage with its title and section (each passage is tokenised
        once per answer)."""
        q_set = set(q_tokens)
        out: list[list[_Candidate | None]] = []
        first: set[str] = set()
        for rank, hit in enumerate(hits[: passages or self.passages]):
            weight = self.rank_decay**rank
            row: list[_Candidate | None] = []
            covered_to = 0
            spans = ztext.sentence_spans(hit.text)
            toksets = [ztext.token_set(hit.text[s:e]) for s, e in spans]
            if rank == 0:
                first = set(ztext.tokenize(f"{hit.doc_title}\n{hit.section or ''}"))
                first.update(*toksets)
            # Within the passage, a query token found in most sentences (its topic's name)
            # tells the sentences apart less than one found in a single sentence.
            sf: dict[str, int] = {}
            for ts in toksets:
                for t in ts & q_set:
                    sf[t] = sf.get(t, 0) + 1
            n_s = max(len(spans), 1)
            for (s, e), toks in zip(spans, toksets, strict=True):
                sent = hit.text[s:e]
                if s < covered_to or _is_heading_like(sent, hit):
                    row.append(None)
                    continue
                if _QUESTION_END.search(sent) or _QUESTION_LINE.match(sent):
                    row.append(None)
                    continue
                if sent.rstrip()[-1:] in "：:":
                    e = _extend_colon(hit.text, e)
                    covered_to = e
                    sent = hit.text[s:e]
                    toks = ztext.token_set(sent)
                shared = toks & q_set
                # What the sentence says beyond the question, by characters and words (an
                # idf of the question's tokens is known, of the others not: scale-free).
                units = [t for t in toks if len(t) == 1 or t.isascii()]
                new = sum(1 for t in units if t not in q_set)
                fresh = new / len(units) if units and new >= MIN_NEW_UNITS else 0.0
                if head:
                    typed = has_named(sent, head, asked or set())
                elif unit is not None:
                    typed = unit.search(ztext.fold(sent)) is not None
                else:
                    typed = has_type(sent, kind)
                w_rank = sum(
                    stats[t][1] * (1 + self.local_idf * math.log((n_s + 1) / (sf.get(t, 0) + 0.5)))
                    for t in shared
                    if t in stats
                )
                score = w_rank * weight * (1 + self.type_bonus if kind and typed else 1.0)
                # Long spans (a whole list) should not win on length alone.
                score /= 1 + 0.15 * math.log1p(max(0, len(sent) - 120) / 120)
                row.append(
                    _Candidate(score, rank, hit, s, e, typed, len(row), fresh, frozenset(toks))
                )
            out.append(row)
        return out, first

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        stats: TermStats,
        refuse_below: float | None = None,
        tokens: Sequence[str] | None = None,
        length_slope: float = 0.0,
        length_ref: float = 0.0,
        agreement_weight: float | None = None,
    ) -> Answer:
        """The answer from ``hits``; ``tokens`` are the question's terms when the engine
        expanded them (abbreviations), else :func:`zhiku.text.query_tokens`.

        ``length_slope`` and ``length_ref`` come from the KB's calibration: a question
        with more terms than ``length_ref`` (background, small talk) covers less of any
        passage, so its confidence is raised by ``length_slope`` per unit of log length
        above it (a shorter one is lowered by a third of that): what the KB's own
        pseudo-questions showed (:func:`zhiku.calibration.adjusted`).

        ``agreement_weight`` overrides :attr:`agreement`: 0 where the threshold is not a
        calibration of the KB (:data:`DEFAULT_REFUSE_BELOW` was fitted without it, and in
        a one-document KB every passage agrees)."""
        threshold = self.refuse_below if refuse_below is None else refuse_below
        kind = answer_type(question)
        head = named_head(question) if kind is None else None
        asked = {*question, *ztext.fold(question)} if head else None
        if head:
            kind = "named"
        q_tokens = ztext.query_tokens(question) if tokens is None else list(tokens)
        unit = quantity_unit(question) if kind == "quantity" else None
        clauses = is_clause_list(hits[: self.clause_passages])
        n_pass = max(self.passages, self.clause_passages) if clauses else self.passages
        rows, present = (
            self._sentences(q_tokens, hits, stats, kind, head, asked, n_pass, unit)
            if hits
            else ([], set())
        )
        rel = self.relevance(
            question, hits, stats, q_tokens, present if hits else None, agreement_weight
        )
        # A sentence that only restates the question is context, never the answer.
        cands = [
            c for row in rows for c in row if c is not None and c.score > 0 and c.fresh >= MIN_FRESH
        ]
        cands.sort(key=lambda c: c.score, reverse=True)
        chosen = self._lead(cands[0], rows, kind, q_tokens, stats) if cands else []
        conf = rel
        # No candidate has what the question asks for; or, for a quantity asked with its
        # unit (「多少錢」「幾歲」: precise evidence), the quoted span has not, although a
        # sentence elsewhere has (a price in another document does not make a sentence
        # about 營收 an answer). For the cheaper evidence of other types (any number, any
        # place character) the second rule cost DRCD's refusal curve 1.6 points.
        typed = chosen if unit is not None else cands
        if kind is not None and not any(c.typed for c in typed):
            conf *= UNTYPED_FACTOR.get(kind, self.untyped_factor)
        conf = adjusted(conf, len(q_tokens), length_slope, length_ref)
        if not any(len(t) > 1 and stats.get(t, (0, 0.0))[0] > 0 for t in q_tokens):
            conf = 0.0  # no word of it is in the KB (「那有幾天？」): nothing to go on
        timings = {"relevance": rel, "confidence": conf, "terms": float(len(q_tokens))}
        if not chosen or conf < threshold:
            return Answer(text=refusal_text(), citations=[], refused=True, timings=timings)
        best = chosen[0]
        for c in cands[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if any(c.hit is o.hit and c.start < o.end and o.start < c.end for o in chosen):
                continue  # overlaps a chosen span (a colon span covers its items)
            # A second span only when it is nearly as good (a lower bar within the best
            # span's passage than from another passage).
            same = c.hit is best.hit
            if c.score >= self.second_other * best.score or (
                same and c.score >= self.second_same * best.score
            ):
                chosen.append(c)
        if clauses:
            chosen = self._supporting_clauses(chosen, rows, best)
        return self._compose(chosen, timings)

    def _lead(
        self,
        best: _Candidate,
        rows: list[list[_Candidate | None]],
        kind: str | None,
        q_tokens: Sequence[str],
        stats: TermStats,
    ) -> list[_Candidate]:
        """The best span with the neighbour that completes it, and the sentence that
        neighbour leans on in turn (a chain of references: 「它的訓練地點…」 ← 「這支龍舟隊…」 ←
        the team's name), once."""
        chosen = [best]
        row = rows[best.hit_rank]
        neighbour = self._neighbour(best, row, kind, q_tokens, stats)
        if neighbour is not None:
            chosen.append(neighbour)
            j = neighbour.index
            before = row[j - 1] if j == best.index - 1 and j > 0 else None
            if before is not None:
                said = neighbour.hit.text[neighbour.start : neighbour.end]
                if _ANAPHOR.match(said) or _refers_back(said):
                    chosen.append(before)
        return chosen

    def _supporting_clauses(
        self, chosen: list[_Candidate], rows: list[list[_Candidate | None]], best: _Candidate
    ) -> list[_Candidate]:
        """Over labelled clauses (articles of a law, clauses of an SOP), every clause
        among the top :attr:`clause_passages` whose best sentence matches the question at
        least :attr:`clause_share` as well as the best answer (before the discount for a
        lower rank) is cited too — a rule is usually stated
        by several articles together — and the citations follow the retrieval order
        (which weighs the document as a whole, not one sentence)."""
        cited = {id(c.hit) for c in chosen}
        out = list(chosen)
        for row in rows:
            pool = [c for c in row if c is not None and c.score > 0 and c.fresh >= MIN_FRESH]
            if not pool or id(pool[0].hit) in cited:
                continue
            top = max(pool, key=lambda c: c.score)
            # The sentence's own match, without the rank discount: the ranking has
            # already decided the order, here the question is whether it says the rule.
            own = top.score / self.rank_decay**top.hit_rank
            if own >= self.clause_share * best.score / self.rank_decay**best.hit_rank:
                out.append(top)
                cited.add(id(top.hit))
        out.sort(key=lambda c: (c.hit_rank, c.start))
        return out

    def _neighbour(
        self,
        best: _Candidate,
        row: list[_Candidate | None],
        kind: str | None,
        q_tokens: Sequence[str],
        stats: TermStats,
    ) -> _Candidate | None:
        """The sentence next to the best one that completes it, or None.

        - The one before, when the best leans on it (此舉…, 他…).
        - When the best lacks what the question asks for, restates much of the question
          or is very short: a neighbour that has the answer type.
        - Otherwise a neighbour that says the part of the question the best one does not:
          a question often joins two neighbouring sentences (「城牆非常堅固，但什麼的出現
          使得城牆不再萬能？」), and its answer is then in the other one — when the
          question's tokens found there and not in the best weigh at least
          :attr:`complement` of the question's idf.

        Of two eligible neighbours, the one with more of that complementary weight wins
        (then the higher score)."""
        i = best.index
        prev = row[i - 1] if i > 0 else None
        nxt = row[i + 1] if i + 1 < len(row) else None
        text = best.hit.text[best.start : best.end]
        if prev is not None and (_ANAPHOR.match(text) or _refers_back(text)):
            return prev
        q_set = {t for t in q_tokens if t in stats and stats[t][0] > 0}
        total = sum(stats[t][1] for t in q_set)

        def extra(n: _Candidate) -> float:
            got = sum(stats[t][1] for t in (n.toks - best.toks) & q_set)
            return got / total if total > 0 else 0.0

        near = [n for n in (prev, nxt) if n is not None and n.fresh >= MIN_FRESH]
        if not near:
            return None
        untyped = kind is not None and not best.typed
        wanting = untyped or best.fresh < 0.4 or len(text) < 20
        if wanting:
            typed = [n for n in near if kind is None or n.typed]
            if typed:
                return max(typed, key=lambda n: (extra(n), n.score))
        n = max(near, key=lambda n: (extra(n), n.score))
        return n if extra(n) >= self.complement else None

    @staticmethod
    def _compose(chosen: list[_Candidate], timings: dict[str, float]) -> Answer:
        # One citation per place: spans of one chunk, or of chunks that print the same
        # (same document, section and page), are merged.
        groups: dict[tuple[object, ...], list[_Candidate]] = {}
        for c in chosen:
            h = c.hit
            key = (h.kb, h.doc_id, h.section, h.label, h.page_start)
            groups.setdefault(key, []).append(c)
        citations: list[Citation] = []
        parts: list[str] = []
        for group in groups.values():
            group.sort(key=lambda c: (c.hit.ord, c.start))
            hit = group[0].hit
            spans: list[list[int]] = []  # [start, end] in the group's first chunk
            quotes: list[str] = []
            last_here = False  # whether the last quote is spans[-1]
            for c in group:
                q = c.hit.text[c.start : c.end]
                here = c.hit is hit
                if here and last_here and not hit.text[spans[-1][1] : c.start].strip():
                    # Adjacent spans quote the original between them too (line breaks).
                    spans[-1][1] = max(spans[-1][1], c.end)
                    quotes[-1] = hit.text[spans[-1][0] : spans[-1][1]]
                elif q not in quotes:
                    if here:
                        spans.append([c.start, c.end])
                    quotes.append(q)
                    last_here = here
            quote = (
                "".join(quotes) if len({c.hit.chunk_id for c in group}) == 1 else "\n".join(quotes)
            )
            citations.append(Citation(hit=hit, text=quote))
            said = _said(quote, hit)
            if lang() == "en":
                lead = "According to" if not parts else "Also, according to"
                parts.append(f"{lead} {source_phrase(hit)}: {said}")
            else:
                lead = "根據" if not parts else "另據"
                parts.append(f"{lead}{source_phrase(hit)}：{said}")
        return Answer(text="\n".join(parts), citations=citations, refused=False, timings=timings)
