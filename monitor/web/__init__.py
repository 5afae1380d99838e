"""The browse page for marketing teams (``monitor serve``): see ``app.create_app``."""

from __future__ import annotations

import logging
import threading

from monitor.config import Settings

logger = logging.getLogger(__name__)


def build(settings: Settings, writer=None):
    """(app, writer store): migrates the database, opens the read-only store for pages."""
    from monitor.store import Store
    from monitor.web.app import create_app

    writer = writer or Store(settings.database_target)  # applies migrations; the only writer of this process
    reader = Store(settings.database_target, readonly=True)
    return create_app(settings, reader, writer), writer


def make_server(settings: Settings, *, host: str | None = None, port: int | None = None, writer=None):
    """(uvicorn.Server, writer store). ``server.run()`` blocks; ``server.should_exit = True`` stops it."""
    import uvicorn

    app, store = build(settings, writer)
    config = uvicorn.Config(app, host=host or settings.web.host, port=port or settings.web.port, log_level="warning",
                            proxy_headers=False, server_header=False, access_log=False)
    return uvicorn.Server(config), store


def serve(settings: Settings, *, host: str | None = None, port: int | None = None,
          refresh_every: float = 60.0) -> None:
    """Run the page until stopped, with a thread keeping the advocate aggregates current
    (inside ``monitor run`` the daemon does that instead)."""
    from monitor.handoff import refresh_and_announce

    server, store = make_server(settings, host=host, port=port)
    stop = threading.Event()

    def refresher():
        while not stop.wait(refresh_every):
            try:
                refresh_and_announce(store, settings)
            except Exception:
                logger.exception("advocate refresh failed")

    refresh_and_announce(store, settings)
    threading.Thread(target=refresher, name="advocates-refresh", daemon=True).start()
    url = f"http://{server.config.host}:{server.config.port}"
    logger.info("web page on %s", url)
    try:
        server.run()
    finally:
        stop.set()
        logger.info("web page on %s stopped", url)


def start_in_thread(settings: Settings, writer) -> tuple:
    """For ``monitor run`` with ``web.enabled``: (server, thread); stop with ``server.should_exit = True``."""
    server, _ = make_server(settings, writer=writer)
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    logger.info("web page on http://%s:%d", server.config.host, server.config.port)
    return server, thread
