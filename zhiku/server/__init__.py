"""The zhiku server: one process (or several workers) on the intranet that departments share.

- :mod:`zhiku.server.app` builds the FastAPI application (needs the ``server`` extra:
  ``pip install 'zhiku[server]'``);
- :mod:`zhiku.server.accounts` and :mod:`zhiku.server.audit` are plain SQLite code, used
  by both the API and the ``zhiku users`` / ``zhiku keys`` / ``zhiku audit`` commands, so
  the command line works without the server extra.
"""
