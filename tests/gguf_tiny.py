"""Writes a tiny, real GGUF chat model (llama architecture) that answers deterministically.

The model is a bigram machine built by hand: token embeddings are one-hot, attention and
feed-forward outputs are zero (so the residual stream is the current token's
embedding), and the output matrix maps each token of a chain to the next one. Greedy
decoding after the chat template's final newline therefore always produces ``reply``
and then end-of-sequence. The tokenizer is byte-level BPE (GPT-2 style) with the 256
byte tokens, so any prompt tokenises. The file is a few MB and loads with
llama-cpp-python in milliseconds: a real load, template, tokenise, decode and stream.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_symbols() -> list[str]:
    """GPT-2's byte → printable-character table, in byte order."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs, strict=True))
    return [chr(table[b]) for b in range(256)]


def write_tiny_gguf(path: Path, reply: list[str]) -> Path:
    """A GGUF model whose greedy answer to any chat is ``"".join(reply)``.

    ``reply`` items are the generated tokens, each a distinct string (a CJK character
    or an ASCII character); ASCII ones reuse the byte tokens.
    """
    import gguf

    sym = _byte_symbols()
    tokens = list(sym)  # ids 0..255: bytes
    types = [gguf.TokenType.NORMAL] * 256

    def encode(s: str) -> str:
        return "".join(sym[b] for b in s.encode("utf-8"))

    ids: list[int] = []
    for piece in reply:
        enc = encode(piece)
        if enc in tokens:
            ids.append(tokens.index(enc))
        else:
            tokens.append(enc)
            types.append(gguf.TokenType.NORMAL)
            ids.append(len(tokens) - 1)
    if len(set(ids)) != len(ids):
        raise ValueError("reply tokens must be distinct")
    space = sym[ord(" ")]
    tokens.append(space * 2)  # one merge: llama.cpp requires a non-empty merge list
    types.append(gguf.TokenType.NORMAL)
    eos = len(tokens)
    tokens.append("<|endoftext|>")
    types.append(gguf.TokenType.CONTROL)
    vocab = len(tokens)
    n_embd = ((vocab + 31) // 32) * 32
    n_ff, n_head = 64, 4

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("zhiku-tiny-test")
    w.add_context_length(8192)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{space} {space}"])
    w.add_bos_token_id(eos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    f32 = np.float32
    emb = np.zeros((vocab, n_embd), f32)
    emb[np.arange(vocab), np.arange(vocab)] = 1.0
    out = np.zeros((vocab, n_embd), f32)
    chain = [ord("\n"), *ids, eos]  # after the template's final newline
    for a, b in zip(chain, chain[1:], strict=False):
        out[b, a] = 1.0
    w.add_tensor("token_embd.weight", emb)
    w.add_tensor("output_norm.weight", np.ones(n_embd, f32))
    w.add_tensor("output.weight", out)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, f32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{name}.weight", np.zeros((n_embd, n_embd), f32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, f32))
    w.add_tensor("blk.0.ffn_gate.weight", np.zeros((n_ff, n_embd), f32))
    w.add_tensor("blk.0.ffn_up.weight", np.zeros((n_ff, n_embd), f32))
    w.add_tensor("blk.0.ffn_down.weight", np.zeros((n_embd, n_ff), f32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
