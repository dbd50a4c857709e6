"""Hostile and broken input against a real Gunicorn: a clear 4xx each time, and the server keeps serving."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import requests
from helpers import connect, encode, form, post_upload, upload_head
from PIL import Image

MAX_BYTES = 4 * 1024 * 1024


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def huge_blank_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def sample_jpeg() -> bytes:
    return encode(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1)), "JPEG", quality=95)


UPLOADS = {
    "zero_bytes": (b"", 400, "empty"),
    "text_named_png": (b"just some text\n" * 20, 400, "not an image"),
    "pdf_named_png": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", 400, "not an image"),
    "truncated_jpeg": (None, 400, "truncated"),
    "truncated_png": (None, 400, "truncated"),
    "bomb_png_100000x100000": (png_declaring(100_000, 100_000), 413, "limit"),
    "one_by_one": (encode(np.zeros((1, 1))), 400, "at least 8"),
    "real_20000x20000": (huge_blank_png(20_000), 413, "400000000 pixels"),
}


@pytest.mark.parametrize("name", UPLOADS)
def test_hostile_upload(server, name, mnist_test):
    data, status, words = UPLOADS[name]
    if name == "truncated_jpeg":
        data = truncated(sample_jpeg())
    if name == "truncated_png":
        data = truncated(encode(np.tile(mnist_test[0][0], (6, 6))))
    response = post_upload(server.url, data, timeout=30)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    still = post_upload(server.url, encode(mnist_test[0][0]))
    assert still.status_code == 200


def test_the_largest_accepted_picture_is_answered(server, mnist_test):
    """25 megapixels is the default limit: a picture that size is decoded and answered, not refused."""
    page = np.full((5000, 5000), 255, np.uint8)
    page[2000:3120, 2000:3120] = 255 - np.kron(mnist_test[0][0], np.ones((40, 40), np.uint8))
    response = post_upload(server.url, encode(page), timeout=30)
    assert response.status_code == 200 and response.json()["prediction"] == mnist_test[1][0]


def raw_request(server, head: bytes, body: bytes = b"", chunks: list[bytes] | None = None) -> tuple[int, bytes]:
    """Send bytes as they are (no client library tidying them up) and read the status line and body."""
    with connect(server, timeout=20) as connection:
        connection.sendall(head + body)
        for chunk in chunks or []:
            try:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed early, as it should for an oversize body
        response = b""
        while True:
            try:
                data = connection.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            response += data
    status = int(response.split(b" ", 2)[1])
    return status, response.split(b"\r\n\r\n", 1)[-1]


def send_form(server, content_type: str, body: bytes) -> tuple[int, bytes]:
    head = upload_head(content_type, f"Content-Length: {len(body)}", "Connection: close")
    return raw_request(server, head, body)


def test_multipart_without_boundary(server):
    _, body = form(("image", b"abc", "a.png"))
    status, answer = send_form(server, "multipart/form-data", body)
    assert status == 400 and b"error" in answer


def test_multipart_with_a_broken_boundary(server):
    content_type, _ = form(("image", b"abc", "a.png"))
    _, body = form(("image", b"abc", "a.png"), boundary="other")
    status, answer = send_form(server, content_type, body)
    assert status == 400 and b"error" in answer


def test_hundreds_of_parts(server):
    status, answer = send_form(server, *form(*[("f", b"v")] * 500))
    assert status == 413 and b"error" in answer


def test_huge_field_name_in_a_part(server):
    status, answer = send_form(server, *form(("n" * 200_000, b"v", "a")))
    assert 400 <= status < 500 and b"error" in answer


@pytest.mark.parametrize(
    "lines, status",
    [([b"X-Big: " + b"a" * 100_000], 431), ([b"X-Big: " + b"a" * 9000], 431),  # Gunicorn's limit_request_field_size
     ([b"X-%d: 1" % i for i in range(101)], 431)],  # limit_request_fields
)  # fmt: skip
def test_huge_http_header(server, lines, status):
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n"
    got, answer = raw_request(server, head)
    assert got == status and b"error" in answer  # refused by the worker before the app sees it


def test_huge_request_line(server):
    status, answer = raw_request(server, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 414 and b"request line" in answer  # Gunicorn's limit_request_line


def test_json_body_to_the_upload_endpoint(server):
    response = requests.post(server.url + "/prediction", json={"image": "aGVsbG8="}, timeout=10)
    assert response.status_code == 415 and "multipart/form-data" in response.json()["error"]


def test_wrong_method(server):
    response = requests.put(server.url + "/prediction", data=b"x", timeout=10)
    assert response.status_code == 405 and response.json()["error"]


def test_upload_over_the_limit_with_content_length(server):
    response = post_upload(server.url, bytes(MAX_BYTES + 1000), timeout=30)
    assert response.status_code == 413 and response.json()["error"]


@pytest.mark.parametrize("content_type", ["image/png", form()[0]])
def test_upload_over_the_limit_chunked(server, content_type):
    head = upload_head(content_type, "Transfer-Encoding: chunked", "Connection: close")
    _, body = form(("image", bytes(MAX_BYTES + 1000), "a.png"))
    status, answer = raw_request(server, head, chunks=[body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024)] + [b""])
    assert status == 413 and b"error" in answer
