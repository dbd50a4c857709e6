"""`mnist-flask models add`: models trained elsewhere, added, served by real Gunicorn; refusals; and a
broken new version that never takes the service down."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import DATA, Load, cli, encode, post_image, post_upload

from bench.harness import ROOT, free_port, gunicorn
from mnist_flask import create_app
from mnist_flask.model import list_versions

SHIPPED = ROOT / "models" / "mnist" / str(list_versions(ROOT / "models", "mnist")[-1])


def add(source, store: Path, *options: str) -> str:
    result = cli("models", "add", str(source), "--model-dir", str(store), "--data", str(DATA), *options)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def printed_accuracy(output: str) -> str:
    return re.search(r"x_test digits through the server's preprocessing: ([\d.]+%) served", output)[1]


@pytest.fixture(scope="session")
def lecture_models(tmp_path_factory):
    """The lecture's MLP (Flatten -> Dense 128 relu -> Dropout 0.2 -> Dense 10 softmax, inputs / 255),
    trained briefly on x_train and saved the three ways Keras users save it."""
    folder = tmp_path_factory.mktemp("lecture")
    script = f"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras, numpy as np
with np.load({str(DATA)!r}) as data:
    x, y = data["x_train"] / 255.0, data["y_train"]
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=3, verbose=0)
model.save("mnist_model.h5")
model.save("mnist_model.keras")
model.export("exported_savedmodel", verbose=False)
cifar = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
cifar.save("cifar.keras")
three = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(3)])
three.save("three_outputs.keras")
"""
    subprocess.run([sys.executable, "-c", script], cwd=folder, check=True, capture_output=True, timeout=600)
    return folder


@pytest.fixture(scope="session")
def pytorch_onnx(tmp_path_factory):
    """A PyTorch CNN as PyTorch's MNIST example builds it: NCHW input, MNIST mean/std normalisation,
    logits out; exported by torch.onnx.export with its fixed batch of one."""
    folder = tmp_path_factory.mktemp("pytorch")
    script = f"""
import numpy as np, torch
torch.manual_seed(0)
with np.load({str(DATA)!r}) as data:
    x = (torch.tensor(data["x_train"], dtype=torch.float32)[:, None] / 255 - 0.1307) / 0.3081
    y = torch.tensor(data["y_train"], dtype=torch.long)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3),
                          torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16 * 5 * 5, 10))
optimizer = torch.optim.Adam(net.parameters(), 2e-3)
for epoch in range(1):
    for batch in torch.randperm(len(x)).split(64):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
        optimizer.step()
net.eval()
torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), "mnist.onnx", input_names=["input"], output_names=["logits"])
"""
    subprocess.run([sys.executable, "-c", script], cwd=folder, check=True, capture_output=True, timeout=600)
    return folder / "mnist.onnx"


def served_digits(store: Path, tmp_path: Path, images, version: int | None = None) -> tuple[list[int], set[str]]:
    env = {"MNIST_FLASK_MODEL_DIR": str(store), **({"MNIST_FLASK_MODEL_VERSION": str(version)} if version else {})}
    with gunicorn(tmp_path / f"gunicorn-{version}.log", 1, env=env) as server:
        answers = [
            post_upload(server.url, encode(image)).json()
            for image in images
        ]
    return [answer["prediction"] for answer in answers], {answer["model"] for answer in answers}


@pytest.mark.parametrize("saved", ["mnist_model.h5", "mnist_model.keras", "exported_savedmodel"])
def test_a_keras_model_is_added_and_served(lecture_models, mnist_test, tmp_path, saved):
    store = tmp_path / "store"
    output = add(lecture_models / saved, store)
    assert "stored as mnist:1" in output
    assert "outputs are probabilities" in output and "pixel convention: unit" in output
    assert "input: [N,28,28] (NHW)" in output and "runtime: litert" in output
    metadata = json.loads((store / "mnist" / "1" / "metadata.json").read_text())
    assert metadata["input"]["convention"] == "unit" and metadata["output"]["kind"] == "probabilities"
    assert metadata["evaluation"]["agreement"] >= 0.999 and metadata["evaluation"]["accuracy"] >= 0.9
    assert metadata["source"]["location"] == str(lecture_models / saved)
    assert re.fullmatch(r"[0-9a-f]{64}", metadata["source"]["sha256"])
    if saved.endswith(".h5"):  # what `add` printed is what `evaluate` measures on the stored version
        evaluated = cli("evaluate", "--data", str(DATA), "--model-dir", str(store)).stdout
        assert f"accuracy on 8000 x_test digits: {printed_accuracy(output)}" in evaluated
    images, labels = mnist_test
    digits, models = served_digits(store, tmp_path, images[:30])
    assert models == {"mnist:1"}
    assert np.mean(np.array(digits) == labels[:30]) >= 0.9


def test_an_onnx_export_of_a_pytorch_net_is_detected_and_served(pytorch_onnx, mnist_test, tmp_path):
    store = tmp_path / "store"
    output = add(pytorch_onnx, store)
    assert "input: [N,1,28,28] (NCHW)" in output
    assert "outputs are logits" in output and "pixel convention: standardized" in output
    assert "runtime: onnxruntime" in output
    metadata = json.loads((store / "mnist" / "1" / "metadata.json").read_text())
    assert (metadata["source"]["format"], metadata["runtime"], metadata["files"]["served"]) == ("onnx", "onnxruntime", "model.onnx")
    assert metadata["evaluation"]["accuracy"] >= 0.9
    images, labels = mnist_test
    digits, models = served_digits(store, tmp_path, images[:30])
    assert models == {"mnist:1"} and np.mean(np.array(digits) == labels[:30]) >= 0.9
    answer = post_image(create_app({"MODEL_DIR": str(store)}).test_client(), encode(images[0])).json
    assert abs(sum(answer["probabilities"]) - 1) < 1e-3  # softmax applied to the logits


@pytest.fixture
def web_folder(lecture_models):
    """A local HTTP server over the lecture's files, as a bucket or a model host would serve them."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(lecture_models))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_model_is_added_from_a_url(web_folder, tmp_path):
    store = tmp_path / "store"
    output = add(f"{web_folder}/mnist_model.h5", store, "--version", "7")
    assert "stored as mnist:7" in output
    metadata = json.loads((store / "mnist" / "7" / "metadata.json").read_text())
    assert metadata["source"]["location"] == f"{web_folder}/mnist_model.h5" and metadata["source"]["format"] == "keras-h5"


def refusal_cases(lecture_models: Path, web_folder: str, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Source -> what the one-line refusal must name."""
    text = tmp_path / "mnist_model.h5"
    text.write_text("this is not a model\n")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((lecture_models / "mnist_model.h5").read_bytes()[:50_000])
    empty_folder = tmp_path / "not_a_savedmodel"
    empty_folder.mkdir()
    return {
        "cifar": (str(lecture_models / "cifar.keras"), "takes input [N,32,32,3]"),
        "three_outputs": (str(lecture_models / "three_outputs.keras"), "answers with shape [N,3]"),
        "text_named_h5": (str(text), "is text ('this is not '...), not a model file"),
        "truncated_h5": (str(truncated), "Keras cannot read truncated.h5"),
        "not_a_savedmodel": (str(empty_folder), "without saved_model.pb"),
        "missing_file": (str(tmp_path / "nowhere.h5"), "no such file or folder"),
        "http_404": (f"{web_folder}/missing.h5", "cannot fetch"),
        "unreachable_url": (f"http://127.0.0.1:{free_port()}/mnist_model.h5", "cannot fetch"),
        "unknown_scheme": ("nosuchscheme://bucket/model.h5", "not added"),
    }


REFUSALS = ["cifar", "three_outputs", "text_named_h5", "truncated_h5", "not_a_savedmodel", "missing_file",
            "http_404", "unreachable_url", "unknown_scheme"]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_what_cannot_be_served_is_refused_in_one_line(lecture_models, web_folder, tmp_path, case):
    source, named = refusal_cases(lecture_models, web_folder, tmp_path)[case]
    store = tmp_path / "store"
    shutil.copytree(SHIPPED, store / "mnist" / "1")
    before = sorted(str(path.relative_to(store)) for path in store.rglob("*"))
    result = cli("models", "add", source, "--model-dir", str(store), "--data", str(DATA))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and named in errors[0], result.stderr[-2000:]
    assert sorted(str(path.relative_to(store)) for path in store.rglob("*")) == before


@pytest.mark.parametrize("version", ["0", "-1", "9" * 5000])
def test_absurd_versions_are_refused(tmp_path, version):
    result = cli("models", "add", str(SHIPPED / "model.tflite"), "--model-dir", str(tmp_path), "--version", version)
    assert result.returncode == 2 and "--version" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mnist").exists()


def test_an_existing_version_is_never_overwritten(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(SHIPPED, store / "mnist" / "1")
    result = cli("models", "add", str(SHIPPED / "model.tflite"), "--model-dir", str(store), "--version", "1")
    assert result.returncode == 1 and "exists already" in result.stderr
    assert sorted(p.name for p in (store / "mnist").iterdir()) == ["1"]


def test_a_litert_file_is_served_as_added(tmp_path):
    store = tmp_path / "store"
    output = add(SHIPPED / "model.tflite", store)
    shipped = json.loads((SHIPPED / "metadata.json").read_text())["evaluation"]["accuracy"]
    assert "runtime: litert (none: served as added)" in output
    assert float(printed_accuracy(output).rstrip("%")) / 100 == pytest.approx(shipped, abs=1e-5)


def test_import_of_a_model_file_points_to_add(tmp_path):
    result = cli("models", "import", str(SHIPPED / "model.keras"), "--model-dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not an archive made by `mnist-flask models export`" in result.stderr
    assert f"mnist-flask models add {SHIPPED / 'model.keras'}" in result.stderr


def test_list_and_show_read_every_version(tmp_path):
    """Hand-made versions, and ones from older releases, are listed with unknown fields, never a crash."""
    shutil.copytree(SHIPPED, tmp_path / "mnist" / "1")
    for version, metadata in ((2, "{}"), (3, "[1, 2]"), (4, "not json")):
        (tmp_path / "mnist" / str(version)).mkdir()
        (tmp_path / "mnist" / str(version) / "metadata.json").write_text(metadata)
    listed = cli("models", "list", env={"MNIST_FLASK_MODEL_DIR": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["mnist:1", "mnist:2", "mnist:3", "mnist:4"]
    assert "x_test accuracy 99." in lines[0] and all("created unknown" in line for line in lines[1:])
    shown = cli("models", "show", "--version", "4", "--model-dir", str(tmp_path))
    assert shown.returncode == 0 and json.loads(shown.stdout) == {"version": 4}
    missing = cli("models", "show", "--version", "9", "--model-dir", str(tmp_path))
    assert missing.returncode == 1 and "has no version 9" in missing.stderr and "Traceback" not in missing.stderr


def break_version(store: Path, version: int) -> None:
    """A version whose model file is not a model: what a bad copy or a hand edit leaves."""
    staging = store / "mnist" / f".incoming-{version}"
    staging.mkdir()
    (staging / "metadata.json").write_text(json.dumps({"name": "mnist", "version": version}))
    (staging / "model.tflite").write_bytes(b"not a flatbuffer")
    os.rename(staging, store / "mnist" / str(version))


def test_a_pinned_broken_version_is_not_served(tmp_path, mnist_test):
    shutil.copytree(SHIPPED, tmp_path / "mnist" / "1")
    break_version(tmp_path, 2)
    client = create_app({"MODEL_DIR": str(tmp_path), "MODEL_VERSION": 2}).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "mnist:2" in ready.json["error"]
    assert post_image(client, encode(mnist_test[0][0])).status_code == 503
    unpinned = create_app({"MODEL_DIR": str(tmp_path)}).test_client().get("/readyz").json
    assert unpinned["model"] == "mnist:1" and "2" in unpinned["failed_versions"]


def test_a_broken_new_version_never_takes_the_service_down(tmp_path, mnist_test):
    store = tmp_path / "store"
    shutil.copytree(SHIPPED, store / "mnist" / "1")
    with gunicorn(tmp_path / "gunicorn.log", env={"MNIST_FLASK_MODEL_DIR": str(store)}) as server:
        with Load(server.url, encode(mnist_test[0][0])) as load:
            time.sleep(1)
            break_version(store, 2)
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "failed_versions" not in requests.get(server.url + "/readyz", timeout=20).json():
                time.sleep(0.1)
            time.sleep(2)  # the old workers retire while the load goes on
        ready = requests.get(server.url + "/readyz", timeout=20).json()
        statuses = requests.get(server.url + "/v1/models/mnist", timeout=20).json()["model_version_status"]
        scraped = requests.get(server.url + "/metrics", timeout=20).text
        log = server.access_log()
    assert load.answers and load.failed == []
    assert set(load.models) == {"mnist:1"}
    assert ready["model"] == "mnist:1" and ready["failed_versions"]["2"]
    assert [(s["version"], s["state"]) for s in statuses] == [("2", "END"), ("1", "AVAILABLE")]
    assert statuses[0]["status"]["error_message"] == ready["failed_versions"]["2"]
    assert 'mnist_flask_model_load_failed{name="mnist",version="2"} 1.0' in scraped
    assert "model mnist:2 not loaded" in log


@pytest.fixture(scope="module")
def buckets(lecture_models):
    """Local S3 (moto) and Google Cloud Storage (gcp-storage-emulator) servers holding the lecture's
    files, and the environment that points fsspec's s3fs and gcsfs at them."""
    from gcp_storage_emulator.server import create_server
    from moto.server import ThreadedMotoServer

    s3_port, gcs_port = free_port(), free_port()
    env = {
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{gcs_port}", "FSSPEC_GCS_TOKEN": "anon",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",  # the emulator has no gRPC control plane to ask
    }  # fmt: skip
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    gcs = create_server("127.0.0.1", gcs_port, in_memory=True, default_bucket="models")
    s3.start()
    gcs.start()
    upload = subprocess.run([sys.executable, "-c", f"""
import fsspec
s3 = fsspec.filesystem("s3")
s3.mkdir("models")
s3.put({str(lecture_models / "exported_savedmodel")!r}, "models/exported_savedmodel", recursive=True)
fsspec.filesystem("gs").put({str(lecture_models / "mnist_model.h5")!r}, "models/mnist_model.h5")
"""], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert upload.returncode == 0, upload.stderr[-2000:]
    yield env
    s3.stop()
    gcs.stop()


@pytest.mark.parametrize("source, found", [("s3://models/exported_savedmodel", "savedmodel"),
                                           ("gs://models/mnist_model.h5", "keras-h5")])  # fmt: skip
def test_a_model_is_added_from_a_bucket(buckets, tmp_path, source, found):
    store = tmp_path / "store"
    result = cli("models", "add", source, "--model-dir", str(store), "--data", str(DATA), env=buckets)
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = json.loads((store / "mnist" / "1" / "metadata.json").read_text())
    assert (metadata["source"]["location"], metadata["source"]["format"]) == (source, found)
    assert metadata["evaluation"]["accuracy"] >= 0.9


def test_a_version_whose_runtime_is_missing_names_what_to_install(tmp_path):
    """A worker without ONNX Runtime (a slim image) reports what to install for an ONNX version."""
    folder = tmp_path / "mnist" / "1"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"")
    script = f"""
import sys
sys.modules["onnxruntime"] = None  # as if it were not installed
from mnist_flask import create_app
print(create_app({{"MODEL_DIR": {str(tmp_path)!r}}}).test_client().get("/readyz").json["error"])
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "served by onnxruntime, not installed here: pip install onnxruntime" in result.stdout, result.stderr[-2000:]
