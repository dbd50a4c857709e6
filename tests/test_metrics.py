"""Prometheus metrics (mnist_flask/metrics.py): what each request and prediction counts."""

from __future__ import annotations

from helpers import encode, post_image


def test_metrics_count_requests_predictions_and_errors(client, mnist_test):
    images, _ = mnist_test
    answered = [
        post_image(client, encode(image)).json["prediction"]
        for image in images[:3]
    ]
    post_image(client, b"junk")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mnist_flask_http_requests_total{endpoint="/prediction",method="POST",status="200"} 3.0' in text
    assert 'mnist_flask_http_requests_total{endpoint="/prediction",method="POST",status="400"} 1.0' in text
    for digit in range(10):  # every digit has its series, counting exactly the answers given
        assert f'mnist_flask_predictions_total{{digit="{digit}"}} {float(answered.count(digit))}' in text
    assert 'mnist_flask_errors_total{kind="bad_image"} 1.0' in text
    assert "mnist_flask_inference_seconds_count 3.0" in text
    assert "mnist_flask_image_decode_seconds_count 4.0" in text  # a refused picture took decoding time too
    assert "mnist_flask_upload_bytes_count 4.0" in text
    assert 'mnist_flask_model_info{backend="litert",name="mnist",version=' in text
