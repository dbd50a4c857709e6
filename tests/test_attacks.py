"""The attacks of issue 14, each against a real two-worker Gunicorn while a prober checks that a
normal upload sent every 0.25 s is answered right within 1.5 s, and that no worker dies.

Each attack gets a 4xx JSON answer (or a timely close where HTTP allows no answer), with variants
of each, not only one spelling. docs/reliability.md has a row for each.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from helpers import Prober, closed_within, connect, encode, multipart, post_upload, read_response, repeat_for, upload_head
from PIL import Image

from bench.harness import free_port, gunicorn, gunicorn_command, serving
from mnist_flask.server import WsgiBridge

CHUNKED_HEAD = upload_head("image/png", "Transfer-Encoding: chunked")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """A Gunicorn of its own, so that its workers' pids and access log belong to these attacks."""
    with gunicorn(tmp_path_factory.mktemp("attacks") / "gunicorn.log") as server:
        yield server


@pytest.fixture
def prober(target, mnist_test):
    return Prober(target, encode(mnist_test[0][3]), int(mnist_test[1][3]))


def json_error(connection, status: int) -> str:
    """Read one answer: it must be ``status`` with a JSON error, and the connection then closed."""
    got, headers, body = read_response(connection.makefile("rb"))
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert closed_within(connection, 2)
    return json.loads(body)["error"]


def attack_all(target, requests_bytes: list[bytes], status: int, connections: int = 4) -> list[str]:
    """Send each request on ``connections`` connections at once; each must get ``status`` as JSON.
    A server that refuses a request before its end may close before the rest is sent: the answer
    is read all the same."""
    errors = []
    for request in requests_bytes:
        opened = [connect(target, timeout=5) for _ in range(connections)]
        try:
            for connection in opened:
                try:
                    connection.sendall(request)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            errors += [json_error(connection, status) for connection in opened]
        finally:
            for connection in opened:
                connection.close()
    return errors


def logged_statuses(target) -> list[int]:
    return [json.loads(line)["status"] for line in target.access_log().splitlines() if line.startswith("{")]


# Row 1: a negative (or signed, or otherwise impossible) chunk size right after the head.
NEGATIVE_SIZES = [b"-6", b"-1", b"-0", b"-ffffffff", b"-6;ext=1", b"- 6", b"+6", b"--6"]


def test_negative_chunk_sizes_are_refused(target, prober):
    errors = []
    with prober:
        for _ in repeat_for(2.5):
            errors += attack_all(target, [CHUNKED_HEAD + size + b"\r\nhello!\r\n" for size in NEGATIVE_SIZES], 400)
    prober.assert_served()
    assert all("malformed HTTP request" in error for error in errors)


# Row 7: malformed chunk sizes and chunk framing in the body.
MALFORMED_CHUNKS = [
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"+5\r\nhello\r\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",  # a bare LF after the size
    b"5\r\nhello\n0\r\n\r\n",  # a bare LF after the data
    b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the data
    b"5 5\r\nhello\r\n0\r\n\r\n",
    b"g\r\nhello\r\n0\r\n\r\n",
    b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",  # over 64 bits
    b"\r\nhello\r\n0\r\n\r\n",  # no size at all
]


def test_malformed_chunked_bodies_get_400_not_500(target, prober):
    errors = []
    with prober:
        for _ in repeat_for(2.5):
            errors += attack_all(target, [CHUNKED_HEAD + body for body in MALFORMED_CHUNKS], 400, connections=2)
    prober.assert_served()
    assert all("malformed HTTP request" in error for error in errors)
    assert 500 not in logged_statuses(target)


# Row 2: Content-Length values no integer parser should be handed blindly.
BAD_LENGTHS = [b"9" * 4300, b"1" * 5000, b"99999999999999999999", b"-5", b"+5", b"5 5", b"0x10", b"5,5", b"", b"1e3"]


def test_absurd_content_lengths_are_refused(target, prober):
    head = b"POST /prediction HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: %s\r\n\r\nhello"
    errors = []
    with prober:
        for _ in repeat_for(3):  # repeated every 0.1 s
            for length in BAD_LENGTHS:
                errors += attack_all(target, [head % length], 400, connections=1)
            time.sleep(0.1)
        # leading zeros are still a number: 4,400 of them and a 5 frame a 5-byte body, read as such
        with connect(target) as connection:
            connection.sendall(head % (b"0" * 4400 + b"5"))
            status, _, body = read_response(connection.makefile("rb"))
    prober.assert_served()
    assert all("malformed HTTP request" in error for error in errors)
    assert status == 400 and "not an image" in json.loads(body)["error"]


def chunked(body: bytes, size: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)) + b"0\r\n\r\n"


def test_bodies_of_tiny_chunks_are_refused(target, prober, mnist_test):
    """Row 3: 80,000 one-byte chunks (480 KB), four at once, and an 8 MiB body of them: 400 at once."""
    content_type, body = multipart(encode(mnist_test[0][4]))
    head = upload_head(content_type, "Transfer-Encoding: chunked")
    padded = body[:-2] + b"\r\n" + b"x" * 80_000  # the upload, then 80,000 bytes of trailing junk
    variants = [head + chunked(padded, 1), head + chunked(padded, 3),
                head + b"".join(b"1;e=%d\r\nx\r\n" % i for i in range(80_000)) + b"0\r\n\r\n"]  # fmt: skip
    errors = []
    with prober:
        for _ in repeat_for(2.5):
            started = time.monotonic()
            errors += attack_all(target, variants, 400)
            took = time.monotonic() - started
        with connect(target) as connection:  # 8 MiB of one-byte chunks: refused long before its end
            connection.sendall(CHUNKED_HEAD)
            try:
                for _ in range(8):
                    connection.sendall(b"1\r\nx\r\n" * (1024 * 1024 // 6))
            except (BrokenPipeError, ConnectionResetError):
                pass
            errors.append(json_error(connection, 400))
    prober.assert_served()
    assert all("too many small chunks" in error for error in errors)
    assert took < 10
    # chunks of a reasonable size still work, however many
    ordinary = requests.post(target.url + "/prediction", data=(body[i : i + 64] for i in range(0, len(body), 64)),
                             headers={"Content-Type": content_type}, timeout=10)  # fmt: skip
    assert ordinary.status_code == 200 and ordinary.json()["prediction"] == mnist_test[1][4]


def jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each marker segment of a JPEG; a scan runs to the next marker."""
    position, found = 2, []
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xD9:
            return found + [(position, position + 2)]
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:  # the coded data: 0xFF is followed by 0x00 or a restart marker until the next marker
            while data[(end := data.index(b"\xff", end)) + 1] in (0, *range(0xD0, 0xD8)):
                end += 2
        found.append((position, end))
        position = end
    return found


def scan_bomb(side: int, scans: int, mode: str = "L", exif: bool = False, tables_between: bool = False) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans``: each one walks every block."""
    buffer = io.BytesIO()
    extra = {"exif": Image.Exif().tobytes()} if exif else {}
    Image.new(mode, (side, side), 128 if mode == "L" else (128, 64, 32)).save(buffer, "JPEG", progressive=True, **extra)
    data = buffer.getvalue()
    segments = jpeg_segments(data)
    tables = b"".join(data[s:e] for s, e in segments if data[s + 1] == 0xC4) if tables_between else b""
    last = max((s, e) for s, e in segments if data[s + 1] == 0xDA)
    present = sum(data[s + 1] == 0xDA for s, e in segments)
    return data[: last[1]] + (tables + data[last[0] : last[1]]) * (scans - present) + b"\xff\xd9"


SCAN_BOMBS = {
    "1000 scans, 5000x5000 grey (the issue's)": lambda: scan_bomb(5000, 1000),
    "1000 scans, colour": lambda: scan_bomb(3000, 1000, "RGB"),
    "1000 scans, with EXIF (Pillow's path)": lambda: scan_bomb(3000, 1000, exif=True),
    "300 scans, Huffman tables between them": lambda: scan_bomb(2000, 300, tables_between=True),
    "40 scans, small picture (over the count)": lambda: scan_bomb(500, 40),
    "12 scans at 25 megapixels (over the scans x pixels budget)": lambda: scan_bomb(5000, 12),
}


def test_jpeg_scan_bombs_are_refused_before_decoding(target, prober):
    """Row 4: four at once of each, refused from a count of the scans, before any is decoded."""
    bombs = {name: make() for name, make in SCAN_BOMBS.items()}
    with prober, ThreadPoolExecutor(4) as pool:
        for _, (name, bomb) in ((round_number, item) for round_number in repeat_for(2.5) for item in bombs.items()):
            post = lambda _: post_upload(target.url, bomb, timeout=30)  # noqa: E731
            started = time.monotonic()
            answers = list(pool.map(post, range(4)))
            assert time.monotonic() - started < 1.5, name
            assert {answer.status_code for answer in answers} == {413}, name
            assert "scans" in answers[0].json()["error"], name
    prober.assert_served()


def test_ordinary_progressive_jpegs_are_read(target, mnist_test):
    page = np.full((1200, 1600, 3), 255, np.uint8)
    page[400:680, 600:880] = 255 - np.kron(mnist_test[0][5], np.ones((10, 10), np.uint8))[..., None]
    for extra in ({"progressive": True}, {"progressive": True, "exif": Image.Exif().tobytes()}):
        data = encode(page, "JPEG", "RGB", **extra)
        response = post_upload(target.url, data)
        assert response.status_code == 200 and response.json()["prediction"] == mnist_test[1][5]


def rle8_bmp(page: np.ndarray) -> bytes:
    """An 8-bit run-length-encoded BMP (Pillow reads these but does not write them)."""
    height, width = page.shape
    rows = []
    for row in page[::-1]:  # bottom-up
        runs = np.flatnonzero(np.diff(row.astype(int))) + 1
        starts, ends = np.concatenate([[0], runs]), np.concatenate([runs, [width]])
        line = bytearray()
        for start, end in zip(starts, ends):
            for offset in range(start, end, 255):
                line += bytes([min(255, end - offset), row[start]])
        rows.append(bytes(line) + b"\0\0")
    pixels = b"".join(rows) + b"\0\1"
    palette = b"".join(bytes([grey, grey, grey, 0]) for grey in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def sixteen_bit_interlaced_png(side: int = 5000) -> bytes:
    """A ~200 KB PNG declaring 5000x5000 16-bit RGBA, Adam7-interlaced, every row Paeth-filtered:
    200 MB to inflate and unfilter if it were decoded."""
    compressor, rows = zlib.compressobj(9), []
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
        width, height = (side - x0 + dx - 1) // dx, (side - y0 + dy - 1) // dy
        row = b"\x04" + b"\0" * (width * 8)
        rows += [compressor.compress(row) for _ in range(height)]
    rows.append(compressor.flush())
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 1))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"".join(rows)) + png_chunk(b"IEND", b"")


def at_the_pixel_limit(shape: str) -> bytes:
    """A 5000x5000 picture (the 25-megapixel limit) in a format's costliest common shape."""
    if shape == "PNG 16-bit RGBA interlaced":
        return sixteen_bit_interlaced_png()
    page = np.full((5000, 5000), 200, np.uint8)
    page[2000:2600, 2000:2600] = 0
    if shape == "BMP":
        return rle8_bmp(page)
    image = Image.fromarray(page)
    buffer = io.BytesIO()
    shapes = {"PNG RGBA": ("PNG", image.convert("RGBA"), {}), "PNG grey": ("PNG", image, {}),
              "GIF": ("GIF", image, {"interlace": True}), "WEBP": ("WEBP", image, {"quality": 50}),
              "TIFF": ("TIFF", image.convert("RGB"), {"compression": "jpeg"})}  # fmt: skip
    format, picture, options = shapes[shape]
    picture.save(buffer, format, **options)
    return buffer.getvalue()


# What each decodes to: up to DECODED_BYTES_BUDGET (40 MiB) it is read, past it refused before decoding.
PIXEL_LIMIT_SHAPES = {"PNG grey": 200, "GIF": 200, "BMP": 200, "PNG RGBA": 413, "PNG 16-bit RGBA interlaced": 413,
                      "WEBP": 413, "TIFF": 413}  # fmt: skip


@pytest.mark.parametrize("shape", PIXEL_LIMIT_SHAPES)
def test_decoding_at_the_pixel_limit_is_bounded(target, prober, shape):
    """Row 4's other formats, sent one after another from four connections at once: what is read
    takes under a second of the server's CPU (measured, not timed, so a busy machine does not fail
    it), what would decode to more bytes than the budget is refused from its header, and the other
    uploads go on being answered meanwhile; anything over the pixel limit is refused too (test_hostile.py)."""
    data, expected = at_the_pixel_limit(shape), PIXEL_LIMIT_SHAPES[shape]
    assert len(data) <= 4 * 1024 * 1024

    def send() -> int:
        return post_upload(target.url, data, timeout=30).status_code

    with prober, ThreadPoolExecutor(4) as pool:
        for _ in repeat_for(2.5):
            cpu_before = target.cpu_seconds()
            statuses = list(pool.map(lambda _: send(), range(4)))
            assert statuses == [expected] * 4
            assert target.cpu_seconds() - cpu_before < 4 * (1.0 if expected == 200 else 0.05)
    prober.assert_served()


def test_slow_readers_of_a_large_asset_hold_nothing(target, prober):
    """Row 5: eight connections pipelining GETs of the Swagger UI bundle (~1.5 MB) and never reading."""
    script = next(path for path in ("/flasgger_static/swagger-ui-bundle.js",) if requests.get(target.url + path, timeout=5).ok)
    size = len(requests.get(target.url + script, timeout=5).content)
    before = target.rss_bytes()
    readers = [connect(target) for _ in range(8)]
    try:
        with prober:
            for connection in readers:
                connection.sendall(f"GET {script} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() * 20)
            time.sleep(4)
        grown = target.rss_bytes() - before
    finally:
        for connection in readers:
            connection.close()
    prober.assert_served(at_least=10)
    assert grown < 8 * size + 64 * 2**20, f"{grown / 2**20:.0f} MiB"  # not 8 x 20 answers held in memory


def test_a_reader_that_never_reads_is_cut_off(tmp_path):
    """Row 5's bound in time: with the answer left unread for GUNICORN_WRITE_TIMEOUT, the connection ends
    (what the kernel had already buffered still arrives, then the end, long before all 20 answers)."""
    script = "/flasgger_static/swagger-ui-bundle.js"
    with gunicorn(tmp_path / "gunicorn.log", env={"GUNICORN_WRITE_TIMEOUT": "2"}) as server:
        size = len(requests.get(server.url + script, timeout=5).content)
        with connect(server) as reader:
            reader.sendall(f"GET {script} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() * 20)
            time.sleep(5)
            received, ended = 0, False
            reader.settimeout(2)
            try:
                while data := reader.recv(1 << 20):
                    received += len(data)
                ended = True
            except ConnectionResetError:
                ended = True
            except TimeoutError:
                pass
    assert ended and received < 20 * size


# Row 6: duplicate, conflicting or malformed framing headers; the second request must never be answered.
FRAMING = [
    b"Content-Length: 5\r\nContent-Length: 5",
    b"Content-Length: 5\r\nContent-Length: 6",
    b"Content-Length: 5\r\nTransfer-Encoding: chunked",
    b"Transfer-Encoding: chunked\r\nContent-Length: 5",
    b"Transfer-Encoding: chunked, gzip",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: xchunked",
    b"Transfer-Encoding : chunked",
    b"Content-Length : 5",
    b"Content-Length: 5\r\n Content-Length: 6",  # an obsolete line folding
    b"Content-Length:\x005",
    b"Content-Length: 5\nX: y",  # a bare LF in the head
]


def test_malformed_framing_headers_get_400_json_and_are_logged(target, prober):
    second = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    requests_bytes = [b"POST /prediction HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + second
                      for headers in FRAMING]  # fmt: skip
    refused_before = logged_statuses(target).count(400)
    errors = []
    with prober:
        for _ in repeat_for(2.5):
            errors += attack_all(target, requests_bytes, 400, connections=2)  # closed: the GET is never answered
    prober.assert_served()
    assert all("malformed HTTP request" in error for error in errors)
    deadline = time.monotonic() + 3
    while logged_statuses(target).count(400) < refused_before + len(errors) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged_statuses(target).count(400) >= refused_before + len(errors)


def test_a_declared_body_that_never_comes_holds_nothing(target, prober, mnist_test):
    """Row 8: ``Content-Length: 9000000`` and no body is refused from the head and the connection closed,
    alone or after a first request; declared bodies under the limit that never come cost a socket."""
    over = upload_head("image/png", "Content-Length: 9000000")
    under = over.replace(b"9000000", b"3000000")
    healthz = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    waiting = []
    try:
        with prober:
            for round_number in range(16):  # one every 0.25 s
                with connect(target) as connection:
                    connection.sendall((healthz if round_number % 2 else b"") + over)
                    stream = connection.makefile("rb")
                    if round_number % 2:
                        assert read_response(stream)[0] == 200
                    status, headers, _ = read_response(stream)
                    assert status == 413 and headers["connection"] == "close"
                    assert closed_within(connection, 1)
                opened = connect(target)
                opened.sendall(under)
                waiting.append(opened)
                time.sleep(0.25)
    finally:
        for connection in waiting:
            connection.close()
    prober.assert_served()


def test_the_buffer_limit_sheds_large_uploads_not_small_ones(target, prober, mnist_test):
    """Row 9: 40 uploads of 3.9 of their 4 MB left unfinished (156 MB for 2 x 64 MiB of buffer):
    the ones past the limit get 503 with Retry-After; small uploads and /healthz all get through."""
    head = upload_head("image/png", "Content-Length: 4000000")
    almost = bytes(3_900_000)
    before = target.rss_bytes()
    hanging, shed = [], []

    def hang() -> None:
        connection = connect(target)
        hanging.append(connection)
        try:
            connection.sendall(head + almost)
        except OSError:
            pass  # refused midway: the 503 came first

    healthz = []
    with prober:
        threads = [threading.Thread(target=hang) for _ in range(40)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join()
        for _ in range(12):
            healthz.append(requests.get(target.url + "/healthz", timeout=5).status_code)
            time.sleep(0.1)
        grown = target.rss_bytes() - before
        for connection in hanging:
            connection.settimeout(0.2)
            try:
                data = connection.recv(65536)
            except OSError:
                continue
            if data:
                shed.append(data)
        for connection in hanging:
            connection.close()
    prober.assert_served()
    assert healthz == [200] * 12
    assert shed and all(b" 503 " in answer.split(b"\r\n", 1)[0] and b"\r\nretry-after: 1\r\n" in answer.lower() for answer in shed)
    assert grown < 2 * 96 * 2**20, f"{grown / 2**20:.0f} MiB"  # 64 MiB a worker, plus buffers' spare room


POOLED = WsgiBridge.INLINE_BYTES + 1  # a body large enough for the pool, when there is one


@pytest.mark.parametrize("threads", [1, 2])
def test_work_stuck_in_a_request_is_seen_and_ended(tmp_path, threads):
    """Inline, the app runs in the thread that sends the worker's heartbeat; in a pool, the heartbeat
    stops once a call has run for ``timeout``. Either way a request stuck in the app silences the
    worker, and Gunicorn's master replaces it while the other worker serves. In a pool the stuck
    worker's loop still accepts connections until the master kills it (SIGKILL), so a probe it
    had just accepted is reset then: one at most."""
    port = free_port()
    command = gunicorn_command(port, 2, "--timeout", "3", "--threads", str(threads), "--graceful-timeout", "1")[:-1] + ["tests.spin_app:app"]
    with serving(command, port, tmp_path / "gunicorn.log") as server:
        workers_before = set(server.wait_for_workers(2))
        started = time.monotonic()
        with connect(server) as stuck:
            body = b"x" * POOLED
            stuck.sendall(b"POST /spin HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            answered, reset = [], 0
            while time.monotonic() - started < 12 and not closed_within(stuck, 0.25):
                try:
                    answered.append(requests.get(server.url + "/", timeout=2).status_code)
                except requests.ConnectionError:
                    reset += 1
            ended = time.monotonic() - started
        deadline = time.monotonic() + 5
        while len(set(server.workers()) - workers_before) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        replaced = set(server.workers()) - workers_before
    # Inline: the timeout, plus the master's once-a-second check and a restart's margin; in the pool
    # the heartbeat goes on for the timeout first.
    assert ended < 3 * (1 if threads == 1 else 2) + 3
    assert answered and set(answered) == {200} and reset <= (0 if threads == 1 else 1)
    assert len(replaced) == 1 and "WORKER TIMEOUT" in server.access_log()


@pytest.mark.parametrize("size, answered", [(POOLED, True), (0, False)], ids=["large-in-pool", "small-inline"])
def test_a_worker_goes_on_answering_beside_a_call_in_its_pool(tmp_path, size, answered):
    """One worker with a pool: while a large request is stuck in a pool thread, the loop still answers
    others; a small request runs inline, and holds the loop while it runs."""
    port = free_port()
    command = gunicorn_command(port, 1, "--timeout", "5", "--threads", "2", "--graceful-timeout", "1")[:-1] + ["tests.spin_app:app"]
    with serving(command, port, tmp_path / "gunicorn.log") as server, connect(server) as stuck:
        stuck.sendall(b"POST /spin HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s" % (size, b"x" * size))
        time.sleep(0.3)
        try:
            statuses = [requests.get(server.url + "/", timeout=1).status_code for _ in range(3)]
        except requests.Timeout:
            statuses = []
    assert (statuses == [200] * 3) == answered


def test_pipelined_requests_never_read_are_cut_off(target, prober):
    """Sixty connections each pipelining ~39,000 GETs (700 KB) and never reading an answer: each
    gets 429 once more than 16 wait behind the one being answered, and is closed; memory stays bounded."""
    flood = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 20_000
    before = target.rss_bytes()
    with prober:
        opened = [connect(target, timeout=5) for _ in range(60)]
        try:
            for connection in opened:
                connection.setblocking(False)
                try:
                    connection.send(flood)
                except BlockingIOError:
                    pass
            time.sleep(3)
            grown = target.rss_bytes() - before
        finally:
            for connection in opened:
                connection.close()
    prober.assert_served()
    assert grown < 64 * 2**20, f"{grown / 2**20:.0f} MiB"
    assert 429 in logged_statuses(target)


@pytest.mark.parametrize("target_line", [b"CONNECT 127.0.0.1:22", b"GET http://[::1", b"GET http://a:99999999/"])
def test_request_targets_the_url_parser_refuses_get_400(target, target_line):
    connection = connect(target, timeout=5)
    try:
        connection.sendall(target_line + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert "malformed request target" in json_error(connection, 400)
    finally:
        connection.close()


def test_a_reader_that_hangs_up_mid_answer_leaves_no_traceback(target):
    """Clients that read a little of a large answer and close: the answers end quietly, logged."""
    for _ in range(5):
        connection = connect(target, timeout=2)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.sendall(b"GET /flasgger_static/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        for _ in range(2):
            connection.recv(100)
            time.sleep(0.5)
        connection.close()
    time.sleep(1)
    log = target.access_log()
    assert "Traceback" not in log and "Exception in ASGI" not in log
    assert requests.get(target.url + "/healthz", timeout=5).ok
