"""Serving the browser demo: the static page (``web/``) and an export folder, on 127.0.0.1.

URL layout (one origin, so no CORS)::

    /                 web/index.html, demo.js, zspace.js, share.js, style.css
    /node_modules/... onnxruntime-web's JavaScript and WebAssembly (from ``npm ci`` in web/)
    /export/...       the export folder of tools/export_weights.py (demo.json, generator.onnx, tags.json)

Every response carries the cross-origin-isolation headers (COOP/COEP), which let the page's
WebAssembly use threads; ``.mjs`` and ``.wasm`` get the MIME types browsers insist on.
"""
import functools
import http
import http.server
import ipaddress
import os
import posixpath
import shutil
import threading
import urllib.parse

from chainer_dcgan.export import ExportError, read_demo_manifest
from chainer_dcgan.utils.atomic import atomic_write

__all__ = ["WebDemoError", "find_web_dir", "DemoServer", "ORT_DIST", "CHROMIUM_ARGS", "find_chromium",
           "launch_chromium", "screenshot"]

#: Where the page imports onnxruntime-web from, relative to the web folder.
ORT_DIST = os.path.join("node_modules", "onnxruntime-web", "dist")
_EXPORT_PREFIX = "/export/"
_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
          ".json": "application/json", ".onnx": "application/octet-stream", ".css": "text/css",
          ".html": "text/html; charset=utf-8", ".map": "application/json"}


#: Headless Chromium for tests and benchmarks: no GPU, no sandbox (root in CI), no network of its own.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


class WebDemoError(RuntimeError):
    """The page or export cannot be served (missing folder, ``npm ci`` not run, bad export)."""


def find_chromium():
    """Path of the system's Chromium (Debian's ``chromium`` package), or None."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.isfile("/usr/bin/chromium") else None


def launch_chromium(playwright, executable_path=None):
    """Start headless system Chromium with Playwright (``sync_playwright()`` object); returns the Browser.

    Playwright's own browser download is not used: ``executable_path`` (default :func:`find_chromium`).

    Raises:
        WebDemoError: no Chromium is installed.
    """
    path = executable_path or find_chromium()
    if path is None:
        raise WebDemoError("Chromium is not installed (Debian: apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))


def find_web_dir(web_dir=None):
    """The demo's static folder: ``web_dir``, or ``web/`` beside the package in a source checkout.

    Raises:
        WebDemoError: the folder has no ``index.html``, or onnxruntime-web is not installed in it.
    """
    if web_dir is None:
        web_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "web")
    web_dir = os.path.abspath(web_dir)
    if not os.path.isfile(os.path.join(web_dir, "index.html")):
        raise WebDemoError("{}: no index.html; pass the demo's web folder (web/ of the source checkout)".format(
            web_dir))
    if not os.path.isfile(os.path.join(web_dir, ORT_DIST, "ort.wasm.min.mjs")):
        raise WebDemoError("{}: onnxruntime-web is not installed; run `npm ci` in that folder "
                           "(or `make venv`)".format(web_dir))
    return web_dir


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map, **_TYPES)

    def __init__(self, *args, web_dir, export_dir, **kwargs):
        self.web_dir = web_dir
        self.export_dir = export_dir
        super().__init__(*args, directory=web_dir, **kwargs)

    def translate_path(self, path):
        """The file a URL path names, or None: only a regular file whose real path (links resolved)
        lies inside the export folder (``/export/...``) or the page's folder or its ``node_modules``
        (which ``npm ci``, or the checkout's owner, may have made a link); never a folder."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        if "\x00" in path:
            raise ValueError("a NUL byte in the path")
        if path == "/":
            path = "/index.html"
        roots = [self.web_dir, os.path.join(self.web_dir, "node_modules")]
        if path.startswith(_EXPORT_PREFIX):
            roots, path = [self.export_dir], path[len(_EXPORT_PREFIX) - 1:]
        parts = [p for p in posixpath.normpath(path).split("/") if p not in ("", ".", "..")]
        if not parts or path.endswith("/"):
            return None
        real = os.path.realpath(os.path.join(roots[0], *parts))
        inside = any(real.startswith(os.path.realpath(root) + os.sep) for root in roots)
        return real if inside and os.path.isfile(real) else None

    def host_allowed(self):
        """Whether the request's Host header names this server: ``localhost``, a loopback address or
        the bound address (any IP address when bound to all of them), with the bound port. A page on
        another site that re-points its own name at 127.0.0.1 (DNS rebinding) sends its own name, and
        is refused. A request without Host (HTTP/1.0) is not from a browser and is answered."""
        header = self.headers.get("Host")
        if header is None:
            return True
        bound, port = self.server.server_address[:2]
        try:
            parsed = urllib.parse.urlsplit("//" + header.strip())
            name, given_port = parsed.hostname, parsed.port
        except ValueError:
            return False
        if name is None or given_port != port:
            return False
        if name == "localhost":
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False  # a DNS name: only localhost is ours
        if address.is_loopback or str(address) == bound:
            return True
        return ipaddress.ip_address(bound).is_unspecified

    def send_head(self):
        if not self.host_allowed():
            self.send_error(http.HTTPStatus.MISDIRECTED_REQUEST, "Unknown host")
            return None
        try:
            path = self.translate_path(self.path)
        except ValueError:
            self.send_error(http.HTTPStatus.BAD_REQUEST, "Bad path")
            return None
        if path is None:
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            size = os.fstat(f.fileno()).st_size
            self.send_response(http.HTTPStatus.OK)
            self.send_header("Content-type", self.guess_type(path))
            self.send_header("Content-Length", str(size))
            self.end_headers()
        except BaseException:
            f.close()
            raise
        return f

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def copyfile(self, source, outputfile):
        # The weights are tens of MB: let the kernel copy them.
        try:
            self.connection.sendfile(source)
        except (AttributeError, OSError, ValueError):
            super().copyfile(source, outputfile)

    def log_message(self, format, *args):  # the library never prints; DemoServer.log may
        if self.server.log is not None:
            self.server.log("{} - {}".format(self.address_string(), format % args))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    log = None


class DemoServer:
    """The demo on ``http://host:port/`` (port 0 picks a free one; see :attr:`url`).

    Use as a context manager (serves from a background thread) or call :meth:`serve_forever`.

    Args:
        export_dir (str): an export folder (must hold ``demo.json``).
        web_dir (str or None): the static page folder (see :func:`find_web_dir`).
        host (str): the address to bind: the loopback one by default.
        port (int): 0 for any free port.
        log (callable or None): receives one line per request.

    Raises:
        WebDemoError: the folders are not servable.
    """

    def __init__(self, export_dir, web_dir=None, host="127.0.0.1", port=0, log=None):
        self.web_dir = find_web_dir(web_dir)
        self.export_dir = os.path.abspath(export_dir)
        try:
            self.manifest = read_demo_manifest(self.export_dir)
        except ExportError as e:
            raise WebDemoError(str(e)) from None
        handler = functools.partial(_Handler, web_dir=self.web_dir, export_dir=self.export_dir)
        try:
            self._server = _Server((host, port), handler)
        except OSError as e:
            raise WebDemoError("cannot listen on {}:{}: {}".format(host, port, e)) from None
        self._server.log = log
        self._thread = None

    @property
    def url(self):
        """``http://host:port/``: the page."""
        host, port = self._server.server_address[:2]
        return "http://{}:{}/".format(host, port)

    def serve_forever(self):
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="dcgan-demo", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def screenshot(url, path, width=900, height=640, timeout_ms=60000):
    """Load the demo page at ``url`` in headless Chromium, wait until it has drawn, save a PNG to ``path``.

    Raises:
        WebDemoError: no Chromium or Playwright, or the page reports an error or does not get ready.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise WebDemoError("screenshots need playwright (pip install playwright)") from None
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function("window.dcganDemo && dcganDemo.drawn > 0", timeout=timeout_ms)
            if errors:
                raise WebDemoError("the page reported: {}".format(errors[0]))
            png = page.screenshot(full_page=True)
        except PlaywrightError as e:
            raise WebDemoError("the page did not get ready: {}".format(str(e).splitlines()[0])) from None
        finally:
            browser.close()
    with atomic_write(path) as f:
        f.write(png)
