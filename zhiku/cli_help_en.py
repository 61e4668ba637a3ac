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
    "HTTPS：另外信任的 CA 憑證檔（PEM，如內部憑證機構；系統信任的憑證照常使用）":
        "HTTPS: a CA certificate file (PEM) to trust as well, e.g. an internal certificate "
        "authority; the system's trusted certificates still apply.",
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
    "建立知識庫（已存在則不變；給了 --index 則改用該索引，由資料庫重建）。":
        "Create a knowledge base (unchanged if it exists; with --index, switch to that index, "
        "rebuilt from the database).",
    "索引後端：embedded（預設，tantivy＋向量檔）或 milvus":
        "Index backend: embedded (default: tantivy + vector file) or milvus.",
    "Milvus 位址：本機 .db 檔（Milvus Lite）或 http://主機:19530":
        "Milvus address: a local .db file (Milvus Lite) or http://host:19530.",
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
    "建立使用者（第一位管理員：zhiku users create admin --role admin --password）。":
        "Create a user (the first admin: zhiku users create admin --role admin --password).",
    "同時設定登入密碼（詢問兩次；見 docs/admins/signin.md）":
        "Also set a sign-in password (asked twice; see docs/admins/signin.md).",
    "同時設定登入密碼，從標準輸入讀取（給腳本用）":
        "Also set a sign-in password, read from standard input (for scripts).",
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

    # access labels, 個資法 subject rights, retention (docs/admins/access.md)
    "以這位使用者的群組與密等查詢（與伺服器對該使用者的篩選相同）":
        "Query with this user's groups and clearance (the same filter the server applies to that user).",
    "access：個資段落的存取紀錄（誰看了哪些含個資的段落，僅遮罩值）":
        "access: the access log of passages with personal data (who saw which ones; masked values only).",
    "文件存取：使用者的群組與密等、文件的可閱群組與機密等級。":
        "Document access: users' groups and clearance, documents' reader groups and confidentiality level.",
    "檢視或設定使用者的群組與密等。": "Show or set a user's groups and clearance.",
    "群組（逗號分隔，取代原有；空字串清除）":
        "Groups (comma-separated, replacing the current ones; an empty string clears them).",
    "密等：公開、內部、機密、密": "Clearance: 公開 (public), 內部 (internal), 機密 (confidential), 密 (secret).",
    "設定文件的存取標籤（下一次查詢即生效，不需重新嵌入）。":
        "Set a document's access label (applies from the next query; no re-embedding).",
    "可閱群組（逗號分隔；空字串：知識庫的所有讀者）":
        "Reader groups (comma-separated; an empty string: every reader of the knowledge base).",
    "機密等級：公開、內部、機密、密":
        "Confidentiality level: 公開 (public), 內部 (internal), 機密 (confidential), 密 (secret).",
    "列出機密等級（由低到高；ZHIKU_ACCESS_LEVELS 可改）。":
        "List the confidentiality levels (lowest first; ZHIKU_ACCESS_LEVELS changes them).",
    "個資法當事人權利：查找、匯出、刪除某人的個資，與請求期限。":
        "Data-subject rights under the Personal Data Protection Act: find, export and erase a "
        "person's data, and request deadlines.",
    "列出某人的個資出現的每一處（段落、文件、對話、回饋、稽核、上傳檔），含假名化的。":
        "List every place a person's data appears (passages, documents, conversations, feedback, "
        "audit, uploads), pseudonymised ones included.",
    "id（身分證）、arc（居留證）、phone、email、name":
        "id (national ID), arc (resident certificate), phone, email or name.",
    "識別值（如 A123456789）": "The identifying value (e.g. A123456789).",
    "所屬請求編號": "Number of the request this belongs to.",
    "匯出某人的個資（交付當事人的檔案：JSON，或含 JSON 的 ZIP）。":
        "Export a person's data (the file for the data subject: JSON, or a ZIP holding the JSON).",
    "輸出檔（.json 或 .zip）": "Output file (.json or .zip).",
    "刪除某人的個資：每一處改為類型標記（不可復原）、重建索引，留下不含個資的刪除紀錄。":
        "Erase a person's data: every occurrence becomes a type marker (irreversible), the index "
        "is rebuilt, and an erasure record without personal data is kept.",
    "確認刪除（不可復原）": "Confirm the erasure (irreversible).",
    "登記當事人請求（依第 13 條計算期限：查詢／複製 15 日，更正／停止／刪除 30 日）。":
        "Register a data-subject request (deadline per Art. 13: access/copy 15 days, "
        "correct/stop/erase 30 days).",
    "access、copy、correct、stop 或 erase": "access, copy, correct, stop or erase.",
    "收件日 YYYY-MM-DD": "Date received, YYYY-MM-DD.",
    "列出當事人請求與期限（逾期者標示）。": "List data-subject requests and their deadlines (overdue ones marked).",
    "保存期限：對話、回饋、稽核、存取紀錄與上傳檔。":
        "Retention periods: conversations, feedback, audit, access log and uploads.",
    "設定保存期限（知識庫的期限優先於全域）。":
        "Set a retention period (a knowledge base's period wins over the global one).",
    "conversations、feedback、audit、access_log、uploads":
        "conversations, feedback, audit, access_log or uploads.",
    "保存天數（0 表示移除此期限）": "Days to keep (0 removes this period).",
    "只對這個知識庫（預設：全域）": "Only for this knowledge base (default: global).",
    "列出保存期限與最近的清除紀錄（JSON）。": "List the retention periods and the latest purges (JSON).",
    "立即清除超過保存期限的資料，並記錄清除筆數（JSON）。":
        "Purge data past its retention period now, and record how many rows were purged (JSON).",
    # PostgreSQL (docs/operators/postgresql.md)
    "把內建的 SQLite 資料庫複製到空的 PostgreSQL：逐表複製、比對筆數與搜尋結果。\n\n結束碼：0 完成且一致；1 複製完成但比對不一致；4 目標不是空的或無法連線。":
        "Copy the built-in SQLite database to an empty PostgreSQL: table by table, then compare "
        "row counts and search results.\n\nExit codes: 0 done and consistent; 1 copied but the "
        "comparison differs; 4 the target is not empty or cannot be reached.",
    "空的 PostgreSQL 資料庫網址 postgresql://…": "URL of an empty PostgreSQL database, postgresql://…",
    "每個知識庫用來比對搜尋結果的問題數":
        "Number of questions per knowledge base used to compare search results.",
    # service loop (docs/admins/service-loop.md)
    "服務報告：每日對話與提問、回答／拒答／轉真人比率、👍／👎、處理時間、\n尖峰時段、最常與從未被引用的文件、知識缺口。個資一律遮蔽。":
        "Service report: conversations and questions per day, answered/refused/handed-off rates, "
        "👍/👎, handling times,\npeak hours, most and never cited documents, knowledge gaps. "
        "Personal data is always masked.",
    "期間起點：7d、24h、2w 或日期": "Start of the period: 7d, 24h, 2w or a date.",
    "json、csv 或 html": "json, csv or html.",
    "匯出資料集（如微調用的 SFT JSONL）。": "Export data sets (such as SFT JSONL for fine-tuning).",
    "微調資料集（chat 格式 JSONL）：精選問答與 👍 回答，引用段落作為脈絡，個資遮蔽。":
        "Fine-tuning data set (chat-format JSONL): curated Q&A and 👍 answers, with the cited "
        "passages as context and personal data masked.",
    # channels (docs/admins/channels.md)
    "管理 LINE 頻道（每個頻道對應自己的知識庫）。":
        "Manage LINE channels (each channel answers from its own knowledge base).",
    "登記 LINE 頻道：secret、access token 與回答用的知識庫。":
        "Register a LINE channel: its secret, access token and the knowledge base it answers from.",
    "頻道名稱（webhook 網址 /line/NAME/webhook）": "Channel name (webhook URL /line/NAME/webhook).",
    "LINE 頻道密鑰（channel secret）": "LINE channel secret.",
    "LINE 頻道存取權杖（channel access token）": "LINE channel access token.",
    "列出 LINE 頻道（不顯示 secret 與 token）。": "List LINE channels (without secrets and tokens).",
    "移除 LINE 頻道（連同它的對話）。": "Remove a LINE channel (with its conversations).",
    "頻道名稱": "Channel name.",
    "管理對外 webhook 與傳送紀錄。": "Manage outbound webhooks and their deliveries.",
    "新增 webhook 接收端；簽章金鑰只顯示這一次。":
        "Add a webhook receiver; its signing secret is shown this once only.",
    "名稱": "Name.",
    "接收端網址（http/https）": "Receiver URL (http/https).",
    "事件（可重複；預設全部）：question.answered, question.refused, feedback.negative, handoff.requested, handoff.resolved, document.ingested":
        "Event (repeatable; default: all): question.answered, question.refused, feedback.negative, "
        "handoff.requested, handoff.resolved, document.ingested.",
    "列出 webhook 接收端。": "List webhook receivers.",
    "移除 webhook 接收端與其傳送紀錄。": "Remove a webhook receiver and its deliveries.",
    "傳送紀錄（最新的在前）。": "Webhook deliveries (newest first).",
    "pending、sending、delivered 或 failed": "pending, sending, delivered or failed.",
    "最多列出幾筆": "List at most this many.",
    "重新傳送一筆（次數歸零；執行中的伺服器會送出）。":
        "Send a delivery again (attempts start over; the running server sends it).",
    "傳送紀錄 ID": "Delivery ID.",
    "管理網站聊天小工具的公開金鑰。": "Manage the public keys of the website chat widget.",
    "建立網站小工具的公開金鑰，並印出要貼到網站上的 script 標籤。":
        "Create a public key for the website widget and print the script tag to paste into the site.",
    "允許嵌入的網站來源，如 https://www.example.com（可重複）":
        "Website origin allowed to embed it, e.g. https://www.example.com (repeatable).",
    "每分鐘提問上限（整把金鑰）": "Questions per minute allowed (for the whole key).",
    "瞬間上限": "Burst allowance.",
    "列出網站小工具金鑰。": "List website widget keys.",
    "移除網站小工具金鑰（連同它的對話）。": "Remove a website widget key (with its conversations).",
}
