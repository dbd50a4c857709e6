"""The benchmark's uploads (bench/upload_mix.py, bench/post_image.lua): every body of every upload
style and of the mix is a multipart upload the server reads, wrk sends a list of bodies in turn,
and the mix holds each style in its share."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.run import answers_correctly, wrk
from bench.upload_mix import MIX, MIX_LENGTH, MULTIPART, mix_order, workloads, write_bodies


@pytest.fixture(scope="module")
def loads(tmp_path_factory):
    return workloads(tmp_path_factory.mktemp("bodies"), per_style=2)


def test_every_body_is_an_upload_the_server_reads(server, loads):
    for name, load in loads.items():
        for path in load.bodies.read_text().split():
            response = requests.post(server.url + "/prediction", data=Path(path).read_bytes(), headers={"Content-Type": MULTIPART}, timeout=10)
            assert response.status_code == 200 and response.json()["digit_found"], (name, path, response.text)
        assert answers_correctly(load.sample, load.label)(server.url), name


def upload_sizes(server) -> dict[str, float]:
    """Uploads counted so far in each bucket of mnist_flask_upload_bytes (cumulative, by upper bound)."""
    text = requests.get(server.url + "/metrics", timeout=5).text
    family = next(family for family in text_string_to_metric_families(text) if family.name == "mnist_flask_upload_bytes")
    return {sample.labels["le"]: sample.value for sample in family.samples if sample.name.endswith("_bucket")}


def test_wrk_sends_each_body_in_turn(server, loads, tmp_path):
    """A 28x28 PNG and a phone photo, alternately: both sizes of upload arrive."""
    bodies = [Path(loads[style].bodies.read_text().split()[0]).read_bytes() for style in ("mnist", "phone_photo")]
    before = upload_sizes(server)
    run = wrk(server.url, write_bodies(tmp_path, "two", bodies), concurrency=1, seconds=1)
    after = upload_sizes(server)
    sent = {bound: after[bound] - before.get(bound, 0) for bound in after}
    assert run["requests"] >= 2 and run["errors"] == 0, run
    assert sent["1024.0"] > 0, "the 28x28 PNG was not sent"
    assert sent["+Inf"] - sent["65536.0"] > 0, "the phone photo was not sent"


def test_the_mix_has_each_style_in_its_share():
    order = mix_order(per_style=4, seed=0)
    assert len(order) == MIX_LENGTH
    for style, share in MIX.items():
        assert sum(picked == style for picked, _ in order) == round(share * MIX_LENGTH)
    assert len(set(order)) > len(MIX), "the mix repeats one picture per style"
