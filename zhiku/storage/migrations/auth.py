"""Component ``auth``: sign-in state (zhiku.server.signin).

Password hashes (argon2id), server-side sessions (so any node can check a cookie),
groups with their role/KB mapping, group membership, links from external identities
(LDAP, OpenID Connect) to local users, failed sign-in attempts (lockout across nodes)
and pending OpenID Connect authorizations (state, nonce, PKCE verifier; used once).
Session tokens are stored as SHA-256 digests, never as themselves.
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE auth_passwords(
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE auth_sessions(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash TEXT NOT NULL UNIQUE,
        csrf TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        method TEXT NOT NULL,
        ip TEXT,
        created_ts REAL NOT NULL,
        seen_ts REAL NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX auth_sessions_user ON auth_sessions(user_id);
    CREATE TABLE auth_groups(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        role TEXT,
        kbs TEXT NOT NULL DEFAULT '[]',
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE TABLE auth_user_groups(
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        group_id INTEGER NOT NULL REFERENCES auth_groups(id) ON DELETE CASCADE,
        source TEXT NOT NULL DEFAULT 'local',
        PRIMARY KEY(user_id, group_id)
    );
    CREATE TABLE auth_identities(
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        PRIMARY KEY(provider, subject)
    );
    CREATE TABLE auth_failures(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope TEXT NOT NULL,
        ts REAL NOT NULL
    );
    CREATE INDEX auth_failures_scope ON auth_failures(scope, ts);
    CREATE TABLE auth_pending(
        state TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        verifier TEXT NOT NULL,
        next_url TEXT NOT NULL DEFAULT '/',
        created_ts REAL NOT NULL
    );
    """,
}
