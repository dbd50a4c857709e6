"""Multipart uploads parsed by python-multipart, the parser Starlette and FastAPI use, into Werkzeug's
own ``MultiDict`` and ``FileStorage``, under Werkzeug's limits.

Werkzeug's parser is correct but event-driven in Python, and on a one-image upload it was the
largest single part of a prediction's server time (docs/performance.md). python-multipart finds
boundaries and header ends with ``bytes.find`` and bounds each part's headers itself; everything
after the parse (``request.files``, ``request.form``, the limits' 413s) stays Flask's.
"""

from __future__ import annotations

import logging
from io import BytesIO

from flask import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

READ_SIZE = 64 * 1024


def decoded(value: bytes) -> str:
    """A header parameter or a form field as text: UTF-8 as browsers send it, never an exception on bad bytes."""
    return value.decode("utf-8", "replace")


class Parts:
    """Collects python-multipart's events into form fields and files, counting parts and field bytes
    against ``MAX_FORM_PARTS`` and ``MAX_FORM_MEMORY_SIZE`` as Werkzeug's own parser does."""

    def __init__(self, max_parts: int | None, max_field_bytes: int | None) -> None:
        self.max_parts = max_parts
        self.max_field_bytes = max_field_bytes
        self.count = 0
        self.fields: list[tuple[str, str]] = []
        self.files: list[tuple[str, FileStorage]] = []
        self.header: list[bytes] = [b"", b""]
        self.headers: list[tuple[str, str]] = []
        self.data: list[bytes] = []
        self.size = 0
        self.name, self.filename = "", None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.end,
        }

    def begin(self) -> None:
        self.count += 1
        if self.max_parts is not None and self.count > self.max_parts:
            raise RequestEntityTooLarge(f"the upload has more than {self.max_parts} parts (MAX_FORM_PARTS)")
        self.headers, self.data, self.size = [], [], 0

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header[0] += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.header[1] += data[start:end]

    def header_end(self) -> None:
        name, value = self.header
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))
        self.header = [b"", b""]

    def headers_finished(self) -> None:
        """The field name, and the file name: a part without one is a plain form field."""
        disposition = next((value for name, value in self.headers if name.lower() == "content-disposition"), "")
        _, options = parse_options_header(disposition)
        filename = options.get(b"filename")
        self.name, self.filename = decoded(options.get(b"name", b"")), None if filename is None else decoded(filename)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self.data.append(data[start:end])
        self.size += end - start
        if self.filename is None and self.max_field_bytes is not None and self.size > self.max_field_bytes:
            raise RequestEntityTooLarge(f"a form field is over {self.max_field_bytes} bytes (MAX_FORM_MEMORY_SIZE)")

    def end(self) -> None:
        body = b"".join(self.data)
        if self.filename is None:
            self.fields.append((self.name, decoded(body)))
        else:
            self.files.append((self.name, FileStorage(BytesIO(body), self.filename, self.name, headers=Headers(self.headers))))


class UploadParser(FormDataParser):
    """Werkzeug's form parser with python-multipart doing the multipart framing."""

    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "").encode("ascii")  # a non-ASCII one is a ValueError: no form
        if not boundary:
            raise ValueError("Missing boundary")
        parts = Parts(self.max_form_parts, self.max_form_memory_size)
        parser = MultipartParser(boundary, parts.callbacks())
        while chunk := stream.read(READ_SIZE):
            parser.write(chunk)
        parser.finalize()
        return stream, self.cls(parts.fields), self.cls(parts.files)


class UploadRequest(Request):
    form_data_parser_class = UploadParser


def init_app(app) -> None:
    """Flask's requests parse uploads with :class:`UploadParser`. The parser warns on every malformed
    body; the 400 that follows is in the access log already, and garbage should not double the log."""
    app.request_class = UploadRequest
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
