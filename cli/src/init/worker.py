"""{{name}}: a hello-world background worker, made by `paved init`.

Works in a loop (replace work() with your own) and answers /healthz on
$HOST:$PORT, so that the runtime knows it is alive: unhealthy while a round of
work is overdue.
"""

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVERY = 5.0  # seconds between rounds of work
last_round = time.monotonic()


def work() -> None:
    print("{{name}}: a round of work", flush=True)


def loop() -> None:
    global last_round
    while True:
        work()
        last_round = time.monotonic()
        time.sleep(EVERY)


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        healthy = self.path == "/healthz" and time.monotonic() - last_round < 3 * EVERY
        self.send_response(200 if healthy else 503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


if __name__ == "__main__":
    threading.Thread(target=loop, daemon=True).start()
    ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))), Health).serve_forever()
