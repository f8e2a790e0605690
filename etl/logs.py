"""Python logging set-up for the job's own loggers (``etl.*``): not about web access logs.

(The access-log source, parsing and loading web server logs, is :mod:`etl.weblog`.)

The ``luigi`` command configures only its ``luigi-interface`` logger by default, so the
pipeline's progress lines would be dropped. :func:`ensure_logging` gives ``etl`` an INFO
stream handler unless the user configured logging (a handler on root or on ``etl``).
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


def ensure_logging() -> logging.Handler | None:
    """Attach an INFO handler to the ``etl`` logger when nothing else handles it (idempotent).

    Returns the ``etl`` logger's first handler (the one attached here, or one the user
    configured), None when only the root logger has handlers.
    """
    logger = logging.getLogger("etl")
    if logger.handlers or logging.getLogger().handlers:
        return logger.handlers[0] if logger.handlers else None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler
