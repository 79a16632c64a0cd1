# A plain Python HTTP service for the hardening tests: listens on 127.0.0.1:$PORT and, per request, uses what
# ordinary services use (hashlib, zlib, temp files, its state directory, DNS, threads), reporting each.
import hashlib, json, os, socket, sys, tempfile, uuid, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def probe(fn):
    try:
        return fn()
    except Exception as error:  # report, do not crash: the test wants to see what broke
        return f"error: {type(error).__name__}: {error}"


def write_tmp():
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"x")
    return "ok"


def write_state():
    state = os.environ.get("STATE_DIRECTORY")
    if not state:
        return "none"
    with open(os.path.join(state, "probe"), "w") as f:
        f.write("x")
    return "ok"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {
            "runtime": "python",
            "version": sys.version.split()[0],
            "uuid": probe(lambda: len(str(uuid.uuid4()))),
            "sha256": probe(lambda: hashlib.sha256(b"x").hexdigest()[:8]),
            "gzip": probe(lambda: len(zlib.decompress(zlib.compress(b"x" * 1000)))),
            "tmp": probe(write_tmp),
            "state": probe(write_state),
            "cpus": probe(os.cpu_count),
            "interfaces": probe(lambda: len(socket.if_nameindex())),
            "dns": probe(lambda: socket.getaddrinfo("localhost", None)[0][4][0]),
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
