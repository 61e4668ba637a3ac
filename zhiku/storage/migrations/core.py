"""Component ``core``: knowledge bases, documents, chunks, the index queue and the
embedding cache, and the first server tables (users, keys, grants, uploads, jobs,
conversations, feedback, audit) and sources.
"""

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE kbs(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        secret BLOB NOT NULL
    );
    CREATE TABLE documents(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        title TEXT NOT NULL,
        kind TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL,
        pages INTEGER,
        meta TEXT NOT NULL DEFAULT '{}',
        added_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE(kb_id, path)
    );
    CREATE TABLE chunks(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        text TEXT NOT NULL,
        section TEXT,
        label TEXT,
        page_start INTEGER,
        page_end INTEGER,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL
    );
    CREATE INDEX chunks_doc ON chunks(doc_id, ord);
    CREATE TABLE index_log(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kb_id INTEGER NOT NULL,
        doc_id INTEGER NOT NULL
    );
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: models (zhiku.vectors): the embedding cache. A chunk's vector is keyed by the
    # embedder's model id and the SHA-256 of the text it embedded, so unchanged chunks,
    # re-ingested files and index rebuilds never call the model again, and a model change
    # simply misses the cache. The vector matrix beside the database is derived from it.
    2: """
    CREATE TABLE embeddings(
        model TEXT NOT NULL,
        text_hash BLOB NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY(model, text_hash)
    ) WITHOUT ROWID;
    """,
    # 3: the server (zhiku.server): users, API keys, grants, uploads, ingestion jobs,
    # conversations, feedback and the audit log. Rows that name a KB reference kbs(id)
    # with ON DELETE CASCADE, so a KB deleted and re-created under the same name never
    # inherits old grants, conversations or jobs. The audit log keeps names, not ids:
    # it must outlive the users and KBs it mentions.
    3: """
    CREATE TABLE users(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
        created_at TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE api_keys(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        prefix TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
    );
    CREATE TABLE grants(
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        PRIMARY KEY(user_id, kb_id)
    );
    CREATE TABLE uploads(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        stored TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        user_id INTEGER,
        uploaded_at TEXT NOT NULL,
        PRIMARY KEY(kb_id, path)
    );
    CREATE TABLE jobs(
        id TEXT PRIMARY KEY,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        user_id INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        heartbeat REAL,
        worker TEXT
    );
    CREATE INDEX jobs_status ON jobs(status, created_at);
    CREATE INDEX jobs_kb ON jobs(kb_id, created_at);
    CREATE TABLE job_files(
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        name TEXT NOT NULL,
        path TEXT,
        stored TEXT,
        sha256 TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        reason TEXT,
        message TEXT,
        chunks INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(job_id, ord)
    );
    CREATE TABLE conversations(
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX conversations_user ON conversations(user_id, updated_at);
    CREATE TABLE messages(
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        refused INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX messages_conversation ON messages(conversation_id, seq);
    CREATE TABLE feedback(
        answer_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
        comment TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE TABLE audit(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        user_name TEXT,
        key_prefix TEXT,
        action TEXT NOT NULL,
        kb TEXT,
        target TEXT,
        detail TEXT NOT NULL DEFAULT '{}',
        ip TEXT
    );
    CREATE INDEX audit_ts ON audit(ts);
    """,
    # 4: sources that stay in sync (zhiku.sources): folders and web sites registered on a
    # KB with a schedule, synced by the server's job workers, with the last run's counts
    # and errors; and the crawler's per-URL state (ETag / Last-Modified, links found) so
    # a re-crawl asks only for what changed and still follows links of unchanged pages.
    4: """
    CREATE TABLE sources(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('folder', 'web')),
        target TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        every_s INTEGER,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        next_run REAL,
        last_job TEXT,
        last_started_at TEXT,
        last_finished_at TEXT,
        last_status TEXT,
        last_counts TEXT NOT NULL DEFAULT '{}',
        last_errors TEXT NOT NULL DEFAULT '[]',
        UNIQUE(kb_id, name)
    );
    ALTER TABLE jobs ADD COLUMN source_id INTEGER REFERENCES sources(id) ON DELETE SET NULL;
    ALTER TABLE job_files ADD COLUMN meta TEXT;
    CREATE TABLE crawl_pages(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        origin TEXT NOT NULL,
        url TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        links TEXT NOT NULL DEFAULT '[]',
        status INTEGER,
        fetched_at TEXT NOT NULL,
        PRIMARY KEY(kb_id, origin, url)
    );
    """,
    # 5: formats (zhiku.loaders): a document found inside another one (an e-mail
    # attachment, a ZIP member) links to its parent; deleting the parent deletes it.
    5: """
    ALTER TABLE documents ADD COLUMN parent_id INTEGER REFERENCES documents(id)
        ON DELETE CASCADE;
    CREATE INDEX documents_parent ON documents(parent_id);
    """,
}
