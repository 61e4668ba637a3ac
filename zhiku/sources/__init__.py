"""Sources that stay in sync: watched folders, server sources, web sites, Taiwan law.

- :mod:`zhiku.sources.folder` — one folder brought in line with a KB (add, change,
  delete), the reconciliation that ``zhiku watch`` and folder sources run;
- :mod:`zhiku.sources.watch` — ``zhiku watch``: filesystem events (watchdog), debounced;
- :mod:`zhiku.sources.web` — the web site crawler and its SSRF guard;
- :mod:`zhiku.sources.twlaw` — the 全國法規資料庫 bulk JSON, one document per law;
- :mod:`zhiku.sources.registry` — sources registered on a KB with a schedule (server).

See docs/admins/sources.md.
"""
