"""English help texts of the CLI, keyed by their zh-TW originals (see :mod:`zhiku.cli_help`)."""

# ruff: noqa: E501  (a table of sentences, one per line)

from __future__ import annotations

EN: dict[str, str] = {
    "知庫 zhiku：地端、繁體中文優先的知識庫問答。":
        "zhiku: on-premise, Traditional-Chinese-first knowledge-base Q&A.",
    "顯示版本": "Show the version.",
    "資料目錄，適用於之後的指令（同 ZHIKU_HOME；指令自己的 --home 優先）":
        "Data directory for the command that follows (as ZHIKU_HOME; a command's own --home wins).",
    "匯入文件（PDF、Office、ODF、掃描影像、郵件、ZIP 等）；未變更的檔案會略過。":
        "Ingest documents (PDF, Office, ODF, scanned images, e-mail, ZIP, …); unchanged "
        "files are skipped.",
    "檔案或資料夾（遞迴）": "Files or folders (recursive).",
    "知識庫名稱": "Knowledge base name.",
    "資料目錄（預設為使用者資料目錄）": "Data directory (default: the per-user data directory).",
    "輸出一個 JSON 物件到 stdout": "Print one JSON object on stdout.",
    "不顯示進度": "Do not show progress.",
    "文件中繼資料（可重複），如 dept=hr、tag=規章,差勤、effective=2024-01-01":
        "Document metadata (repeatable), e.g. dept=hr, tag=規章,差勤, effective=2024-01-01.",
    "重新檢查已匯入的檔案：變更者重新匯入，已刪除者自知識庫移除。":
        "Re-check ingested files: changed ones are re-ingested, deleted ones removed from "
        "the knowledge base.",
    "自知識庫移除文件（不會刪除原始檔案）。":
        "Remove documents from a knowledge base (the original files stay).",
    "要移除的文件路徑（如 docs 所列）": "Paths of the documents to remove (as `docs` lists them).",
    "列出知識庫中的文件（可用 --where 篩選）。":
        "List the documents in a knowledge base (filter with --where).",
    "篩選條件（可重複，皆須符合），如 dept=hr、tag=規章、amended>=2020-01-01、"
    "status=repealed；見 docs/admins/sources.md":
        "Filter (repeatable, all must match), e.g. dept=hr, tag=規章, amended>=2020-01-01, "
        "status=repealed; see docs/admins/sources.md.",
    "設定文件的中繼資料（部門、標籤、施行／修正日期），供 --where 篩選。":
        "Set a document's metadata (department, tags, effective/amended dates) for --where.",
    "文件路徑（如 docs 所列）": "Document path (as `docs` lists it).",
    "鍵=值，如 dept=hr tag=規章；鍵= 表示移除":
        "KEY=VALUE, e.g. dept=hr tag=規章; KEY= removes the key.",
    "檢索最相關的段落（--where 篩選在索引查詢之內套用）。":
        "Retrieve the most relevant passages (--where filters inside the index query).",
    "查詢文字": "Query text.",
    "知識庫名稱（可重複指定多個）": "Knowledge base name (repeat for several).",
    "回傳筆數": "Number of results.",
    "回答問題並附上出處；知識庫沒有答案時會明說。設定對話模型時逐字輸出生成的回答。":
        "Answer a question with citations; say so plainly when the knowledge base has no "
        "answer. With a chat model configured, the generated answer streams as it is written.",
    "問題": "The question.",
    "參考的段落數": "Number of passages to answer from.",
    "顯示各知識庫的文件與段落數。": "Show documents and passages per knowledge base.",
    "由資料庫重建知識庫的檢索索引。": "Rebuild a knowledge base's search index from the database.",
    "線上備份資料庫（SQLite backup API）；索引可由 reindex 重建。":
        "Back up the database online (SQLite backup API); indexes can be rebuilt with reindex.",
    "備份檔路徑（SQLite 檔）": "Backup file to write (an SQLite file).",
    "由備份還原資料庫：確認沒有程序使用中、移開舊檔與殘留的 WAL、檢查完整性、重建索引。":
        "Restore the database from a backup: checks no process uses it, moves the old file "
        "and stale WAL aside, checks integrity, rebuilds the indexes.",
    "zhiku backup 產生的備份檔": "A backup file written by zhiku backup.",
    "持續同步資料夾：新增、修改、改名、刪除都會反映到知識庫；啟動時先完整比對。":
        "Keep a folder in sync: additions, changes, renames and deletions reach the knowledge "
        "base; a full comparison runs first.",
    "要持續同步的資料夾（可為掛載的網路磁碟）": "Folder to keep in sync (may be a mounted network share).",
    "文件中繼資料（可重複），如 dept=hr、tag=規章": "Document metadata (repeatable), e.g. dept=hr, tag=規章.",
    "檔案最後一次變動後等待幾秒再匯入": "Seconds to wait after a file's last change before ingesting it.",
    "以輪詢偵測變動（SMB/NFS 網路磁碟收不到變動通知時使用）":
        "Detect changes by polling (for SMB/NFS shares that send no change notifications).",
    "每隔幾秒完整比對一次資料夾（保險）": "Seconds between full comparisons of the folder (a safety net).",
    "抓取網站（同主機、遵守 robots.txt、讀 sitemap.xml、以 ETag 增量更新）。":
        "Crawl a website (same host, obeys robots.txt, reads sitemap.xml, incremental by ETag).",
    "起始網址（http:// 或 https://）": "Start URL (http:// or https://).",
    "最多頁數": "Maximum number of pages.",
    "最多連結層數": "Maximum link depth.",
    "單頁上限（MB）": "Size limit per page (MB).",
    "也可抓取的其他主機（預設只抓起始網址的主機）":
        "Other hosts that may be crawled (default: only the start URL's host).",
    "明確允許的位址或網段（預設拒絕本機、link-local、雲端中繼資料位址）":
        "Addresses or networks explicitly allowed (loopback, link-local and cloud metadata "
        "addresses are refused by default).",
    "每頁間隔秒數": "Seconds between pages.",
    "不讀 sitemap.xml": "Do not read sitemap.xml.",
    "啟動伺服器：網頁介面、REST API（/api/v1）與 OpenAI 相容 API（/v1）。":
        "Start the server: web UI, REST API (/api/v1) and OpenAI-compatible API (/v1).",
    "監聽位址（對內網開放：0.0.0.0）": "Address to listen on (for the intranet: 0.0.0.0).",
    "連接埠": "Port.",
    "工作行程數（共用同一資料庫）": "Worker processes (sharing one database).",
    "單檔上傳上限（MB，預設 50）": "Upload limit per file (MB, default 50).",
    "每把金鑰每分鐘請求上限（0 為不限，預設 600）":
        "Requests per minute per key (0: unlimited; default 600).",
    "debug、info、warning": "debug, info, warning.",
    "匯出稽核紀錄：誰問了什麼（依個資政策遮罩）、引用了哪些文件、誰上傳或刪除了什麼。":
        "Export the audit log: who asked what (masked by the PII policy), which documents "
        "were cited, who uploaded or deleted what.",
    "起始時間（ISO 8601，如 2025-01-01）": "From (ISO 8601, e.g. 2025-01-01).",
    "結束時間（不含）": "Until (exclusive).",
    "只看這位使用者": "Only this user.",
    "只看這個知識庫": "Only this knowledge base.",
    "ask、chat、search、upload、document_delete…": "ask, chat, search, upload, document_delete, …",
    "jsonl（預設）或 csv": "jsonl (default) or csv.",
    "寫入檔案（預設 stdout）": "Write to a file (default: stdout).",
    "多輪對話：追問會結合前文改寫成完整問題再檢索。/new 開新對話，/exit 或 Ctrl-D 離開。":
        "Multi-turn chat: follow-ups are rewritten with the context into full questions "
        "before retrieval. /new starts a new conversation, /exit or Ctrl-D leaves.",
    "管理知識庫（建立、列出、檢視、刪除、個資政策）。":
        "Manage knowledge bases (create, list, show, delete, PII policy).",
    "列出知識庫。": "List the knowledge bases.",
    "建立知識庫（已存在則不變）。": "Create a knowledge base (unchanged if it exists).",
    "顯示知識庫的設定（含個資政策）與統計。":
        "Show a knowledge base's settings (PII policy included) and statistics.",
    "以知識庫自己的段落重新校準拒答門檻，並顯示拒答曲線。":
        "Recalibrate the refusal threshold on the knowledge base's own passages and show "
        "the refusal curve.",
    "可答問題最多被拒答的比例": "Largest share of answerable questions that may be refused.",
    "變更知識庫的個資政策（之後匯入的文件適用；既有文件請重新匯入）與輸出設定。":
        "Change a knowledge base's PII policy (applies to documents ingested from now on; "
        "re-ingest existing ones) and output settings.",
    "ingest（匯入時遮罩）、output（輸出時遮罩）或 off":
        "ingest (mask when ingesting), output (mask on output) or off.",
    "要遮罩的類型，如 \"+landline,-name\" 或完整清單":
        "Types to mask, e.g. \"+landline,-name\" or a full list.",
    "mask、tag 或 pseudonym": "mask, tag or pseudonym.",
    "保留機構聯絡資訊（服務信箱、客服專線、營業地址）":
        "Keep organisations' contact details (service mailboxes, hotlines, business addresses).",
    "遮罩的最低信心值（0–1）": "Minimum confidence to mask (0–1).",
    "對話模型輸出的簡體中文轉為臺灣正體（OpenCC s2twp；預設開）":
        "Convert Simplified Chinese in chat-model output to Taiwan Traditional (OpenCC "
        "s2twp; on by default).",
    "刪除知識庫與其中所有文件（原始檔案不受影響）。":
        "Delete a knowledge base and all its documents (the original files are untouched).",
    "不詢問直接刪除": "Delete without asking.",
    "個資偵測、掃描與去識別化": "Personal-data detection, scanning and de-identification.",
    "找出一段文字中的個資（位置、類型、信心）。":
        "Find personal data in a text (position, type, confidence).",
    "要檢查的文字；省略或「-」則讀取標準輸入": "Text to check; omitted or \"-\" reads standard input.",
    "以 JSON 輸出": "Output JSON.",
    "只處理這些類型（逗號分隔）：tw_id, arc, ubn, mobile, landline, email, credit_card, "
    "nhi_card, passport, bank_account, birthday, address, name":
        "Only these types (comma-separated): tw_id, arc, ubn, mobile, landline, email, "
        "credit_card, nhi_card, passport, bank_account, birthday, address, name.",
    "信心門檻（0–1）": "Confidence threshold (0–1).",
    "介面語言：zh-TW（預設）或 en；亦可設 ZHIKU_LANG":
        "Interface language: zh-TW (default) or en; ZHIKU_LANG also sets it.",
    "逐檔、逐欄檢查資料中的個資（開放資料釋出前的欄位檢核）。\n\n結束碼：0 未發現個資、1 發現個資、"
    "2 有檔案無法讀取。":
        "Check data for personal data, file by file and column by column (before an "
        "open-data release).\n\nExit codes: 0 none found, 1 found, 2 a file could not be read.",
    "檔案或資料夾（CSV、XLSX、JSON、TXT、DOCX、PDF）": "Files or folders (CSV, XLSX, JSON, TXT, DOCX, PDF).",
    "另存逐檔、逐欄的 CSV 報告": "Also write a per-file, per-column CSV report.",
    "每類範例數": "Examples per type.",
    "寫出去識別化副本（CSV、XLSX 保留原有版面）。預設遮蔽可識別個人的類型。":
        "Write a de-identified copy (CSV and XLSX keep their layout). By default the types "
        "that identify a person are masked.",
    "輸入檔": "Input file.",
    "輸出檔（去識別化副本）": "Output file (the de-identified copy).",
    "遮蔽所有類型（含統一編號與市話）": "Mask every type (business numbers and landlines included).",
    "mask（部分遮蔽）、tag（類型標籤）、pseudonym（假名）":
        "mask (partial), tag (type label), pseudonym.",
    "保留服務信箱、客服專線、營業地址（預設保留）":
        "Keep service mailboxes, hotlines, business addresses (kept by default).",
    "假名化金鑰所在的環境變數": "Environment variable holding the pseudonymisation key.",
    "以 JSON 輸出統計": "Output the counts as JSON.",
    "匯入全國法規資料庫的法規（一部法規一份文件）。":
        "Import laws from the national Laws & Regulations Database (one document per law).",
    "匯入法規：章節、條號（第 30-1 條）、修正日期與廢止狀態；廢止的法規預設不列入問答。":
        "Import laws: chapters, article numbers (第 30-1 條), amendment dates and repeal "
        "status; repealed laws are left out of answers by default.",
    "法規 JSON 檔或資料夾（如 ChLaw.json）": "Law JSON files or folders (e.g. ChLaw.json).",
    "管理由伺服器依排程同步的來源（資料夾、網站）。":
        "Manage sources the server syncs on a schedule (folders, websites).",
    "登記來源：伺服器的工作執行緒會依排程同步，並記錄最近一次的結果。":
        "Register a source: the server's worker syncs it on schedule and records the last result.",
    "來源名稱": "Source name.",
    "資料夾路徑或網站起始網址": "Folder path or website start URL.",
    "同步間隔，如 30m、6h、1d；manual 表示只手動": "Sync interval, e.g. 30m, 6h, 1d; manual: by hand only.",
    "列出來源與最近一次同步的結果。": "List sources and the result of their last sync.",
    "立即同步一個來源（在這個行程內執行）。": "Sync one source now (in this process).",
    "取消登記來源（已匯入的文件保留）。": "Unregister a source (its ingested documents stay).",
    "管理使用者、角色與知識庫授權。": "Manage users, roles and knowledge-base grants.",
    "建立使用者（第一位管理員：zhiku users create admin --role admin）。":
        "Create a user (the first admin: zhiku users create admin --role admin).",
    "使用者名稱": "User name.",
    "admin、editor 或 reader": "admin, editor or reader.",
    "知識庫名稱（可重複指定）": "Knowledge base name (repeatable).",
    "列出使用者、角色與授權的知識庫。": "List users, their roles and granted knowledge bases.",
    "授權使用者使用知識庫（不存在的知識庫會先建立）。":
        "Grant a user knowledge bases (missing ones are created first).",
    "取消使用者對知識庫的授權。": "Revoke a user's grant on knowledge bases.",
    "變更使用者角色。": "Change a user's role.",
    "停用使用者（其所有金鑰立即失效）。": "Disable a user (all their keys stop working at once).",
    "重新啟用使用者。": "Enable a user again.",
    "刪除使用者與其金鑰、對話（稽核紀錄保留）。":
        "Delete a user with their keys and conversations (the audit log stays).",
    "管理 API 金鑰（雜湊保存，只顯示一次）。": "Manage API keys (stored hashed, shown once).",
    "建立 API 金鑰；stdout 只輸出金鑰本身（只顯示這一次）。\n\n\x08\nzhiku keys create --user alice\n"
    "zhiku keys create --role reader --kb hr --name erp   # 建立服務帳號與金鑰":
        "Create an API key; stdout gets only the key itself (shown this once).\n\n\x08\n"
        "zhiku keys create --user alice\n"
        "zhiku keys create --role reader --kb hr --name erp   # a service account and its key",
    "金鑰所屬的使用者": "User the key belongs to.",
    "沒有 --user 時：為這把金鑰建立服務帳號的角色":
        "Without --user: the role of the service account created for this key.",
    "標籤，如 erp、n8n": "Label, e.g. erp, n8n.",
    "列出金鑰（前綴、使用者、最後使用時間；不含金鑰本身）。":
        "List keys (prefix, user, last use; never the key itself).",
    "只列出這位使用者的金鑰": "Only this user's keys.",
    "撤銷金鑰（立即失效）。": "Revoke a key (it stops working at once).",
    "金鑰前綴（keys list 所列）": "Key prefix (as keys list shows it).",
    "模型設定：檢查連線、檢視設定、建立向量、校準混合檢索。":
        "Model setup: check connections, show settings, build vectors, calibrate hybrid retrieval.",
    "呼叫每個已設定的模型一次，逐一說明是否可用。":
        "Call each configured model once and say whether it works.",
    "顯示各知識庫實際使用的模型、混合檢索權重與向量索引狀態（不顯示 API key）。":
        "Show the models each knowledge base uses, the hybrid weights and the vector index "
        "state (never the API key).",
    "為知識庫的段落建立或補齊向量（未變更的段落不會重算）。":
        "Build or complete the vectors of a knowledge base's passages (unchanged passages "
        "are not recomputed).",
    "捨棄向量索引後重建（仍使用快取）": "Drop the vector index and rebuild it (the cache is still used).",
    "用知識庫自己的問題校準混合檢索的權重（rrf_k、向量權重），並記錄於知識庫設定。":
        "Calibrate the hybrid weights (rrf_k, vector weight) on the knowledge base's own "
        "questions and record them in its settings.",
    "JSONL，每行 {\"question\": 問題, \"doc\": 應找到的文件路徑或標題}":
        "JSONL, one {\"question\": …, \"doc\": path or title of the document to find} per line.",
    "沒有題目檔時，由知識庫抽取 N 句當作題目（偏向關鍵字，較保守）":
        "Without a question file: draw N sentences from the knowledge base as questions "
        "(keyword-leaning, conservative).",
    "只顯示結果，不寫入設定": "Show the result only; do not write the settings.",
}
