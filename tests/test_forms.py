"""Multipart parsing (mnist_flask.forms): what Flask's views see, and every limit, just past it and absurd."""

from __future__ import annotations

import pytest
import urllib3
from flask import Flask, jsonify, request
from helpers import form_part

from mnist_flask import forms


@pytest.fixture
def client():
    """A Flask app with the upload parser, answering with what it parsed."""
    app = Flask(__name__)
    app.config.update(MAX_FORM_PARTS=5, MAX_FORM_MEMORY_SIZE=1000, MAX_CONTENT_LENGTH=64 * 1024 * 1024)
    forms.init_app(app)

    @app.post("/")
    def echo():
        files = [
            {"field": name, "filename": upload.filename, "type": upload.content_type, "data": upload.read().decode("latin-1")}
            for name, upload in request.files.items(multi=True)
        ]
        return jsonify(form=list(request.form.items(multi=True)), files=files)

    return app.test_client()


def post(client, body: bytes, boundary: str = "B"):
    return client.post("/", data=body, content_type=f"multipart/form-data; boundary={boundary}")


END = b"--B--\r\n"


def test_files_and_fields_in_order_as_clients_send_them(client):
    body, content_type = urllib3.encode_multipart_formdata(
        [("image", ("a.png", b"\x89PNG first", "image/png")), ("note", "hello"), ("image", ("b.jpg", b"second", "image/jpeg"))]
    )
    answer = client.post("/", data=body, content_type=content_type).json
    assert answer["form"] == [["note", "hello"]]
    assert answer["files"] == [
        {"field": "image", "filename": "a.png", "type": "image/png", "data": "\x89PNG first"},
        {"field": "image", "filename": "b.jpg", "type": "image/jpeg", "data": "second"},
    ]


def test_an_empty_file_is_a_file(client):
    answer = post(client, form_part("image", b"", "empty.png") + END).json
    assert answer["files"] == [{"field": "image", "filename": "empty.png", "type": None, "data": ""}]


def test_bytes_like_the_boundary_inside_a_file_are_kept(client):
    data = b"x--B not a boundary\r\n-B--\r\n\r--B" * 1000
    assert post(client, form_part("image", data, "a.bin") + END).json["files"][0]["data"] == data.decode("latin-1")


def test_names_that_are_not_utf8_are_replaced_not_refused(client):
    body = b'--B\r\nContent-Disposition: form-data; name="image"; filename="\xff\xfe.png"\r\n\r\nx\r\n' + END
    assert post(client, body).json["files"][0]["filename"] == "\ufffd\ufffd.png"


@pytest.mark.parametrize("parts, status", [(5, 200), (6, 413), (100_000, 413)])
def test_parts_are_limited(client, parts, status):
    response = post(client, form_part("f", b"v") * parts + END)
    assert response.status_code == status
    if status == 413:
        assert "MAX_FORM_PARTS" in response.get_data(as_text=True)


@pytest.mark.parametrize("size, status", [(1000, 200), (1001, 413), (10_000_000, 413)])
def test_form_fields_are_limited_but_files_are_not(client, size, status):
    assert post(client, form_part("f", b"v" * size) + END).status_code == status
    assert post(client, form_part("f", b"v" * size, "big.bin") + END).status_code == 200


@pytest.mark.parametrize(
    "body, boundary",
    [
        (form_part("image", b"x", "a.png") + END, "other"),  # the body's boundary is not the declared one
        (form_part("image", b"x", "a.png") + END, "B" * 5000),  # an absurd boundary
        (form_part("image", b"x", "a.png"), "B"),  # cut before the closing boundary
        (form_part("n" * 200_000, b"v") + END, "B"),
        (b"--B\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(1000)) + b"\r\nv\r\n" + END, "B"),
        (b"no multipart at all", "B"),
    ],
    ids=["wrong boundary", "5000-char boundary", "truncated", "200 KB header", "1000 headers", "garbage"],
)
def test_malformed_bodies_parse_to_no_parts(client, body, boundary):
    """As with Werkzeug's parser, a body that does not parse is no form: the view says what is missing."""
    response = post(client, body, boundary)
    assert response.status_code == 200 and response.json["files"] == []


def test_no_boundary_parses_to_no_parts(client):
    response = client.post("/", data=form_part("image", b"x", "a.png") + END, content_type="multipart/form-data")
    assert response.json == {"files": [], "form": []}
