"""The message catalogue: every user-facing CLI and server message, in zh-TW and English.

``t(key, **params)`` formats the message ``key`` in the current language (``ZHIKU_LANG``,
:func:`zhiku.settings.lang`) or the one given (``lang="en"``, e.g. a request's
``Accept-Language``). Keys are dotted by area: ``cli.*`` (the command line), ``api.*``
(the server's JSON errors, one per stable error ``code``), ``settings.*`` and
``error.*`` (domain errors). A key missing from the catalogue is a bug: ``t`` raises
``KeyError`` (tests check that every key used in the code is here).
"""

from __future__ import annotations

from typing import Any

# key -> (zh-TW, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # --- the command line ---------------------------------------------------------------
    "cli.error": ("錯誤：", "Error: "),
    "cli.warning": ("注意：", "Note: "),
    "cli.path_not_found": ("找不到", "Not found:"),
    "cli.no_document": ("知識庫「{kb}」中沒有文件", "Knowledge base “{kb}” has no document"),
    "cli.no_hits": ("沒有找到相關段落。", "No matching passage found."),
    "cli.exists_no_overwrite": ("{path} 已存在，不覆寫", "{path} exists; not overwriting it"),
    "cli.removed": ("已移除 {path}", "Removed {path}"),
    "cli.meta_updated": ("已更新 {path} 的中繼資料", "Updated the metadata of {path}"),
    "cli.reindexed": ("已重建索引：{n} 份文件", "Index rebuilt: {n} documents"),
    "cli.backed_up": ("已備份至 {dest}", "Backed up to {dest}"),
    "cli.kb_ready": ("知識庫「{kb}」已就緒", "Knowledge base “{kb}” is ready"),
    "cli.kb_deleted": ("已刪除知識庫「{kb}」", "Deleted knowledge base “{kb}”"),
    "cli.too_few_passages": (
        "知識庫「{kb}」的段落太少，無法校準；沿用預設門檻",
        "Knowledge base “{kb}” has too few passages to calibrate; the default threshold stays",
    ),
    "cli.masked": ("個資已遮罩：{counts}", "Personal data masked: {counts}"),
    "cli.skipped": ("略過", "Skipped"),
    "cli.failed": ("失敗", "Failed"),
    "cli.note": ("注意", "Note"),
    "cli.moved_aside": ("原資料庫已移至 {path}", "The previous database was moved to {path}"),
    "cli.restored": (
        "已由 {src} 還原：{n} 個知識庫，索引已重建",
        "Restored from {src}: {n} knowledge bases, indexes rebuilt",
    ),
    "cli.waiting_lock": (
        "另一個匯入或同步正在使用這個資料目錄，等待它完成…",
        "Another ingest or sync is using this data directory; waiting for it…",
    ),
    # --- the web crawler (zhiku/sources/web.py): HTTPS ------------------------------------
    "crawl.bad_ca_file": (
        "無法讀取 CA 憑證檔「{path}」：{reason}",
        "Cannot read the CA certificate file “{path}”: {reason}",
    ),
    "crawl.ca_missing": ("檔案不存在", "the file does not exist"),
    "crawl.ca_not_pem": (
        "不是 PEM 格式的憑證（{detail}）",
        "it is not a PEM certificate ({detail})",
    ),
    "crawl.tls_untrusted": (
        "無法驗證 {url} 的 TLS 憑證：{why}。若網站使用內部憑證機構，請以 --ca-file（來源設定"
        " ca_file）指定該機構的憑證，或將它安裝到系統信任的憑證（update-ca-certificates）",
        "Cannot verify the TLS certificate of {url}: {why}. If the site uses an internal "
        "certificate authority, give its certificate with --ca-file (source setting ca_file) "
        "or install it in the system's trusted certificates (update-ca-certificates)",
    ),
    "crawl.tls_why_issuer": (
        "憑證不是由受信任的憑證機構簽發",
        "it is not signed by a trusted certificate authority",
    ),
    "crawl.tls_why_hostname": (
        "憑證上的名稱與主機 {host} 不符",
        "the name on the certificate does not match the host {host}",
    ),
    "crawl.tls_why_expired": (
        "憑證已過期或尚未生效",
        "the certificate has expired or is not valid yet",
    ),
    "crawl.tls_failed": (
        "與 {url} 的 TLS 連線失敗：{detail}",
        "The TLS connection to {url} failed: {detail}",
    ),
    # --- settings ----------------------------------------------------------------------
    "settings.bad_env": (
        "環境變數 {key} 的值不合法：「{value}」（{reason}）",
        "Environment variable {key} has an invalid value: “{value}” ({reason})",
    ),
    "settings.bad_option": (
        "設定 {key} 的值不合法：「{value}」（{reason}）",
        "Setting {key} has an invalid value: “{value}” ({reason})",
    ),
    "settings.positive": (
        "設定 {key} 必須大於 0（目前為 {value}）",
        "Setting {key} must be greater than 0 (it is {value})",
    ),
    # --- the server's JSON errors (zhiku/server/errors.py) -----------------------------
    "api.unauthorized": (
        "需要有效的 API 金鑰（Authorization: Bearer …）",
        "A valid API key is required (Authorization: Bearer …)",
    ),
    "api.forbidden": ("你的角色沒有這項操作的權限", "Your role does not allow this operation"),
    "api.admin_only": ("只有管理員可以執行這項操作", "Only administrators can do this"),
    "api.kb_not_found": ("找不到知識庫「{kb}」", "Knowledge base “{kb}” not found"),
    "api.kb_exists": ("知識庫「{kb}」已存在", "Knowledge base “{kb}” already exists"),
    "api.no_kb": ("沒有可用的知識庫", "No knowledge base is available to you"),
    "api.document_not_found": ("找不到文件", "Document not found"),
    "api.passage_not_found": ("找不到段落", "Passage not found"),
    "api.job_not_found": ("找不到匯入工作", "Ingestion job not found"),
    "api.source_not_found": ("找不到來源「{name}」", "Source “{name}” not found"),
    "api.conversation_not_found": ("找不到對話", "Conversation not found"),
    "api.answer_not_found": ("找不到回答", "Answer not found"),
    "api.conversation_kb_mismatch": (
        "這段對話屬於另一個知識庫",
        "This conversation belongs to another knowledge base",
    ),
    "api.not_reingestable": (
        "這份文件的原始檔不在伺服器上，無法重新匯入",
        "The original file of this document is not on the server",
    ),
    "api.not_found": ("找不到這個網址", "No such URL"),
    "api.method_not_allowed": ("不支援這個 HTTP 方法", "HTTP method not allowed"),
    "api.invalid_request": ("請求格式錯誤：{detail}", "Invalid request: {detail}"),
    "api.invalid_json": ("請求內容不是合法的 JSON", "The request body is not valid JSON"),
    "api.question_too_long": (
        "問題太長（上限 {limit} 字）",
        "The question is too long (limit {limit})",
    ),
    "api.no_files": (
        "請以 multipart 欄位 files 上傳至少一個檔案",
        "Upload at least one file in the multipart field “files”",
    ),
    "api.too_many_files": ("一次最多上傳 {limit} 個檔案", "At most {limit} files per upload"),
    "api.payload_too_large": (
        "請求內容過大（上限 {limit}）",
        "Request body too large (limit {limit})",
    ),
    "api.rate_limited": (
        "請求過於頻繁，請 {retry} 秒後再試",
        "Too many requests; retry in {retry} s",
    ),
    "api.too_many_auth_failures": (
        "驗證失敗次數過多，請稍後再試",
        "Too many failed authentications; try again later",
    ),
    "api.model_not_found": (
        "找不到模型（知識庫）「{kb}」",
        "Model (knowledge base) “{kb}” not found",
    ),
    "api.no_user_message": ("messages 中沒有使用者提問", "messages holds no user message"),
    "api.overloaded": ("伺服器忙碌中，請稍後再試", "The server is busy; try again shortly"),
    "api.store_error": ("資料庫錯誤：{detail}", "Store error: {detail}"),
    "api.invalid_policy": ("個資政策不合法：{detail}", "Invalid PII policy: {detail}"),
    # sign-in (zhiku.server.signin)
    "api.invalid_credentials": ("帳號或密碼錯誤", "Wrong username or password"),
    "api.account_locked": (
        "登入失敗次數過多，帳號暫時鎖定，請 {retry} 秒後再試",
        "Too many failed sign-ins; the account is locked for {retry} s",
    ),
    "api.account_disabled": ("這個帳號已停用", "This account is disabled"),
    "api.session_expired": ("登入已逾時，請重新登入", "Your session has expired; sign in again"),
    "api.csrf_failed": (
        "缺少或錯誤的 CSRF 權杖（X-CSRF-Token）",
        "Missing or wrong CSRF token (X-CSRF-Token)",
    ),
    "api.password_too_short": (
        "密碼至少需要 {limit} 個字元",
        "The password needs at least {limit} characters",
    ),
    "api.password_too_long": (
        "密碼最多 {limit} 個字元",
        "The password may have at most {limit} characters",
    ),
    "api.ldap_unavailable": (
        "無法連線到 LDAP 目錄伺服器：{detail}",
        "The LDAP directory cannot be reached: {detail}",
    ),
    "api.no_mapped_group": (
        "你的群組沒有對應到任何角色，請聯絡管理員",
        "None of your groups maps to a role; ask an administrator",
    ),
    "api.sso_account_conflict": (
        "名稱「{name}」已屬於另一個本機帳號",
        "The name “{name}” belongs to another local account",
    ),
    "api.sso_not_configured": (
        "尚未設定單一登入（OpenID Connect）",
        "Single sign-on (OpenID Connect) is not configured",
    ),
    "api.oidc_failed": ("單一登入失敗（{reason}）", "Single sign-on failed ({reason})"),
    "api.group_not_found": ("找不到群組「{name}」", "Group “{name}” not found"),
    "api.invalid_group": ("群組名稱須為 1–200 個字元", "A group name has 1–200 characters"),
    "api.invalid_role_name": ("角色「{role}」不存在", "No such role: “{role}”"),
    # hand-off and analytics (zhiku.loop)
    "api.case_not_found": ("找不到轉真人案件", "Hand-off case not found"),
    "api.not_agent": (
        "只有客服人員（部門成員）或管理員可以使用收件匣",
        "Only agents (department members) and administrators can use the inbox",
    ),
    "api.department_not_found": ("找不到部門「{name}」", "Department “{name}” not found"),
    "api.case_resolved": ("案件已結案，請先重新開啟", "The case is resolved; reopen it first"),
    "api.pin_not_found": ("找不到釘選的段落", "Pinned passage not found"),
    # channels (zhiku.channels)
    "api.line_channel_not_found": ("找不到 LINE 頻道「{name}」", "LINE channel “{name}” not found"),
    "api.line_bad_signature": ("X-Line-Signature 簽章不符", "X-Line-Signature does not match"),
    "api.channel_error": ("頻道設定錯誤：{detail}", "Channel error: {detail}"),
    "api.widget_key_invalid": ("網站小工具金鑰無效", "Invalid widget key"),
    "api.widget_origin_refused": (
        "此網站未獲准使用這個小工具",
        "This site may not use this widget",
    ),
    "api.delivery_not_found": ("找不到 webhook 傳送紀錄", "Webhook delivery not found"),
    "api.internal": (
        "伺服器內部錯誤（request id：{request_id}）",
        "Internal server error (request id: {request_id})",
    ),
    "api.model_error": ("模型服務錯誤：{detail}", "Model service error: {detail}"),
    "api.unavailable": ("服務暫時無法使用：{detail}", "Service unavailable: {detail}"),
}


def resolve(lang: str | None = None) -> str:
    """``en`` or ``zh-TW``: ``lang`` when given (any ``en…`` / ``zh…`` tag), else
    ``ZHIKU_LANG``."""
    if lang:
        return "en" if lang.strip().lower().startswith("en") else "zh-TW"
    from zhiku.settings import lang as current

    return current()


def t(key: str, lang: str | None = None, /, **params: Any) -> str:
    """The message ``key`` in ``lang`` (default: ``ZHIKU_LANG``), formatted with ``params``.

    A placeholder without a value is left as it is (a message never fails to render)."""
    zh, en = MESSAGES[key]
    template = en if resolve(lang) == "en" else zh
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
