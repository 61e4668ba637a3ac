"""Component ``loop``: the service loop (issue 12) — departments and their agents,
hand-off cases with notes and agent replies, one row per recorded answer (its outcome,
channel and time to answer) with the passages it cited, and curated FAQ entries.
Everything the analytics aggregate has an index on (kb, time); the one on
``answer_stats`` covers every aggregate column, so a report reads only the index.

Agents are the members of a department (``department_members``): the core ``users.role``
CHECK is left as it is, so an agent is any user who belongs to at least one department,
and sees only those departments' cases.

Version 2: the analytics page's daily rollup. ``analytics_days`` lists the closed days
(per KB) that are summarised and how many ``answer_stats`` rows each summary counted;
a report compares that count with the rows there are now (one covered index range on
``answer_stats_kb_day``) and rebuilds the days that differ, so a retention purge, an
erasure or a deleted conversation (whose rows cascade away) never leaves a stale
figure. ``analytics_hours`` holds the additive counts by channel, hour and outcome,
``analytics_conversations`` the distinct conversations of a day and channel,
``analytics_citations`` the citations of each document on that day.
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE departments(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE department_members(
        department_id INTEGER NOT NULL REFERENCES departments(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY(department_id, user_id)
    );
    CREATE INDEX department_members_user ON department_members(user_id);
    CREATE TABLE handoff_cases(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        department_id INTEGER REFERENCES departments(id) ON DELETE SET NULL,
        assignee_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
        reason TEXT NOT NULL CHECK (reason IN ('asked', 'refused', 'feedback')),
        question TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT 'web',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        first_reply_at TEXT,
        resolved_at TEXT
    );
    CREATE INDEX handoff_cases_queue ON handoff_cases(department_id, status, created_at);
    CREATE INDEX handoff_cases_kb ON handoff_cases(kb_id, created_at);
    CREATE INDEX handoff_cases_conversation ON handoff_cases(conversation_id);
    CREATE TABLE case_entries(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id INTEGER NOT NULL REFERENCES handoff_cases(id) ON DELETE CASCADE,
        author_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        author TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('note', 'reply', 'event')),
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX case_entries_case ON case_entries(case_id, id);
    CREATE TABLE answer_stats(
        message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        channel TEXT NOT NULL DEFAULT 'web',
        outcome TEXT NOT NULL CHECK (outcome IN ('answered', 'refused', 'handoff')),
        question TEXT NOT NULL,
        qkey TEXT NOT NULL,
        answer_ms INTEGER,
        day TEXT NOT NULL,
        hour INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX answer_stats_kb_time ON answer_stats(kb_id, created_at, outcome, day, hour,
        channel, answer_ms, conversation_id);
    CREATE INDEX answer_stats_time ON answer_stats(created_at);
    CREATE INDEX answer_stats_qkey ON answer_stats(kb_id, qkey);
    CREATE TABLE answer_citations(
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        doc_id INTEGER REFERENCES documents(id) ON DELETE SET NULL,
        chunk_id INTEGER,
        created_at TEXT NOT NULL,
        PRIMARY KEY(message_id, ord)
    );
    CREATE INDEX answer_citations_doc ON answer_citations(kb_id, doc_id, created_at);
    CREATE INDEX answer_citations_time ON answer_citations(kb_id, created_at, doc_id);
    CREATE TABLE curated_entries(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        doc_id INTEGER REFERENCES documents(id) ON DELETE SET NULL,
        path TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        questions TEXT NOT NULL DEFAULT '[]',
        source_messages TEXT NOT NULL DEFAULT '[]',
        author TEXT NOT NULL,
        approved INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        UNIQUE(kb_id, path)
    );
    """,
    2: """
    CREATE INDEX answer_stats_kb_day ON answer_stats(kb_id, day, channel, hour, outcome,
        answer_ms, conversation_id);
    CREATE TABLE analytics_days(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        answers INTEGER NOT NULL,
        built_at TEXT NOT NULL,
        PRIMARY KEY(kb_id, day)
    );
    CREATE TABLE analytics_hours(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        channel TEXT NOT NULL,
        hour INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        questions INTEGER NOT NULL,
        ms_sum INTEGER NOT NULL,
        ms_n INTEGER NOT NULL,
        ms_max INTEGER,
        PRIMARY KEY(kb_id, day, channel, hour, outcome)
    );
    CREATE TABLE analytics_conversations(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        channel TEXT NOT NULL,
        conversations INTEGER NOT NULL,
        PRIMARY KEY(kb_id, day, channel)
    );
    CREATE TABLE analytics_citations(
        kb_id INTEGER NOT NULL REFERENCES kbs(id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        doc_id INTEGER NOT NULL,
        citations INTEGER NOT NULL,
        PRIMARY KEY(kb_id, day, doc_id)
    );
    """,
}
