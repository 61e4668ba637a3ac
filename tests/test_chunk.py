"""Structure-aware chunking."""

from __future__ import annotations

from zhiku.chunk import chunk_blocks
from zhiku.models import Block


def test_offsets_point_into_full_text_and_labels_start_chunks() -> None:
    blocks = [
        Block("出貨異常處理", kind="heading", heading_path=("出貨異常處理",)),
        Block("4.2 司機應請收貨人當場點收。", heading_path=("4 作業程序",)),
        Block("4.3 出貨異常需在 24 小時內通報物流部門。", heading_path=("4 作業程序",)),
        Block("通報後由物流部門判定責任。", heading_path=("4 作業程序",)),
    ]
    chunks, full = chunk_blocks(blocks)
    assert [c.label for c in chunks] == ["4.2", "4.3"]
    assert chunks[1].section == "4 作業程序 > 4.3"
    assert "通報後" in chunks[1].text  # the continuation stays with its clause
    for c in chunks:
        assert full[c.char_start : c.char_end] == c.text


def test_sub_items_stay_with_their_article() -> None:
    blocks = [
        Block("第五條 每年應依下列規定給予特別休假：", heading_path=("第二章",)),
        Block("一、六個月以上一年未滿者，三日。", heading_path=("第二章",)),
        Block("二、一年以上二年未滿者，七日。", heading_path=("第二章",)),
        Block("第六條 特別休假期日由員工排定。", heading_path=("第二章",)),
    ]
    chunks, _ = chunk_blocks(blocks)
    assert [c.label for c in chunks] == ["第五條", "第六條"]
    assert "七日" in chunks[0].text


def test_long_clause_is_split_but_every_piece_keeps_its_label() -> None:
    body = "第十條 " + "".join(f"第{i}項規定內容說明文字。" for i in range(120))
    chunks, _ = chunk_blocks(
        [Block(body, heading_path=("第三章",), page_start=2, page_end=3)], max_chars=300
    )
    assert len(chunks) > 3
    assert all(c.label == "第十條" and c.section == "第三章 > 第十條" for c in chunks)
    assert all(len(c.text) <= 300 for c in chunks)
    assert all((c.page_start, c.page_end) == (2, 3) for c in chunks)


def test_qa_and_table_rows_are_chunks_of_their_own() -> None:
    blocks = [
        Block("問：運費？\n答：130 元。", kind="qa", label="運費？"),
        Block("問：退貨？\n答：7 日內。", kind="qa", label="退貨？"),
    ]
    chunks, _ = chunk_blocks(blocks)
    assert [c.section for c in chunks] == ["運費？", "退貨？"]


def test_small_paragraphs_merge_up_to_target() -> None:
    blocks = [Block(f"第{i}段短文。", heading_path=("說明",)) for i in range(5)]
    chunks, _ = chunk_blocks(blocks, target=30)
    assert 1 < len(chunks) < 5
    assert "".join(c.text for c in chunks).count("段短文") == 5
