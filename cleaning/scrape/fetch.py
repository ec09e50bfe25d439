"""Fetching images from the web safely: SSRF guard, bounded requests, decode and normalise.

One URL goes through :func:`fetch_bytes` (guard → connect to the checked IP → capped, timed read,
redirects followed by hand with the guard re-checked at every hop) and :func:`decode_image_bytes`
(type from magic bytes → size check before decoding → full decode → EXIF rotation, RGB → JPEG).
Each failure raises :class:`Rejected` with a reason in words. :class:`~cleaning.scrape.known.KnownImages` answers "is this
a duplicate of something we have?" (exact sha256, near pHash); :class:`FetchLog` remembers which URLs
were already tried (resume). The thread pool that ties them together is
:func:`cleaning.scrape.run.download_all`. Nothing here writes images to disk.

The guard refuses any address that is not globally routable (loopback, RFC 1918 private, link-local,
CGNAT, reserved, multicast, unspecified) and cloud metadata addresses. ``allow_private_hosts=True``
lifts the first group (tests serve from 127.0.0.1); metadata addresses stay refused regardless.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin, urlsplit

import imagehash
from PIL import Image, UnidentifiedImageError

from ..data.images import MAX_PIXELS, normalise, sniff_kind

if TYPE_CHECKING:
    pass

#: Resolver: ``(host, port) -> IP address strings``. Injectable so tests never touch DNS.
Resolver = Callable[[str, int], Sequence[str]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Addresses of cloud instance metadata services: refused even with ``allow_private_hosts``.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)


class Rejected(Exception):
    """One URL that did not yield a usable image. ``transient`` marks failures worth retrying later."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass(frozen=True)
class DownloadConfig:
    """Limits for one download run. Times in seconds, sizes in bytes/pixels."""

    timeout: float = 10.0  # per connect / per read
    total_timeout: float = 30.0  # whole request including redirects
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    max_pixels: int = MAX_PIXELS
    min_side: int = 32
    workers: int = 8
    allow_private_hosts: bool = False
    allowed_networks: tuple[str, ...] = ()  # e.g. ("127.0.0.0/8",): allowed even when private
    jpeg_quality: int = 95
    #: near duplicate: Hamming distance between 64-bit pHashes <= this. Measured on skimage photos:
    #: resize to 1/3 + JPEG q60 gives 0–4, different photos 20+ (crop to 80 % 10–30: not caught).
    phash_max_distance: int = 6
    user_agent: str = "Mozilla/5.0 (compatible; cleaning-scraper/0.1)"


@dataclass(frozen=True)
class Fetched:
    url: str
    final_url: str
    body: bytes
    content_type: str
    redirects: int


@dataclass(frozen=True)
class DecodedImage:
    """A normalised image ready to save: JPEG bytes, their sha256, the source's sha256, 64-bit pHash."""

    jpeg: bytes
    sha256: str
    source_sha256: str
    phash: int
    width: int
    height: int
    source_format: str


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with :func:`socket.getaddrinfo`; every address it returns (v4 and v6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses an IPv6 address carries and routes to: IPv4-mapped, 6to4 (2002::/16), Teredo
    (2001::/32: server and client) and NAT64 (64:ff9b::/96), each with the form's name."""
    out: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.ipv4_mapped is not None:
        out.append(("IPv4-mapped", ip.ipv4_mapped))
    if ip.sixtofour is not None:
        out.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        out += [("Teredo server", ip.teredo[0]), ("Teredo client", ip.teredo[1])]
    if ip in NAT64_WELL_KNOWN:
        out.append(("NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return out


def blocked_reason(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool = False,
    allowed_networks: Sequence[str] = (),
) -> str | None:
    """Why the guard refuses ``ip`` (e.g. ``"private"``, ``"cloud metadata"``), or None if allowed.

    An IPv6 address that embeds an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by that IPv4
    address too; NAT64 local-use addresses (64:ff9b:1::/48) are refused.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return blocked_reason(ip.ipv4_mapped, allow_private=allow_private, allowed_networks=allowed_networks)
        for form, v4 in embedded_ipv4(ip):
            why = blocked_reason(v4, allow_private=allow_private, allowed_networks=allowed_networks)
            if why:
                return f"{form} address of {v4}: {why}"
        if ip in NAT64_LOCAL_USE and not allow_private:
            return "NAT64 local-use"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if allow_private or any(ip in ipaddress.ip_network(n, strict=False) for n in allowed_networks):
        return None
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "not publicly routable"


def check_host(host: str, port: int, *, config: DownloadConfig, resolver: Resolver) -> str:
    """Resolve ``host`` and return the IP to connect to; raise :class:`Rejected` if any answer is refused.

    All answers must pass (an attacker controlling DNS could otherwise mix a public and a private one).
    """
    try:
        answers = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            answers = [ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as e:
            raise Rejected(f"cannot resolve host {host!r}: {e}", transient=True) from e
    if not answers:
        raise Rejected(f"cannot resolve host {host!r}: no addresses", transient=True)
    for ip in answers:
        why = blocked_reason(ip, allow_private=config.allow_private_hosts,
                             allowed_networks=config.allowed_networks)
        if why:
            raise Rejected(f"blocked address {ip} for host {host!r} ({why}; SSRF guard)")
    return str(answers[0])


def _open_socket(ip: str, port: int, timeout: float) -> socket.socket:
    """The one place a download opens a TCP connection (tests patch this to prove the guard ran first)."""
    return socket.create_connection((ip, port), timeout=timeout)


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP connection to an already checked IP, sending the original host name in ``Host``."""

    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip
        self.raw_sock: socket.socket | None = None

    def connect(self) -> None:
        self.sock = self.raw_sock = _open_socket(self._ip, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an already checked IP; SNI and certificate checked against the original host name."""

    def __init__(self, host: str, port: int, ip: str, timeout: float, ctx: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=ctx)
        self._ip, self._ctx = ip, ctx
        self.raw_sock: socket.socket | None = None

    def connect(self) -> None:
        self.raw_sock = _open_socket(self._ip, self.port, self.timeout)
        self.sock = self._ctx.wrap_socket(self.raw_sock, server_hostname=self.host)


_SSL_CONTEXT = ssl.create_default_context()


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target) of an http(s) URL; raise Rejected otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise Rejected(f"malformed URL: {e}") from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Rejected(f"unsupported URL scheme {scheme or '(none)'!r} (only http and https)")
    if not parts.hostname:
        raise Rejected("URL has no host")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise Rejected(f"invalid host name {parts.hostname!r}") from e
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return scheme, host, port or (443 if scheme == "https" else 80), target


def fetch_bytes(url: str, *, config: DownloadConfig | None = None,
                resolver: Resolver = system_resolver) -> Fetched:
    """GET ``url`` and return its body, following at most ``config.max_redirects`` redirects.

    Every hop: scheme check, SSRF guard on the resolved address, connection to exactly that address.
    Raises:
        Rejected: HTTP error, timeout, body over ``max_bytes``, redirect loop/limit, blocked address.
    """
    config = config or DownloadConfig()
    deadline = time.monotonic() + config.total_timeout
    seen: set[str] = set()
    current = url
    for hop in range(config.max_redirects + 1):
        seen.add(current)
        status, location, body, ctype = _get_once(current, config, resolver, deadline)
        if status in REDIRECT_STATUSES:
            if not location:
                raise Rejected(f"HTTP {status} redirect without a Location header")
            nxt = urljoin(current, location.strip())
            if nxt in seen:
                raise Rejected(f"redirect loop ({nxt} visited twice)")
            current = nxt
            continue
        if status != 200:
            raise Rejected(f"HTTP {status}", transient=status in TRANSIENT_STATUSES)
        return Fetched(url, current, body, ctype, hop)
    raise Rejected(f"too many redirects (more than {config.max_redirects})")


def _get_once(url: str, config: DownloadConfig, resolver: Resolver,
              deadline: float) -> tuple[int, str | None, bytes, str]:
    scheme, host, port, target = _split(url)
    ip = check_host(host, port, config=config, resolver=resolver)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Rejected(f"timed out (over {config.total_timeout:g} s in total)", transient=True)
    timeout = min(config.timeout, remaining)
    conn: _PinnedHTTP | _PinnedHTTPS = (
        _PinnedHTTPS(host, port, ip, timeout, _SSL_CONTEXT) if scheme == "https"
        else _PinnedHTTP(host, port, ip, timeout))
    expired = threading.Event()

    def watchdog() -> None:  # a hard total deadline, also against a server dripping bytes slowly
        expired.set()
        sock = conn.raw_sock  # conn.sock is already None once a "Connection: close" response started
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(remaining, watchdog)
    timer.daemon = True
    timer.start()
    try:
        result = _exchange(conn, target, config)
        if expired.is_set():  # headers or body cut off by the watchdog: a timeout, not an empty answer
            raise Rejected(f"timed out (over {config.total_timeout:g} s in total)", transient=True)
        return result
    except Rejected:
        raise
    except (http.client.HTTPException, OSError) as e:
        if expired.is_set():
            raise Rejected(f"timed out (over {config.total_timeout:g} s in total)", transient=True) from e
        if isinstance(e, TimeoutError):
            raise Rejected(f"timed out (no answer within {timeout:g} s)", transient=True) from e
        if isinstance(e, ssl.SSLError):
            raise Rejected(f"TLS error: {e.reason or e}") from e
        if isinstance(e, http.client.IncompleteRead):
            raise Rejected(f"connection closed early ({len(e.partial)} bytes received)", transient=True) from e
        raise Rejected(f"connection failed: {type(e).__name__}: {e}", transient=True) from e
    finally:
        timer.cancel()
        conn.close()


def _exchange(conn: http.client.HTTPConnection, target: str,
              config: DownloadConfig) -> tuple[int, str | None, bytes, str]:
    conn.putrequest("GET", target, skip_accept_encoding=True)
    conn.putheader("User-Agent", config.user_agent)
    conn.putheader("Accept", "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8")
    conn.putheader("Accept-Encoding", "identity")
    conn.endheaders()
    resp = conn.getresponse()
    if resp.status != 200:
        return resp.status, resp.getheader("Location"), b"", ""
    length = resp.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > config.max_bytes:
        raise Rejected(f"too large: Content-Length {int(length):,} bytes over the {config.max_bytes:,}-byte cap")
    chunks, total = [], 0
    while chunk := resp.read1(64 * 1024):  # read1: returns what has arrived, so the watchdog can act
        total += len(chunk)
        if total > config.max_bytes:
            raise Rejected(f"too large: body over the {config.max_bytes:,}-byte cap")
        chunks.append(chunk)
    if length and length.strip().isdigit() and total < int(length):
        raise http.client.IncompleteRead(b"".join(chunks), int(length) - total)
    return resp.status, None, b"".join(chunks), resp.getheader("Content-Type") or ""


def sniff_format(body: bytes) -> str | None:
    """Image format named by the first bytes (JPEG, PNG, GIF, WEBP, BMP, TIFF) or None."""
    for magic, offset, fmt in _MAGIC:
        if body[offset:offset + len(magic)] == magic and (fmt != "WEBP" or body[:4] == b"RIFF"):
            return fmt
    return None


def decode_image_bytes(body: bytes, *, config: DownloadConfig | None = None) -> DecodedImage:
    """Check, fully decode and normalise downloaded bytes; re-encode as JPEG.

    The type comes from the magic bytes (the header and the URL are ignored); the pixel count is
    checked from the header before decoding; EXIF rotation is applied and the image made RGB
    (transparency flattened onto white). Raises :class:`Rejected` with the reason.
    """
    config = config or DownloadConfig()
    if not body:
        raise Rejected("empty body (0 bytes)")
    fmt = sniff_format(body)
    if fmt is None:
        raise Rejected(sniff_kind(body[:512]) or f"not an image: unknown file type (starts {body[:8]!r})")
    try:
        im = Image.open(io.BytesIO(body))
        if (im.format or "").replace("MPO", "JPEG") != fmt:
            raise Rejected(f"bytes look like {fmt} but decode as {im.format}")
        w, h = im.size
        if w * h > config.max_pixels:
            raise Rejected(f"too many pixels: {w}×{h} (possible decompression bomb; "
                           f"limit {config.max_pixels:,})")
        im.load()
    except Rejected:
        raise
    except Image.DecompressionBombError as e:
        raise Rejected(f"too many pixels (decompression bomb): {e}") from e
    except UnidentifiedImageError as e:
        raise Rejected(f"corrupt image: {fmt} signature but Pillow cannot decode it") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e) or type(e).__name__
        if "truncated" in msg.lower() or isinstance(e, EOFError):
            raise Rejected(f"truncated image ({msg})") from e
        raise Rejected(f"corrupt image ({msg})") from e
    rgb = normalise(im)
    if min(rgb.size) < config.min_side:
        raise Rejected(f"too small: {rgb.width}×{rgb.height} (minimum side {config.min_side} px)")
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=config.jpeg_quality)
    jpeg = buf.getvalue()
    return DecodedImage(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        source_sha256=hashlib.sha256(body).hexdigest(),
        phash=int(str(imagehash.phash(rgb)), 16),
        width=rgb.width,
        height=rgb.height,
        source_format=fmt,
    )


from .known import FetchLog, KnownImages, Match  # noqa: E402,F401  (re-exported: dedupe + resume)
