"""A real threaded HTTP server on 127.0.0.1 serving real photos and every hostile download case.

``with image_server() as srv: srv.url("/img/cat.jpg")``. ``srv.hits[path]`` counts requests per path,
``srv.connections`` counts accepted TCP connections (so a test can prove nothing was fetched).
``HOSTILE`` maps each hostile path to a phrase the rejection reason must contain.
Images are crops of ``skimage.data`` photos (shipped in the wheel); nothing touches the network.
"""

from __future__ import annotations

import functools
import io
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

CAP = 256 * 1024  # the byte cap tests use (DownloadConfig.max_bytes)


@functools.cache
def photo(name: str, width: int = 160) -> Image.Image:
    """A ``skimage.data`` photo scaled to ``width`` px wide, RGB."""
    import skimage.data

    im = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    return im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)


def encode(im: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def bomb_png(side: int = 30000) -> bytes:
    """A tiny PNG whose header declares side×side pixels (a decompression bomb if decoded)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (side + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def rotated_jpeg() -> bytes:
    """A 120×60 stored JPEG with EXIF orientation 6 (displayed 60×120)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo("rocket").crop((0, 0, 120, 60)), exif=exif.tobytes())


@dataclass(frozen=True)
class Route:
    status: int = 200
    body: bytes = b""
    ctype: str = "image/jpeg"
    location: str | None = None
    send_length: bool = True
    hang: bool = False
    delay: float = 0.0  # seconds before answering (latency of a far-away server)
    drip: float = 0.0  # seconds between body bytes (a server that never quite times out)


def build_routes() -> dict[str, Route]:
    cat = encode(photo("chelsea"))
    big = encode(photo("astronaut", 400), quality=95)
    return {
        # good images
        "/img/cat.jpg": Route(body=cat),
        "/img/coffee.png": Route(body=encode(photo("coffee"), "PNG"), ctype="image/png"),
        "/img/astronaut.webp": Route(body=encode(photo("astronaut"), "WEBP"), ctype="image/webp"),
        "/img/rocket.jpg": Route(body=encode(photo("rocket"))),
        "/img/camera.gif": Route(body=encode(photo("camera"), "GIF"), ctype="image/gif"),
        "/img/rotated.jpg": Route(body=rotated_jpeg()),
        "/img/mislabelled.bin": Route(body=encode(photo("immunohistochemistry")), ctype="text/html"),
        # duplicates
        "/img/cat-copy.jpg": Route(body=cat),
        "/img/cat-near.jpg": Route(body=encode(photo("chelsea", 140), quality=70)),
        # redirects
        "/go/hubble": Route(302, location="/img/hubble.jpg"),
        "/img/hubble.jpg": Route(body=encode(photo("hubble_deep_field"))),
        "/loop/a": Route(302, location="/loop/b"),
        "/loop/b": Route(301, location="/loop/a"),
        **{f"/hops/{i}": Route(302, location=f"/hops/{i + 1}") for i in range(12)},
        "/redirect/private": Route(302, location="http://10.0.0.1/secret.jpg"),
        "/redirect/metadata": Route(307, location="http://169.254.169.254/latest/meta-data/"),
        "/redirect/intranet": Route(302, location="http://intranet.test/photo.jpg"),
        "/redirect/file": Route(302, location="file:///etc/passwd"),
        # hostile
        "/404.jpg": Route(404, b"not found", "text/plain"),
        "/500.jpg": Route(500, b"oops", "text/plain"),
        "/html.jpg": Route(body=b"<!DOCTYPE html><html><body>Login</body></html>"),
        "/truncated.jpg": Route(body=big[: len(big) // 2]),
        "/empty.jpg": Route(body=b""),
        "/huge.jpg": Route(body=big + b"\x00" * CAP),
        "/huge-stream.jpg": Route(body=big + b"\x00" * CAP, send_length=False),
        "/bomb.png": Route(body=bomb_png(), ctype="image/png"),
        "/bomb-mid.png": Route(body=bomb_png(7000), ctype="image/png"),
        "/vector.svg": Route(body=b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
                             ctype="image/svg+xml"),
        "/tiny.png": Route(body=encode(photo("chelsea", 24), "PNG"), ctype="image/png"),
        "/text.jpg": Route(body=b"just some text, not an image at all", ctype="image/jpeg"),
        "/slow.jpg": Route(hang=True),
        "/drip.jpg": Route(body=cat, drip=0.05),
    }


#: hostile path → phrase its rejection reason must contain
HOSTILE: dict[str, str] = {
    "/404.jpg": "HTTP 404",
    "/500.jpg": "HTTP 500",
    "/html.jpg": "HTML",
    "/truncated.jpg": "truncated",
    "/empty.jpg": "empty",
    "/huge.jpg": "too large",
    "/huge-stream.jpg": "too large",
    "/bomb.png": "decompression bomb",
    "/bomb-mid.png": "decompression bomb",
    "/vector.svg": "SVG",
    "/tiny.png": "too small",
    "/text.jpg": "unknown file type",
    "/slow.jpg": "timed out",
    "/drip.jpg": "timed out (over",
    "/loop/a": "redirect loop",
    "/hops/0": "too many redirects",
    "/redirect/private": "blocked address 10.0.0.1",
    "/redirect/metadata": "cloud metadata",
    "/redirect/file": "unsupported URL scheme",
}
GOOD = ["/img/cat.jpg", "/img/coffee.png", "/img/astronaut.webp", "/img/rocket.jpg", "/img/camera.gif",
        "/img/rotated.jpg", "/img/mislabelled.bin", "/go/hubble"]


@dataclass
class ImageServer:
    server: ThreadingHTTPServer
    hits: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def image_server(routes: dict[str, Route] | None = None) -> Iterator[ImageServer]:
    """Serve ``routes`` (default: :func:`build_routes`) on 127.0.0.1 on a free port."""
    table = routes if routes is not None else build_routes()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False
        request_queue_size = 128  # the default 5 drops SYNs from 8 parallel clients (1 s retransmit)

        def process_request(self, request, client_address):  # noqa: ANN001, ANN201
            with state.lock:
                state.connections += 1
            return super().process_request(request, client_address)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            with state.lock:
                state.hits[path] += 1
            r = table.get(path, Route(404, b"no such route", "text/plain"))
            if r.hang or r.delay:
                state.stop.wait(10 if r.hang else r.delay)
                if r.hang:
                    return
            self.send_response(r.status)
            self.send_header("Content-Type", r.ctype)
            if r.location:
                self.send_header("Location", r.location)
            if r.send_length:
                self.send_header("Content-Length", str(len(r.body)))
            self.end_headers()
            try:
                step = 1 if r.drip else 64 * 1024
                for i in range(0, len(r.body), step):
                    self.wfile.write(r.body[i:i + step])
                    if r.drip:
                        self.wfile.flush()
                        if state.stop.wait(r.drip):
                            return
            except (BrokenPipeError, ConnectionResetError):
                pass

    state = ImageServer(Server(("127.0.0.1", 0), Handler))
    thread = threading.Thread(target=state.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        state.server.shutdown()
        state.server.server_close()
