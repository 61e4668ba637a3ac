"""What a server process runs for the channels: the LINE worker pool and the webhook
dispatcher thread (started and stopped by the app's lifespan)."""

from __future__ import annotations

import logging
from typing import Any

from zhiku.channels import webhooks
from zhiku.channels.line import LineService
from zhiku.loop import handoff
from zhiku.server import audit
from zhiku.server.deps import ServerState

log = logging.getLogger("zhiku.channels")


class ChannelsRuntime:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.line = LineService(state)
        self.dispatcher = webhooks.Dispatcher(lambda: state.store.database)

    def start(self) -> None:
        self.dispatcher.start()
        # Hand-off (zhiku.loop.handoff): its events become outbound webhooks, and an
        # agent's reply reaches a LINE user by push.
        handoff.on(self.handoff_event)
        handoff.set_deliverer(self.line.deliver)

    def handoff_event(self, event: str, payload: dict[str, Any]) -> None:
        with self.state.write() as store:
            webhooks.emit(store.database, event, payload)

    def stop(self) -> None:
        handoff.clear()
        self.line.close()
        self.dispatcher.stop()

    def document_ingested(self, status: str, info: dict[str, Any]) -> None:
        """``document.ingested`` for a file the server's workers added or updated."""
        if status not in ("added", "updated"):
            return
        try:
            kb = self.state.store.find_kb(info.get("kb") or "")
            with self.state.write() as store:
                webhooks.emit(
                    store.database,
                    "document.ingested",
                    {
                        "kb": info.get("kb"),
                        "job_id": info.get("job"),
                        "status": status,
                        "name": audit.mask_question(str(info.get("name") or ""), kb),
                    },
                )
        except Exception:  # noqa: BLE001 - an event must never fail an ingestion
            log.exception("document.ingested event failed")
