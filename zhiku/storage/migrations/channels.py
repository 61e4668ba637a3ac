"""Component ``channels``: where a conversation came from, LINE channels, website widget
keys, outbound webhook targets and their delivery queue (zhiku.channels).

``conversations.channel`` is one of web, api, openai, line, widget; ``channel_ref``
names the outside party the conversation belongs to (a LINE user of one LINE channel,
a widget visitor's session), so follow-ups find it again.
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    ALTER TABLE conversations ADD COLUMN channel TEXT NOT NULL DEFAULT 'api';
    ALTER TABLE conversations ADD COLUMN channel_ref TEXT;
    CREATE INDEX conversations_channel_ref ON conversations(channel_ref, updated_at);
    CREATE TABLE line_channels(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        channel_secret TEXT NOT NULL,
        access_token TEXT NOT NULL,
        kbs TEXT NOT NULL DEFAULT '[]',
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE line_events(
        channel_id INTEGER NOT NULL REFERENCES line_channels(id) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        status TEXT NOT NULL,
        received_at TEXT NOT NULL,
        finished_at TEXT,
        delivery TEXT,
        PRIMARY KEY(channel_id, event_id)
    );
    CREATE TABLE widget_keys(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        public_key TEXT NOT NULL UNIQUE,
        kbs TEXT NOT NULL DEFAULT '[]',
        origins TEXT NOT NULL DEFAULT '[]',
        rate_limit REAL NOT NULL,
        rate_burst INTEGER NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE webhook_targets(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        events TEXT NOT NULL DEFAULT '[]',
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE webhook_deliveries(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target_id INTEGER NOT NULL REFERENCES webhook_targets(id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        event_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        claimed_until REAL,
        last_status INTEGER,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt);
    """,
}
