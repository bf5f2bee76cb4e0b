"""`gankit serve`: one small HTTP server (the standard library's) for gankit's pages: the sampler
page of an export, and the live report of a run (with the run's sampler page under /sampler/).

It serves generated pages (routes) and folders mounted at URL prefixes, read-only, with the MIME types browsers insist on
(`.wasm`, `.mjs`); pages cannot fetch wasm from `file://`. A request that would leave its folder
(`..`, an absolute path, a symlink pointing out) is refused with 403; folders are not listed.
It binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import html
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from ..console import warn
from ..errors import GankitError
from ..runfolder import RunFolder
from .upload import MAX_BYTES as MAX_BODY  # the largest request body read: an upload

MIME = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm", ".onnx": "application/octet-stream", ".json": "application/json",
    ".safetensors": "application/octet-stream", ".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif",
    ".svg": "image/svg+xml", ".css": "text/css; charset=utf-8", ".jsonl": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8", ".map": "application/json",
}


def resolve_inside(root: Path, url_path: str) -> Path | None:
    """The file under `root` that `url_path` (relative to the mount) names, or None when the
    request would leave `root`: a `..` part, an absolute path, a backslash, or a symlink out."""
    path = unquote(url_path)
    if "\0" in path or "\\" in path:
        return None
    rel = path[1:] if path.startswith("/") else path
    if rel.startswith("/") or any(part == ".." for part in rel.split("/")):
        return None
    base = root.resolve()
    target = (base / rel).resolve()
    if target.is_dir():
        target = (target / "index.html").resolve()  # resolved again: it may be a link too
    if not target.is_relative_to(base):
        return None
    return target


class _Handler(BaseHTTPRequestHandler):
    server: GankitServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def do_POST(self) -> None:  # noqa: N802
        url, _, query = self.path.partition("?")
        api = self.server.api.get(url)
        if api is None:
            self._plain(HTTPStatus.NOT_FOUND if url not in self.server.routes else HTTPStatus.METHOD_NOT_ALLOWED, "not found", True)
            self.close_connection = True
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "upload: send a Content-Length"}, close=True)
        elif int(length) > MAX_BODY:  # refused; read and dropped when not huge, so that the client hears why
            left = int(length) if int(length) <= DRAIN_UP_TO else 0
            while left > 0 and (chunk := self.rfile.read(min(left, 1 << 20))):
                left -= len(chunk)
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"upload: {length} bytes, more than the {MAX_BODY >> 20} MiB allowed"}, close=True)
        else:
            self._api(api, "POST", query, self.rfile.read(int(length)))

    def _api(self, api: Callable, method: str, query: str, body: bytes | None) -> None:
        from urllib.parse import parse_qs

        try:
            status, answer = api(method, {k: v[-1] for k, v in parse_qs(query).items()}, body)
        except GankitError as e:
            status, answer = getattr(e, "status", 400), {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}
        self._json(HTTPStatus(status), answer)

    def _json(self, status: HTTPStatus, answer: dict, close: bool = False) -> None:
        import json

        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", MIME[".json"])
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, send_body: bool) -> None:
        url = self.path.split("?", 1)[0].split("#", 1)[0]  # not urlsplit: it reads //x/y as a host
        if (api := self.server.api.get(url)) is not None and send_body:
            self._api(api, "GET", self.path.split("?", 1)[1] if "?" in self.path else "", None)
            return
        if url != "/" and url + "/" in self.server.routes:  # /sampler -> /sampler/ while it is a route
            self._redirect(url + "/")
            return
        if (route := self.server.routes.get(url)) is not None:
            try:
                body, mime = route()
            except Exception as e:  # noqa: BLE001 - a page that cannot be made is a 500 with the reason, not a dead server
                self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(e).__name__}: {e}", send_body)
                return
            self._bytes(body, mime, send_body)
            return
        for prefix, root in self.server.mounts:
            if url == prefix.rstrip("/") and prefix != "/":  # /sampler -> /sampler/
                self._redirect(prefix)
                return
            if url.startswith(prefix):
                target = resolve_inside(root, url[len(prefix) - 1:])
                if target is None:
                    self._plain(HTTPStatus.FORBIDDEN, "outside the served folder", send_body)
                elif not target.is_file():
                    self._plain(HTTPStatus.NOT_FOUND, "not found", send_body)
                else:
                    self._file(target, send_body)
                return
        if self.server.home and url == "/":
            self._redirect(self.server.home)
            return
        self._plain(HTTPStatus.NOT_FOUND, "not found", send_body)

    def _file(self, path: Path, send_body: bool) -> None:
        self._bytes(path.read_bytes(), MIME.get(path.suffix.lower(), "application/octet-stream"), send_body)

    def _bytes(self, body: bytes, mime: str, send_body: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a live run's files change
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _plain(self, status: HTTPStatus, text: str, send_body: bool) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _redirect(self, where: str) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: one line per request is noise
        pass


def _no_projection(method: str, query: dict[str, str], body: bytes | None) -> tuple[int, dict]:
    why = "this server does not project images (gankit serve does, when it listens on loopback)"
    return (200, {"available": False, "why": why}) if method == "GET" else (404, {"error": why})


class GankitServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mounts: dict[str, Path], host: str, port: int, home: str | None = None,
                 routes: dict[str, Callable[[], tuple[bytes, str]]] | None = None):
        # longest prefix first, so /sampler/ wins over /
        self.mounts = sorted(((p if p.endswith("/") else p + "/", Path(f)) for p, f in mounts.items()), key=lambda m: -len(m[0]))
        self.home = home
        self.routes = dict(routes or {})  # exact paths answered by a function: (body, MIME type)
        # exact paths answered with JSON: (method, query, body) -> (status, object); the sampler page asks
        # /api/project whether it may offer projection (`projection_api` installs the real one)
        self.api: dict[str, Callable] = {"/api/project": _no_projection}
        super().__init__((host, port), _Handler)

    preparing: threading.Thread | None = None  # the sampler's background export (`run_server`)

    def mount(self, prefix: str, folder: Path) -> None:
        """Serve `folder` under `prefix` from now on (the list is replaced whole: handlers read it unlocked)."""
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.mounts = sorted([*self.mounts, (prefix, Path(folder))], key=lambda m: -len(m[0]))

    def handle_error(self, request: object, client_address: tuple) -> None:
        """One line instead of a traceback: a browser that drops a connection mid-download is routine."""
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            warn(f"serve: {client_address[0]}:{client_address[1]} closed the connection mid-answer ({type(e).__name__}); still serving")
        else:
            warn(f"serve: a request from {client_address[0]}:{client_address[1]} failed ({type(e).__name__}: {e}); still serving")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serve from a background thread (tests, benchmarks); stop with `shutdown()`."""
        t = threading.Thread(target=self.serve_forever, name="gankit-serve", daemon=True)
        t.start()
        return t


LOOPBACK = ("127.0.0.1", "::1", "localhost")
DRAIN_UP_TO = 8 * MAX_BODY  # a refused body up to this size is read (and dropped) before the answer


def projection_api(server: GankitServer, folder: Callable[[], Path | None], steps: int = 0) -> None:
    """`/api/project` on `server` when it listens on loopback: GET without a query says what it takes; POST an
    image (the file's bytes; `?label=K` for a conditional model) to start its projection into the generator
    exported in `folder()` (None while it is being prepared); GET `?id=ID` for its progress and result.
    `steps`: of each projection (default `web.upload.STEPS`)."""
    from .upload import MAX_BYTES, MAX_PIXELS, STEPS, Busy, ProjectionJobs

    if server.server_address[0] not in LOOPBACK:
        return
    holder: dict[str, ProjectionJobs] = {}

    def jobs() -> ProjectionJobs:
        f = folder()
        if f is None:
            raise Busy("upload: the sampler is being prepared; try again in a moment")
        if "jobs" not in holder:
            holder["jobs"] = ProjectionJobs(f, steps or STEPS)
        return holder["jobs"]

    def api(method: str, query: dict[str, str], body: bytes | None) -> tuple[int, dict]:
        if method == "POST":
            return 202, {"id": jobs().submit(body or b"", query.get("label"))}
        if "id" in query:
            return 200, jobs().status(query["id"])
        return 200, {"available": True, "max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS, "steps": steps or STEPS}

    server.api["/api/project"] = api


def make_server(mounts: dict[str, Path], host: str = "127.0.0.1", port: int = 0, home: str | None = None,
                routes: dict[str, Callable[[], tuple[bytes, str]]] | None = None) -> GankitServer:
    try:
        return GankitServer(mounts, host, port, home, routes)
    except OSError as e:
        raise GankitError(f"--port: cannot listen on {host}:{port} ({e.strerror or e})") from None


def sampler_folder(target: Path, device: str = "cpu") -> Path:
    """The web export to serve for `target`: itself when it is one; for a run folder, its `sampler/`
    folder, exported (again) when missing or older than the run's newest checkpoint."""
    from ..artefact.export import export
    from ..artefact.exported import is_export
    from ..checkpoint import list_checkpoints

    if is_export(target):
        if not (target / "index.html").is_file() or not (target / "generator.onnx").is_file():
            raise GankitError(f"{target}: an export without the sampler page; make one with "
                              f"`gankit export RUN --format web --out DIR`")
        return target
    ckpts = list_checkpoints(RunFolder(target).checkpoints)
    if not ckpts:
        raise GankitError(f"{target}: neither an export folder (no generator.json) nor a run folder with checkpoints")
    out = RunFolder(target).sampler
    meta = out / "generator.json"
    from ..artefact.export import PAGE_FILES

    stale = not meta.is_file() or any(not (out / f).is_file() for f in PAGE_FILES) or meta.stat().st_mtime < ckpts[0].stat().st_mtime
    if stale:  # also a page exported by an older gankit, without a file the page now needs
        export(target, "web", out, device)
    return out


def live_routes(run: Path) -> dict[str, Callable[[], tuple[bytes, str]]]:
    """The live report of run folder `run`: `/` (rebuilt when the run's files change) and `/live.json`
    (the stamp the page polls to know when to reload)."""
    import json

    from ..analysis.report import build_report, live_stamp

    cache: dict[str, object] = {"stamp": None, "body": b""}
    lock = threading.Lock()

    def report() -> tuple[bytes, str]:
        with lock:
            stamp = live_stamp(run)
            if stamp != cache["stamp"]:
                cache["body"], cache["stamp"] = build_report(run, live=True).encode(), stamp
            return cache["body"], MIME[".html"]  # type: ignore[return-value]

    def stamp() -> tuple[bytes, str]:
        return json.dumps({"stamp": live_stamp(run)}).encode(), MIME[".json"]

    return {"/": report, "/report.html": report, "/live.json": stamp}


PREPARING = ("<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">"
             "<title>preparing the sampler</title></head><body><p>preparing the sampler: exporting the run's newest "
             "checkpoint to ONNX (once per checkpoint; this page reloads itself)</p></body></html>")


def run_server(run: Path, host: str = "127.0.0.1", port: int = 0,
               on_ready: Callable[[str], None] | None = None) -> GankitServer:
    """The server of a run folder: the live report at /, at once; the sampler page at /sampler/ when
    the run has a checkpoint and onnxruntime-web is installed. The sampler is exported in the
    background (once per checkpoint: kept while newer than the newest); until it is ready /sampler/
    says so and reloads itself, and if it cannot be made it says why. `on_ready(url)` is called once
    the sampler page is served."""
    from ..checkpoint import list_checkpoints

    server = make_server({}, host, port, routes=live_routes(run))
    if not list_checkpoints(RunFolder(run).checkpoints):
        return server

    def prepare() -> None:
        try:
            folder = sampler_folder(run)
        except Exception as e:  # noqa: BLE001 - the page says why; the report keeps being served
            reason = f"no sampler page: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            server.routes["/sampler/"] = lambda: (f"<!doctype html><p>{html.escape(reason)}</p>".encode(), MIME[".html"])
            warn(reason)
            return
        server.mount("/sampler/", folder)
        server.routes.pop("/sampler/", None)
        if on_ready is not None:
            on_ready(server.url + "sampler/")

    server.routes["/sampler/"] = lambda: (PREPARING.encode(), MIME[".html"])
    projection_api(server, lambda: next((root for prefix, root in server.mounts if prefix == "/sampler/"), None))
    server.preparing = threading.Thread(target=prepare, name="gankit-sampler-export", daemon=True)
    server.preparing.start()
    return server
