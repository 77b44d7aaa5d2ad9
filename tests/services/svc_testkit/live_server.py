"""Serving a WSGI app for real on a loopback port from a background thread (werkzeug's server)."""

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server

from svc_testkit.ports import free_port


@dataclass
class LiveServer:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


def serve(app: object) -> LiveServer:
    server = make_server("127.0.0.1", free_port(), app, threaded=True)  # type: ignore[arg-type]
    # A short poll interval makes shutdown() quick (it waits for the loop to notice).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
    )
    thread.start()
    return LiveServer(server, thread)
