"""Repository of the ``channels`` component: LINE channels and their processed events,
website widget keys, the channel of each conversation, outbound webhook targets and
their persistent delivery queue.

:class:`ChannelsRepo` is what :mod:`zhiku.channels` needs; :class:`SqlChannels` is its one
implementation, in the portable SQL of :mod:`zhiku.storage` (SQLite and PostgreSQL).
Deliveries are claimed with a lease (``claimed_until``), so several server nodes sharing
one database never send the same delivery twice at once, and a node that died while
sending leaves it to be retried when the lease runs out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso


@dataclass(frozen=True, slots=True)
class LineChannel:
    id: int
    name: str
    channel_secret: str
    access_token: str
    kbs: tuple[str, ...]
    user_id: int
    enabled: bool
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """Public view: never the secret or the token, only their last characters."""
        return {
            "id": self.id,
            "name": self.name,
            "kbs": list(self.kbs),
            "enabled": self.enabled,
            "created_at": self.created_at,
            "secret_hint": "…" + self.channel_secret[-4:],
            "token_hint": "…" + self.access_token[-4:],
            "webhook_path": f"/line/{self.name}/webhook",
        }


@dataclass(frozen=True, slots=True)
class WidgetKey:
    id: int
    name: str
    public_key: str
    kbs: tuple[str, ...]
    origins: tuple[str, ...]
    rate_limit: float  # requests per minute for the whole key
    rate_burst: int
    user_id: int
    enabled: bool
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "key": self.public_key,
            "kbs": list(self.kbs),
            "origins": list(self.origins),
            "rate_limit": self.rate_limit,
            "rate_burst": self.rate_burst,
            "enabled": self.enabled,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    id: int
    name: str
    url: str
    secret: str
    events: tuple[str, ...]
    enabled: bool
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "events": list(self.events),
            "enabled": self.enabled,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    target_id: int
    target: str
    url: str
    secret: str
    event: str
    event_id: str
    payload: str
    status: str  # pending, sending, delivered, failed
    attempts: int
    next_attempt: float
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "event": self.event,
            "event_id": self.event_id,
            "status": self.status,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
        }


class ChannelsRepo(Protocol):
    # conversations
    def latest_conversation(self, channel_ref: str) -> tuple[str, int, str] | None: ...

    def conversation_in(self, conv_id: str, channel_ref: str) -> int | None: ...

    def conversation_channel(self, conv_id: str) -> tuple[str, str | None] | None: ...

    # LINE
    def add_line_channel(
        self, name: str, secret: str, token: str, kbs: list[str], user_id: int
    ) -> LineChannel: ...

    def line_channel(self, name: str) -> LineChannel | None: ...

    def line_channels(self) -> list[LineChannel]: ...

    def delete_line_channel(self, name: str) -> LineChannel | None: ...

    def claim_line_event(self, channel_id: int, event_id: str) -> bool: ...

    def finish_line_event(
        self, channel_id: int, event_id: str, status: str, delivery: str | None
    ) -> None: ...

    def line_event_counts(self, channel_id: int) -> dict[str, int]: ...

    # widget
    def add_widget_key(
        self,
        name: str,
        public_key: str,
        kbs: list[str],
        origins: list[str],
        rate_limit: float,
        rate_burst: int,
        user_id: int,
    ) -> WidgetKey: ...

    def widget_key(self, public_key: str) -> WidgetKey | None: ...

    def widget_keys(self) -> list[WidgetKey]: ...

    def delete_widget_key(self, name: str) -> WidgetKey | None: ...

    # webhooks
    def add_target(self, name: str, url: str, secret: str, events: list[str]) -> WebhookTarget: ...

    def targets(self) -> list[WebhookTarget]: ...

    def delete_target(self, name: str) -> WebhookTarget | None: ...

    def enqueue(self, event: str, event_id: str, payload: str, now: float) -> list[int]: ...

    def claim_due(self, now: float, lease_s: float, limit: int) -> list[Delivery]: ...

    def next_due(self) -> float | None: ...

    def delivered(self, delivery_id: int, status: int) -> None: ...

    def retry_later(
        self, delivery_id: int, next_attempt: float, status: int | None, error: str, final: bool
    ) -> None: ...

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]: ...

    def delivery(self, delivery_id: int) -> Delivery | None: ...

    def redeliver(self, delivery_id: int, now: float) -> bool: ...


def _names(raw: str) -> tuple[str, ...]:
    return tuple(json.loads(raw or "[]"))


class SqlChannels:
    """:class:`ChannelsRepo` on a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- conversations --------------------------------------------------------------

    def latest_conversation(self, channel_ref: str) -> tuple[str, int, str] | None:
        """(id, kb_id, updated_at) of the newest conversation of ``channel_ref``."""
        row = self.db.execute(
            "SELECT id, kb_id, updated_at FROM conversations WHERE channel_ref=? "
            "ORDER BY updated_at DESC, id DESC LIMIT 1",
            (channel_ref,),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])

    def conversation_in(self, conv_id: str, channel_ref: str) -> int | None:
        """The KB id of conversation ``conv_id`` when it belongs to ``channel_ref``."""
        row = self.db.execute(
            "SELECT kb_id FROM conversations WHERE id=? AND channel_ref=?", (conv_id, channel_ref)
        ).fetchone()
        return None if row is None else int(row[0])

    def conversation_channel(self, conv_id: str) -> tuple[str, str | None] | None:
        """(channel, channel_ref) of a conversation (None when there is none)."""
        row = self.db.execute(
            "SELECT channel, channel_ref FROM conversations WHERE id=?", (conv_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    # --- LINE -----------------------------------------------------------------------

    @staticmethod
    def _line(row: Any) -> LineChannel:
        return LineChannel(
            int(row["id"]),
            row["name"],
            row["channel_secret"],
            row["access_token"],
            _names(row["kbs"]),
            int(row["user_id"]),
            bool(row["enabled"]),
            row["created_at"],
        )

    def add_line_channel(
        self, name: str, secret: str, token: str, kbs: list[str], user_id: int
    ) -> LineChannel:
        row = self.db.execute(
            "INSERT INTO line_channels(name, channel_secret, access_token, kbs, user_id, "
            "created_at) VALUES (?,?,?,?,?,?) RETURNING *",
            (name, secret, token, json.dumps(kbs, ensure_ascii=False), user_id, now_iso()),
        ).fetchone()
        return self._line(row)

    def line_channel(self, name: str) -> LineChannel | None:
        row = self.db.execute("SELECT * FROM line_channels WHERE name=?", (name,)).fetchone()
        return None if row is None else self._line(row)

    def line_channels(self) -> list[LineChannel]:
        return [self._line(r) for r in self.db.execute("SELECT * FROM line_channels ORDER BY id")]

    def delete_line_channel(self, name: str) -> LineChannel | None:
        row = self.db.execute(
            "DELETE FROM line_channels WHERE name=? RETURNING *", (name,)
        ).fetchone()
        return None if row is None else self._line(row)

    def claim_line_event(self, channel_id: int, event_id: str) -> bool:
        """Record ``event_id`` as received; False when it was already (a replay)."""
        row = self.db.execute(
            "INSERT INTO line_events(channel_id, event_id, status, received_at) "
            "VALUES (?,?,'received',?) ON CONFLICT(channel_id, event_id) DO NOTHING "
            "RETURNING event_id",
            (channel_id, event_id, now_iso()),
        ).fetchone()
        return row is not None

    def finish_line_event(
        self, channel_id: int, event_id: str, status: str, delivery: str | None
    ) -> None:
        self.db.execute(
            "UPDATE line_events SET status=?, delivery=?, finished_at=? "
            "WHERE channel_id=? AND event_id=?",
            (status, delivery, now_iso(), channel_id, event_id),
        )

    def line_event_counts(self, channel_id: int) -> dict[str, int]:
        return {
            r[0]: int(r[1])
            for r in self.db.execute(
                "SELECT COALESCE(delivery, status), COUNT(*) FROM line_events WHERE channel_id=? "
                "GROUP BY COALESCE(delivery, status)",
                (channel_id,),
            )
        }

    # --- widget ---------------------------------------------------------------------

    @staticmethod
    def _widget(row: Any) -> WidgetKey:
        return WidgetKey(
            int(row["id"]),
            row["name"],
            row["public_key"],
            _names(row["kbs"]),
            _names(row["origins"]),
            float(row["rate_limit"]),
            int(row["rate_burst"]),
            int(row["user_id"]),
            bool(row["enabled"]),
            row["created_at"],
        )

    def add_widget_key(
        self,
        name: str,
        public_key: str,
        kbs: list[str],
        origins: list[str],
        rate_limit: float,
        rate_burst: int,
        user_id: int,
    ) -> WidgetKey:
        row = self.db.execute(
            "INSERT INTO widget_keys(name, public_key, kbs, origins, rate_limit, rate_burst, "
            "user_id, created_at) VALUES (?,?,?,?,?,?,?,?) RETURNING *",
            (
                name,
                public_key,
                json.dumps(kbs, ensure_ascii=False),
                json.dumps(origins),
                rate_limit,
                rate_burst,
                user_id,
                now_iso(),
            ),
        ).fetchone()
        return self._widget(row)

    def widget_key(self, public_key: str) -> WidgetKey | None:
        row = self.db.execute(
            "SELECT * FROM widget_keys WHERE public_key=?", (public_key,)
        ).fetchone()
        return None if row is None else self._widget(row)

    def widget_keys(self) -> list[WidgetKey]:
        return [self._widget(r) for r in self.db.execute("SELECT * FROM widget_keys ORDER BY id")]

    def delete_widget_key(self, name: str) -> WidgetKey | None:
        row = self.db.execute(
            "DELETE FROM widget_keys WHERE name=? RETURNING *", (name,)
        ).fetchone()
        return None if row is None else self._widget(row)

    # --- webhooks -------------------------------------------------------------------

    @staticmethod
    def _target(row: Any) -> WebhookTarget:
        return WebhookTarget(
            int(row["id"]),
            row["name"],
            row["url"],
            row["secret"],
            _names(row["events"]),
            bool(row["enabled"]),
            row["created_at"],
        )

    def add_target(self, name: str, url: str, secret: str, events: list[str]) -> WebhookTarget:
        row = self.db.execute(
            "INSERT INTO webhook_targets(name, url, secret, events, created_at) "
            "VALUES (?,?,?,?,?) RETURNING *",
            (name, url, secret, json.dumps(events), now_iso()),
        ).fetchone()
        return self._target(row)

    def targets(self) -> list[WebhookTarget]:
        return [
            self._target(r) for r in self.db.execute("SELECT * FROM webhook_targets ORDER BY id")
        ]

    def delete_target(self, name: str) -> WebhookTarget | None:
        row = self.db.execute(
            "DELETE FROM webhook_targets WHERE name=? RETURNING *", (name,)
        ).fetchone()
        return None if row is None else self._target(row)

    def enqueue(self, event: str, event_id: str, payload: str, now: float) -> list[int]:
        """One pending delivery per enabled target subscribed to ``event``."""
        ids: list[int] = []
        with self.db.tx():
            for t in self.targets():
                if t.enabled and (not t.events or event in t.events):
                    ids.append(
                        int(
                            self.db.execute(
                                "INSERT INTO webhook_deliveries(target_id, event, event_id, "
                                "payload, status, next_attempt, created_at) "
                                "VALUES (?,?,?,?,'pending',?,?) "
                                "RETURNING id",
                                (t.id, event, event_id, payload, now, now_iso()),
                            ).fetchone()[0]
                        )
                    )
        return ids

    _DELIVERY = (
        "SELECT d.*, t.name AS target, t.url, t.secret FROM webhook_deliveries d "
        "JOIN webhook_targets t ON t.id=d.target_id "
    )

    @staticmethod
    def _delivery(row: Any) -> Delivery:
        return Delivery(
            int(row["id"]),
            int(row["target_id"]),
            row["target"],
            row["url"],
            row["secret"],
            row["event"],
            row["event_id"],
            row["payload"],
            row["status"],
            int(row["attempts"]),
            float(row["next_attempt"]),
            row["last_status"],
            row["last_error"],
            row["created_at"],
            row["delivered_at"],
        )

    def claim_due(self, now: float, lease_s: float, limit: int) -> list[Delivery]:
        """Deliveries due now (pending, or sending with a lapsed lease), leased to the
        caller for ``lease_s`` seconds."""
        rows = self.db.execute(
            "SELECT id FROM webhook_deliveries WHERE (status='pending' AND next_attempt<=?) "
            "OR (status='sending' AND claimed_until<?) ORDER BY next_attempt, id LIMIT ?",
            (now, now, limit),
        ).fetchall()
        out: list[Delivery] = []
        for r in rows:
            got = self.db.execute(
                "UPDATE webhook_deliveries SET status='sending', claimed_until=?, "
                "attempts=attempts+1 WHERE id=? AND ((status='pending' AND next_attempt<=?) "
                "OR (status='sending' AND claimed_until<?)) RETURNING id",
                (now + lease_s, r[0], now, now),
            ).fetchone()
            if got is not None:
                d = self.delivery(int(r[0]))
                if d is not None:
                    out.append(d)
        return out

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        row = self.db.execute(
            "SELECT MIN(next_attempt) FROM webhook_deliveries WHERE status='pending'"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def delivered(self, delivery_id: int, status: int) -> None:
        self.db.execute(
            "UPDATE webhook_deliveries SET status='delivered', last_status=?, last_error=NULL, "
            "claimed_until=NULL, delivered_at=? WHERE id=?",
            (status, now_iso(), delivery_id),
        )

    def retry_later(
        self, delivery_id: int, next_attempt: float, status: int | None, error: str, final: bool
    ) -> None:
        self.db.execute(
            "UPDATE webhook_deliveries SET status=?, next_attempt=?, last_status=?, "
            "last_error=?, claimed_until=NULL WHERE id=?",
            ("failed" if final else "pending", next_attempt, status, error[:500], delivery_id),
        )

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        if status:
            rows = self.db.execute(
                self._DELIVERY + "WHERE d.status=? ORDER BY d.id DESC LIMIT ?", (status, limit)
            )
        else:
            rows = self.db.execute(self._DELIVERY + "ORDER BY d.id DESC LIMIT ?", (limit,))
        return [self._delivery(r) for r in rows]

    def delivery(self, delivery_id: int) -> Delivery | None:
        row = self.db.execute(self._DELIVERY + "WHERE d.id=?", (delivery_id,)).fetchone()
        return None if row is None else self._delivery(row)

    def redeliver(self, delivery_id: int, now: float) -> bool:
        """Queue a delivery again (any status but one being sent), attempts from zero."""
        row = self.db.execute(
            "UPDATE webhook_deliveries SET status='pending', attempts=0, next_attempt=?, "
            "claimed_until=NULL WHERE id=? AND status<>'sending' RETURNING id",
            (now, delivery_id),
        ).fetchone()
        return row is not None
