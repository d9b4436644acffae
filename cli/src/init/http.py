"""{{name}}: a hello-world HTTP service, made by `paved init`.

Listens on $HOST:$PORT (the platform passes both: 127.0.0.1 on the local
runtime, 0.0.0.0 in a Kubernetes pod); answers / and /healthz.
Replace the body of do_GET with your own.
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok\n"
        else:
            revision = os.environ.get("PAVED_REVISION", "local")
            body = f"hello from {{name}} ({revision})\n".encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass  # one line per request is noise in the workload's log


if __name__ == "__main__":
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))), Handler)
    print(f"{{name}} listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
