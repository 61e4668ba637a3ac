"""Component ``access``: who belongs to which groups and with what clearance (the
simple groups source until sign-in provides one), the log of who viewed passages with
personal data, data-subject requests with their 個資法 §13 deadlines, erasure records
(which hold no personal data), retention periods and what each retention run purged.
"""

AFTER = ("core",)

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE user_groups(
        user_name TEXT NOT NULL,
        grp TEXT NOT NULL,
        PRIMARY KEY(user_name, grp)
    );
    CREATE TABLE user_clearance(
        user_name TEXT PRIMARY KEY,
        level INTEGER NOT NULL
    );
    CREATE TABLE access_log(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        user_name TEXT NOT NULL,
        kb TEXT NOT NULL,
        chunk_id INTEGER NOT NULL,
        document TEXT NOT NULL,
        kinds TEXT NOT NULL,
        masked TEXT NOT NULL,
        via TEXT NOT NULL
    );
    CREATE INDEX access_log_at ON access_log(at);
    CREATE TABLE subject_requests(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        received_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        status TEXT NOT NULL,
        closed_at TEXT,
        result TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE erasures(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        counts TEXT NOT NULL
    );
    CREATE TABLE retention_periods(
        scope TEXT NOT NULL,
        what TEXT NOT NULL,
        days INTEGER NOT NULL,
        PRIMARY KEY(scope, what)
    );
    CREATE TABLE retention_runs(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        counts TEXT NOT NULL
    );
    """,
}
