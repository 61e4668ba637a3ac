"""Migration components: one module each (see :mod:`zhiku.storage.migrate`)."""
