"""Result downloads: no credentials, allow-listed hosts only, fresh URLs on expiry, truncation and size caps.

Client-level cases run against the emulator's signed file route. Redirect and
header cases use a tiny loopback file server defined here, driven through the
:class:`Downloader` directly with an allow list naming it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import data_url, fast_client, make_png

from scenario_api import Asset, ControlNetRequest, DownloadError
from scenario_api.downloads import Downloader, DownloadRefusedError, HostPolicy, TruncatedDownloadError
from scenario_api.imaging import decode_image

DEMO = "asset_demo_canny"


_client = fast_client


def _file_gets(emulator) -> list[dict]:
    return emulator.requests("GET", "/cdn/*")


# --------------------------------------------------------------------------- against the emulator


async def test_download_sends_no_credentials(emulator, settings):
    async with _client(settings) as client:
        data = await client.download_asset(DEMO)
    assert decode_image(data).rgb.shape == (512, 512, 3)
    (lookup,) = emulator.requests("GET", f"/v1/assets/{DEMO}")
    assert lookup["auth_header_present"] and lookup["auth_ok"]
    (get,) = _file_gets(emulator)
    assert get["status"] == 200 and get["auth_header_present"] is False


async def test_disallowed_host_is_refused_before_any_request(emulator, settings):
    evil = Asset(asset_id="asset_evil", url="https://evil.example.com/assets/x.png?Signature=abc")
    async with _client(settings) as client:
        with pytest.raises(DownloadRefusedError) as info:
            await client.download_asset(evil)
    text = str(info.value)
    assert "evil.example.com" in text and "cdn.cloud.scenario.com" in text and settings.api_host in text
    assert emulator.log() == []


@pytest.mark.parametrize(
    "url, phrase",
    [
        ("http://cdn.cloud.scenario.com/assets/x.png", "plain-http"),
        ("ftp://cdn.cloud.scenario.com/assets/x.png", "only http(s)"),
        ("https://user:pw@cdn.cloud.scenario.com/x.png", "embedded credentials"),
        ("https://cdn.cloud.scenario.com.evil.net/x.png", "allowed hosts are"),
        ("https://cdn.cloud.scenario.com:8443/x.png", "allowed hosts are"),
    ],
)
def test_host_policy_rules(url, phrase):
    policy = HostPolicy(("cdn.cloud.scenario.com", "127.0.0.1:9"), api_host="127.0.0.1:9")
    with pytest.raises(DownloadRefusedError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        policy.check(url)
    policy.check("https://cdn.cloud.scenario.com/assets/x.png")
    policy.check("http://127.0.0.1:9/cdn/assets/x.png")


async def test_expired_url_gets_a_fresh_one_and_succeeds(emulator, settings):
    emulator.fault(target="GET /cdn/*", kind="expired_url")
    async with _client(settings) as client:
        data = await client.download_asset(DEMO)
    assert decode_image(data).width == 512
    assert [e["status"] for e in _file_gets(emulator)] == [403, 200]
    assert len(emulator.requests("GET", f"/v1/assets/{DEMO}")) == 2  # re-fetched for a fresh URL


async def test_stale_asset_object_is_refreshed(emulator, settings):
    async with _client(settings) as client:
        asset = await client.get_asset(DEMO)
        emulator.fault(target="GET /cdn/*", kind="expired_url")
        data = await client.download_asset(asset)
    assert data.startswith(b"\x89PNG")
    assert [e["status"] for e in _file_gets(emulator)] == [403, 200]


async def test_truncated_download_is_retried(emulator, settings):
    emulator.fault(target="GET /cdn/*", kind="truncated_download")
    async with _client(settings) as client:
        data = await client.download_asset(DEMO)
    decode_image(data)  # complete and decodable
    gets = _file_gets(emulator)
    assert len(gets) == 2 and gets[0].get("fault") == "truncated_download"


async def test_persistent_expiry_gives_up_with_download_error(emulator, settings):
    emulator.fault(target="GET /cdn/*", kind="expired_url", count=10)
    async with _client(settings, download_attempts=2) as client:
        with pytest.raises(DownloadError, match="after 2 attempts"):
            await client.download_asset(DEMO)
    assert len(_file_gets(emulator)) == 2


async def test_size_cap_is_enforced_without_retry(emulator, settings):
    async with _client(settings, max_download_bytes=1000) as client:
        with pytest.raises(DownloadRefusedError, match="1000-byte download limit"):
            await client.download_asset(DEMO)
    assert len(_file_gets(emulator)) == 1


async def test_generate_downloads_every_sample_in_order(emulator, settings):
    request = ControlNetRequest(
        prompt="three samples", control_image=data_url(make_png(64, 64)), num_samples=3, width=128, height=96, seed=7
    )
    async with _client(settings) as client:
        job, images = await client.generate(request)
        one_by_one = [await client.download_asset(a) for a in job.asset_ids]
    assert len(job.asset_ids) == 3 and images == one_by_one
    assert len({bytes(i) for i in images}) == 3
    assert all(decode_image(i).rgb.shape == (96, 128, 3) for i in images)


# --------------------------------------------------------------------------- local file server


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client hanging up early is expected here
        pass


class _FileServer:
    """Loopback server with scripted answers per path; records request headers."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                outer.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = outer.routes.get(self.path.split("?")[0], (404, {}, b"missing"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Transfer-Encoding" not in headers and "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if headers.get("Transfer-Encoding") == "chunked":
                    for i in range(0, len(body), 1000):
                        part = body[i : i + 1000]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.netloc = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.netloc}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files() -> Iterator[_FileServer]:
    server = _FileServer()
    yield server
    server.close()


def _downloader(files: _FileServer, **kw) -> Downloader:
    return Downloader(HostPolicy(("cdn.cloud.scenario.com", files.netloc)), **kw)


async def test_downloader_sends_only_neutral_headers(files):
    files.routes["/a.png"] = (200, {"Content-Type": "image/png"}, b"\x89PNG data")
    downloader = _downloader(files)
    try:
        assert await downloader.fetch(files.url("/a.png?Signature=s")) == b"\x89PNG data"
    finally:
        await downloader.aclose()
    ((_, headers),) = files.seen
    assert "authorization" not in headers and "cookie" not in headers
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"].startswith("scenario-comfyui/")


async def test_redirects_are_followed_within_the_allow_list(files):
    files.routes["/one"] = (302, {"Location": "/two"}, b"")
    files.routes["/two"] = (307, {"Location": files.url("/final.png")}, b"")
    files.routes["/final.png"] = (200, {}, b"done")
    downloader = _downloader(files)
    try:
        assert await downloader.fetch(files.url("/one")) == b"done"
    finally:
        await downloader.aclose()
    assert [p for p, _ in files.seen] == ["/one", "/two", "/final.png"]


async def test_redirect_to_a_disallowed_host_is_refused(files):
    files.routes["/jump"] = (302, {"Location": "https://evil.example.com/steal.png"}, b"")
    downloader = _downloader(files)
    try:
        with pytest.raises(DownloadRefusedError, match="evil.example.com"):
            await downloader.fetch(files.url("/jump"))
    finally:
        await downloader.aclose()
    assert [p for p, _ in files.seen] == ["/jump"]


async def test_more_than_two_redirects_are_refused(files):
    for i in range(4):
        files.routes[f"/r{i}"] = (302, {"Location": f"/r{i + 1}"}, b"")
    downloader = _downloader(files)
    try:
        with pytest.raises(DownloadRefusedError, match="more than 2"):
            await downloader.fetch(files.url("/r0"))
    finally:
        await downloader.aclose()
    assert len(files.seen) == 3


async def test_size_cap_applies_while_streaming_without_content_length(files):
    files.routes["/big"] = (200, {"Transfer-Encoding": "chunked"}, b"x" * 5000)
    files.routes["/small"] = (200, {"Transfer-Encoding": "chunked"}, b"y" * 1500)
    downloader = _downloader(files, max_bytes=2000)
    try:
        with pytest.raises(DownloadRefusedError, match="exceeded"):
            await downloader.fetch(files.url("/big"))
        assert await downloader.fetch(files.url("/small")) == b"y" * 1500
    finally:
        await downloader.aclose()


async def test_compressed_bodies_are_refused(files):
    files.routes["/gz"] = (200, {"Content-Encoding": "gzip"}, gzip.compress(b"zzz"))
    downloader = _downloader(files)
    try:
        with pytest.raises(DownloadError, match="identity"):
            await downloader.fetch(files.url("/gz"))
    finally:
        await downloader.aclose()


async def test_short_body_is_reported_as_truncated(files):
    files.routes["/short"] = (200, {"Content-Length": "100", "Connection": "close"}, b"only ten b")
    downloader = _downloader(files)
    try:
        with pytest.raises(TruncatedDownloadError):
            await downloader.fetch(files.url("/short"))
    finally:
        await downloader.aclose()
