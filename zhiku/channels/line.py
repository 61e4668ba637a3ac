"""LINE Messaging API channel (official ``line-bot-sdk`` v3).

``POST /line/{name}/webhook`` verifies ``X-Line-Signature`` with the SDK's
:class:`~linebot.v3.webhook.WebhookParser` (HMAC-SHA256 of the raw body with the
channel secret, compared in constant time), records each event's ``webhookEventId``
(a replay — LINE redelivering, or anyone resending a captured request — is ignored)
and hands the events to a thread pool, so the webhook answers 200 at once.

A worker shows the loading animation, answers the text in the LINE user's
conversation (keyed by channel and user id: follow-ups keep their history), and
sends the answer with the reply token; when the answer took longer than the reply
budget (``ZHIKU_LINE_REPLY_BUDGET_S``, 25 s), the event is a redelivery, or LINE
refuses the token, it pushes to the user instead. Stickers, images, files and other
non-text messages get a polite fixed answer. Questions are stored masked with the
KB's PII policy. Events of one user are answered in order.

``ZHIKU_LINE_API`` changes the API base URL (tests point it at a local server).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    FlexBox,
    FlexBubble,
    FlexMessage,
    FlexSeparator,
    FlexText,
    MessagingApi,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import MessageEvent, TextMessageContent

from zhiku.loop.handoff import asks_for_person
from zhiku.server.answering import answer_events, open_conversation, sources_block
from zhiku.server.deps import Principal, ServerState
from zhiku.server.errors import ApiError
from zhiku.server.loop import handoff_events
from zhiku.storage.channels import LineChannel, SqlChannels
from zhiku.storage.db import now_iso

log = logging.getLogger("zhiku.line")

DEFAULT_API = "https://api.line.me"
TEXT_LIMIT = 5000  # LINE's limit for one text message
FOLLOWUP_IDLE_S = 1800  # a message after 30 min of silence starts a new conversation

POLITE = {
    "zh": {
        "sticker": "謝謝你的貼圖！目前我只能回答文字問題，請直接輸入想問的內容。",
        "image": "抱歉，我還看不懂圖片。請用文字描述你的問題，我會從資料中找答案。",
        "file": "抱歉，我無法在這裡讀取檔案。請用文字輸入你的問題。",
        "other": "抱歉，我只能回答文字問題，請直接輸入想問的內容。",
        "empty": "請輸入想問的問題。",
        "error": "抱歉，系統暫時無法回答，請稍後再試。",
        "sources": "出處",
    },
    "en": {
        "sticker": "Thanks for the sticker! I can only answer text questions; please type yours.",
        "image": "Sorry, I cannot read images yet. Please describe your question in text.",
        "file": "Sorry, I cannot read files here. Please type your question.",
        "other": "Sorry, I can only answer text questions; please type yours.",
        "empty": "Please type your question.",
        "error": "Sorry, I cannot answer right now; please try again later.",
        "sources": "Sources",
    },
}


def lang() -> str:
    return "en" if os.environ.get("ZHIKU_LANG", "").lower().startswith("en") else "zh"


def _kind(message: Any) -> str:
    t = getattr(message, "type", "")
    return t if t in ("sticker", "image", "file") else "other"


def render(answer: dict[str, Any], language: str = "zh") -> list[Any]:
    """The answer as LINE messages: its text, and a Flex bubble listing the citations
    (document, section or clause, page) whose alt text is the compact text form."""
    text = (answer.get("answer") or "").strip() or POLITE[language]["error"]
    msgs: list[Any] = [TextMessage(text=text[:TEXT_LIMIT])]
    cites = answer.get("citations") or []
    if cites and not answer.get("refused"):
        rows: list[Any] = [
            FlexText(text=POLITE[language]["sources"], weight="bold", size="md"),
            FlexSeparator(margin="sm"),
        ]
        for i, c in enumerate(cites[:10], 1):
            where = f"[{i}] 《{c.get('doc') or ''}》"
            if c.get("section"):
                where += f" {c['section']}"
            if c.get("page"):
                where += f"，第 {c['page']} 頁" if language == "zh" else f", p. {c['page']}"
            rows.append(FlexText(text=where[:400], wrap=True, size="sm", margin="sm"))
        alt = sources_block(answer, language).strip()[:400] or POLITE[language]["sources"]
        msgs.append(
            FlexMessage(
                alt_text=alt, contents=FlexBubble(body=FlexBox(layout="vertical", contents=rows))
            )
        )
    return msgs


@dataclass
class Outcome:
    delivery: str  # reply, push, none
    answered: bool


class LineService:
    """Verifies webhooks and answers their events on a pool of worker threads."""

    def __init__(self, state: ServerState, workers: int | None = None) -> None:
        self.state = state
        self.api_host = os.environ.get("ZHIKU_LINE_API", DEFAULT_API).rstrip("/")
        self.reply_budget_s = float(os.environ.get("ZHIKU_LINE_REPLY_BUDGET_S", "25"))
        n = (
            workers
            or int(os.environ.get("ZHIKU_LINE_WORKERS", "0") or 0)
            or max(2, state.settings.threads)
        )
        self.pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="zhiku-line")
        self._clients: dict[tuple[int, str], ApiClient] = {}
        self._user_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        for c in self._clients.values():
            c.close()

    # --- the webhook ----------------------------------------------------------------

    def accept(self, name: str, body: bytes, signature: str) -> int:
        """Verify and queue a webhook request; returns how many events were queued."""
        store = self.state.store
        repo = SqlChannels(store.database)
        ch = repo.line_channel(name)
        if ch is None or not ch.enabled:
            raise ApiError(404, "line_channel_not_found", name=name)
        try:
            events = WebhookParser(ch.channel_secret).parse(body.decode("utf-8"), signature)
        except InvalidSignatureError as exc:
            raise ApiError(401, "line_bad_signature") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, "invalid_request", detail=f"LINE webhook body: {exc}") from exc
        queued = 0
        received = time.monotonic()
        for ev in events if isinstance(events, list) else []:
            event_id = getattr(ev, "webhook_event_id", None)
            if not event_id:
                continue
            with self.state.write() as st:
                fresh = SqlChannels(st.database).claim_line_event(ch.id, event_id)
            if not fresh:
                self.state.metrics.inc("zhiku_line_events_total", {"status": "replayed"})
                continue
            self.pool.submit(self._process, ch, ev, received)
            queued += 1
        return queued

    # --- answering ------------------------------------------------------------------

    def _api(self, ch: LineChannel) -> MessagingApi:
        key = (ch.id, ch.access_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                cfg = Configuration(host=self.api_host, access_token=ch.access_token)
                client = self._clients[key] = ApiClient(cfg)
        return MessagingApi(client)

    def _process(self, ch: LineChannel, ev: Any, received: float) -> None:
        status, delivery = "failed", None
        try:
            out = self.handle(ch, ev, received)
            status, delivery = ("done" if out.answered else "ignored"), out.delivery
        except Exception:  # noqa: BLE001 - one bad event must not stop the others
            log.exception("LINE event failed", extra={"channel": ch.name})
        finally:
            self.state.metrics.inc("zhiku_line_events_total", {"status": status})
            try:
                with self.state.write() as st:
                    SqlChannels(st.database).finish_line_event(
                        ch.id, ev.webhook_event_id, status, delivery
                    )
            except Exception:  # noqa: BLE001
                log.exception("recording a LINE event failed")

    def handle(self, ch: LineChannel, ev: Any, received: float) -> Outcome:
        if not isinstance(ev, MessageEvent):
            return Outcome("none", False)  # follow, unfollow, postback…: nothing to say
        source = ev.source
        chat_id = (
            getattr(source, "group_id", None)
            or getattr(source, "room_id", None)
            or getattr(source, "user_id", None)
        )
        user_id = getattr(source, "user_id", None) or chat_id
        if not chat_id:
            return Outcome("none", False)
        api = self._api(ch)
        language = lang()
        with self._user_locks[f"{ch.id}:{user_id}"]:
            if isinstance(ev.message, TextMessageContent):
                if getattr(source, "type", "user") == "user":
                    try:
                        api.show_loading_animation(
                            ShowLoadingAnimationRequest(chatId=chat_id, loadingSeconds=20)
                        )
                    except ApiException as exc:  # cosmetic: never blocks the answer
                        log.warning("LINE loading animation failed: %s", exc.status)
                question = (ev.message.text or "").strip()
                if question:
                    answer = self.answer(ch, f"line:{ch.id}:{user_id}", question)
                    messages = render(answer, language)
                else:
                    messages = [TextMessage(text=POLITE[language]["empty"])]
            else:
                messages = [TextMessage(text=POLITE[language][_kind(ev.message)])]
            redelivered = bool(getattr(ev.delivery_context, "is_redelivery", False))
            late = time.monotonic() - received > self.reply_budget_s
            if ev.reply_token and not redelivered and not late:
                try:
                    api.reply_message(
                        ReplyMessageRequest(replyToken=ev.reply_token, messages=messages)
                    )
                    return Outcome("reply", True)
                except ApiException as exc:
                    if exc.status != 400:  # 400: the token expired or was used
                        raise
                    log.info("LINE reply token refused; pushing instead")
            api.push_message(PushMessageRequest(to=chat_id, messages=messages))
            return Outcome("push", True)

    def deliver(self, conversation_id: str, text: str) -> bool:
        """Push an agent's reply (hand-off, :mod:`zhiku.loop.handoff`) to the LINE user
        of a conversation; False when the conversation is not a LINE one."""
        repo = SqlChannels(self.state.store.database)
        found = repo.conversation_channel(conversation_id)
        if found is None or found[0] != "line" or not (found[1] or "").startswith("line:"):
            return False
        _, ch_id, user_id = str(found[1]).split(":", 2)
        ch = next((c for c in repo.line_channels() if str(c.id) == ch_id), None)
        if ch is None:
            return False
        self._api(ch).push_message(
            PushMessageRequest(to=user_id, messages=[TextMessage(text=text)])
        )
        return True

    def principal(self, ch: LineChannel) -> Principal:
        return Principal(ch.user_id, f"line:{ch.name}", "reader", 0, f"line:{ch.name}", ch.kbs)

    def answer(self, ch: LineChannel, ref: str, question: str) -> dict[str, Any]:
        """Answer in the user's conversation: the recent one of that user, else a new one
        in the channel's KB best matching the question."""
        state = self.state
        store = state.store
        limit = state.settings.max_question_chars
        question = question[:limit]
        p = self.principal(ch)
        repo = SqlChannels(store.database)
        latest = repo.latest_conversation(ref)
        kbs = [kb for kb in (store.find_kb(n) for n in ch.kbs) if kb is not None]
        if not kbs:
            return {"answer": POLITE[lang()]["error"], "refused": True, "citations": []}
        by_id = {kb.id: kb for kb in kbs}
        conv_id = None
        kb = kbs[0]
        if latest is not None and latest[1] in by_id and _recent(latest[2]):
            conv_id, kb = latest[0], by_id[latest[1]]
        elif len(kbs) > 1:
            with state.pool.engine() as zk:
                hits = zk.search(question, [k.name for k in kbs], k=1)
            if hits:
                kb = next(k for k in kbs if k.name == hits[0].kb)
        conv = open_conversation(store, p, kb, conv_id)
        done: dict[str, Any] = {}
        if asks_for_person(question):  # 「轉真人」: a case for an agent, whose reply is pushed
            events = handoff_events(
                state, p, kb, question, conv, "en" if lang() == "en" else "zh", "line", ref
            )
        else:
            events = answer_events(
                state,
                p,
                kb,
                question,
                conversation=conv,
                action="line",
                channel="line",
                channel_ref=ref,
            )
        for item in events:
            if item["type"] == "done":
                done = item
        return dict(done["answer"])


def _recent(updated_at: str) -> bool:
    from datetime import datetime

    try:
        then = datetime.fromisoformat(updated_at)
        now = datetime.fromisoformat(now_iso())
    except ValueError:
        return False
    return (now - then).total_seconds() < FOLLOWUP_IDLE_S
