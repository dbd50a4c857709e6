"""The HTTP API (mnist_flask/api.py): uploads, batches and the TF Serving routes, through the app factory
and Flask's test client with the real model, and against a real Gunicorn."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from helpers import encode, post_image
from PIL import Image

from mnist_flask import create_app
from mnist_flask.model import list_versions

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_root_gives_api_clients_the_original_hint_and_the_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.json["error"] == "use POST /prediction instead of root route"
    assert client.get(response.json["docs"]).status_code == 200


def test_root_gives_browsers_an_upload_form(client):
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert 'action="/prediction"' in page and 'name="image"' in page and 'type="file"' in page


def test_predicts_real_mnist_test_digits(client, mnist_test):
    images, labels = mnist_test
    answers = [post_image(client, encode(image)).json["prediction"] for image in images[:100]]
    assert np.mean(np.array(answers) == labels[:100]) >= 0.97


def test_answer_has_the_documented_shape(client, mnist_test, app):
    images, _ = mnist_test
    answer = post_image(client, encode(images[0])).json
    newest = list_versions(app.config["MODEL_DIR"], "mnist")[-1]
    assert answer["model"] == f"mnist:{newest}"
    assert len(answer["probabilities"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert answer["confidence"] == max(answer["probabilities"])
    assert answer["prediction"] == int(np.argmax(answer["probabilities"]))
    assert answer["digit_found"] is True
    assert all(len(repr(p).split(".")[-1]) <= 6 for p in answer["probabilities"])  # six decimals at most


@pytest.mark.parametrize("field", ["image", "file"])
def test_both_multipart_field_names(client, mnist_test, field):
    images, labels = mnist_test
    assert post_image(client, encode(images[1]), field=field).json["prediction"] == labels[1]


def test_raw_image_body(client, mnist_test):
    images, labels = mnist_test
    response = client.post("/prediction", data=encode(images[2], "JPEG", quality=95), content_type="image/jpeg")
    assert response.json["prediction"] == labels[2]


def test_browser_form_post_gets_a_result_page(client, mnist_test):
    images, labels = mnist_test
    response = post_image(client, encode(images[3]), headers={"Accept": BROWSER_ACCEPT})
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert f'<p class="digit" id="prediction">{labels[3]}</p>' in page
    assert "data:image/png;base64," in page


def assert_json_error(response, status: int, *words: str):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    for word in words:
        assert word in response.json["error"]


def test_multipart_without_the_image_field(client):
    response = client.post("/prediction", data={"other": "x"}, content_type="multipart/form-data")
    assert_json_error(response, 400, "'image'")


def test_urlencoded_form_is_unsupported(client):
    response = client.post("/prediction", data={"image": "@1.jpg"})
    assert_json_error(response, 415, "application/x-www-form-urlencoded", "multipart/form-data")


def test_empty_file(client):
    assert_json_error(post_image(client, b""), 400, "empty")


def test_text_file_named_png(client):
    assert_json_error(post_image(client, b"hello, this is not a picture\n" * 10), 400, "not an image")


def test_truncated_png(client, mnist_test):
    whole = encode(np.tile(mnist_test[0][0], (4, 4)))
    assert_json_error(post_image(client, whole[: len(whole) // 2]), 400, "truncated")


def test_upload_over_the_size_limit():
    client = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 1000}).test_client()
    assert_json_error(post_image(client, bytes(5000)), 413)


def test_image_over_the_pixel_limit(mnist_test):
    client = create_app({"TESTING": True, "MAX_IMAGE_PIXELS": 100 * 100}).test_client()
    big = encode(np.zeros((200, 200)))
    assert_json_error(post_image(client, big), 413, "200x200", "10000")


def test_image_too_small(client):
    assert_json_error(post_image(client, encode(np.zeros((4, 4)))), 400, "at least 8")


def test_json_body_is_unsupported(client):
    response = client.post("/prediction", json={"image": "1.jpg"})
    assert_json_error(response, 415, "application/json", "multipart/form-data")


def test_wrong_method(client):
    response = client.get("/prediction")
    assert_json_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unknown_path(client):
    assert_json_error(client.get("/nope"), 404)


def test_browser_errors_are_pages_not_json(client):
    response = post_image(client, b"not a picture", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "not an image" in response.get_data(as_text=True)


def test_missing_model_version_leaves_the_worker_up_but_not_ready(mnist_test):
    client = create_app({"MODEL_VERSION": 999}).test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "no version 999" in ready.json["error"]
    assert_json_error(post_image(client, encode(mnist_test[0][0])), 503, "no version 999")


def test_spec_documents_the_upload(client):
    spec = client.get("/apispec_1.json").json
    operation = spec["paths"]["/prediction"]["post"]
    assert {"name": "image", "in": "formData", "type": "file", "required": True}.items() <= operation["parameters"][0].items()
    assert {"200", "400", "413", "415"} <= set(operation["responses"])
    assert "get" in spec["paths"]["/"]


def test_swagger_ui_is_served(client):
    response = client.get("/apidocs/")
    assert response.status_code == 200
    assert "swagger-ui" in response.get_data(as_text=True)


def test_model_input_only_when_asked(client, mnist_test):
    data = encode(mnist_test[0][0])
    assert "model_input" not in post_image(client, data).json
    for query in ("model_input=false", "other=true"):
        assert "model_input" not in post_image(client, data, path=f"/prediction?{query}").json
    url = post_image(client, data, path="/prediction?model_input=true").json["model_input"]
    assert url.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert picture.size == (28, 28) and picture.mode == "L"


def test_several_images_in_one_request_keep_their_order(client, mnist_test):
    images, labels = mnist_test
    uploads = [encode(image) for image in images[:5]]
    uploads.insert(2, b"not an image")
    answer = post_image(client, *uploads).json
    predictions = answer["predictions"]
    assert len(predictions) == 6
    assert predictions[2]["status"] == 400 and "not an image" in predictions[2]["error"]
    good = [p["prediction"] for i, p in enumerate(predictions) if i != 2]
    assert good == list(labels[:5])
    assert answer["model"] == predictions[0]["model"]


def test_batch_size_is_limited():
    client = create_app({"MAX_BATCH": 3, "MAX_FORM_PARTS": 4}).test_client()
    response = post_image(client, *[b"x"] * 6)
    assert response.status_code == 413 and "error" in response.json


@pytest.mark.parametrize("count, status", [(3, 200), (4, 413), (6, 413)])
def test_max_batch_limits_multipart_uploads(mnist_test, count, status):
    """MAX_BATCH alone limits the images, and the part limit follows it (MAX_BATCH + 6)."""
    app = create_app({"MAX_BATCH": 3})
    assert app.config["MAX_FORM_PARTS"] == 9
    response = post_image(app.test_client(), *[encode(image) for image in mnist_test[0][:count]])
    assert response.status_code == status
    if status == 413:
        assert response.json["error"] == f"at most 3 images per request (MAX_BATCH), got {count}"
    else:
        assert [p["prediction"] for p in response.json["predictions"]] == mnist_test[1][:count].tolist()
