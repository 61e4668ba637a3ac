"""Storage: the only package that speaks SQL.

One :class:`~zhiku.storage.db.Database` seam with two implementations, SQLite (the
embedded default: one file, WAL) and PostgreSQL (psycopg 3, for several server nodes
sharing one database). Everything stored goes through a repository module of this
package written against that seam, in the portable subset of SQL both understand:

- ``?`` placeholders (translated for psycopg), never string formatting of values;
- ``INSERT … ON CONFLICT … DO UPDATE/NOTHING`` for upserts, ``RETURNING id`` for new
  ids (never ``cursor.lastrowid``, never ``INSERT OR IGNORE/REPLACE``);
- times as ISO-8601 TEXT written by Python (:func:`zhiku.storage.db.now_iso`), JSON as
  TEXT parsed in Python, booleans as INTEGER 0/1;
- where a statement cannot be portable, branch on ``db.dialect`` inside the repository.

Schema changes are migrations grouped by *component*: each module of
:mod:`zhiku.storage.migrations` is one component (``core`` holds the documents, the KBs
and the first server tables) with numbered DDL scripts written in SQLite's syntax with
the types ``INTEGER``/``TEXT``/``REAL``/``BLOB`` and ``INTEGER PRIMARY KEY
AUTOINCREMENT``; :func:`zhiku.storage.db.ddl` translates them for PostgreSQL. A new
feature adds its own module, so features never compete for migration numbers. See
:mod:`zhiku.storage.migrate`.
"""
