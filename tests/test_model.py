"""The model store, both serving backends, and the train / evaluate / models commands."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, PICTURES, ROOT, encode
from PIL import Image

from mnist_flask.config import Defaults
from mnist_flask.model import CLEAR_OF_EDGE_SURE, SECOND_LOOK_BELOW, ModelNotFound, likenesses, list_versions, load_classifier, version_dir
from mnist_flask.preprocessing import LIKELY_DIGIT, NOT_FOUND, SURE_DIGIT, Digit, prepare_upload, to_mnist
from mnist_flask.training import build_ensemble, cut_strokes, draw_frame, draw_lines, on_canvas, preprocess_all, untrained, with_remnants

CLI = Path(sys.executable).parent / "mnist-flask"


def run_cli(*args: str) -> str:
    result = subprocess.run([str(CLI), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_shipped_model_metadata_is_complete():
    meta = json.loads((version_dir(Defaults.MODEL_DIR, "mnist") / "metadata.json").read_text())
    assert meta["training_data"]["split"] == "x_train"
    assert re.fullmatch(r"[0-9a-f]{64}", meta["training_data"]["sha256"])
    assert meta["evaluation"]["split"] == "x_test" and meta["evaluation"]["accuracy"] >= 0.985
    assert meta["input"]["shape"] == [28, 28]
    assert {"tensorflow", "keras"} <= set(meta["versions"])


def assert_same_predictions(litert: np.ndarray, keras: np.ndarray, agreement: float = 0.99) -> None:
    """The served conversion stores 8-bit weights: the same digits, probabilities within a tenth
    (0.066 at most over all of x_test for the shipped model, docs/performance.md)."""
    assert (litert.argmax(axis=1) == keras.argmax(axis=1)).mean() >= agreement
    np.testing.assert_allclose(litert, keras, atol=0.1)


def test_litert_and_keras_backends_agree(mnist_test):
    fields = preprocess_all(mnist_test[0][:500])
    litert = load_classifier(Defaults.MODEL_DIR, "mnist", None, "litert")
    keras = load_classifier(Defaults.MODEL_DIR, "mnist", None, "keras")
    assert litert.backend == "litert" and keras.backend == "keras"
    assert_same_predictions(litert.predict(fields), keras.predict(fields))
    evaluation = litert.metadata["evaluation"]
    assert evaluation["litert_keras_agreement"] >= 0.999
    assert abs(evaluation["accuracy"] - evaluation["keras_accuracy"]) <= 0.001


def test_newest_version_is_served_unless_configured(tmp_path):
    for version in (1, 3, 2):
        (tmp_path / "mnist" / str(version)).mkdir(parents=True)
        (tmp_path / "mnist" / str(version) / "metadata.json").write_text("{}")
    (tmp_path / "mnist" / "notes").mkdir()
    assert list_versions(tmp_path, "mnist") == [1, 2, 3]
    assert version_dir(tmp_path, "mnist").name == "3"
    assert version_dir(tmp_path, "mnist", 2).name == "2"
    with pytest.raises(ModelNotFound):
        version_dir(tmp_path, "other")


def test_evaluate_prints_accuracy_above_the_bar():
    output = run_cli("evaluate", "--data", str(DATA))
    accuracy = float(re.search(r"accuracy on 8000 x_test digits: ([\d.]+)%", output).group(1))
    assert accuracy >= 98.5


def test_train_exports_a_new_version_that_serves(tmp_path, mnist_test):
    output = run_cli("train", "--data", str(DATA), "--model-dir", str(tmp_path), "--epochs", "1", "--limit", "600", "--remnants", "0.5")
    assert "version 1: accuracy on x_test" in output
    folder = tmp_path / "mnist" / "1"
    assert {"model.keras", "model.tflite", "metadata.json"} <= {p.name for p in folder.iterdir()}
    fields = preprocess_all(mnist_test[0][:50])
    litert = load_classifier(tmp_path, "mnist", 1, "litert").predict(fields)
    keras = load_classifier(tmp_path, "mnist", 1, "keras").predict(fields)
    assert_same_predictions(litert, keras, agreement=0.95)  # one epoch on 600 digits: many close calls
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["evaluation"]["litert_keras_agreement"] >= 0.95
    assert metadata["training_data"]["copies_with_remnants"] == 270  # half of the 540 digits left after validation
    assert "50% of them beside frames" in metadata["training"]["augmentation"]
    assert metadata["training"]["members"] == 2
    assert "mnist:1" in run_cli("models", "list", "--model-dir", str(tmp_path))


def training_digits(count: int) -> np.ndarray:
    with np.load(DATA) as data:
        return data["x_train"][:count]


def test_remnant_copies_are_fields_drawn_the_same_way_for_a_seed():
    images = training_digits(40)
    copies = with_remnants(images, seed=3)
    assert copies.shape == (40, 28, 28) and copies.dtype == np.float32
    assert copies.min() >= 0 and np.allclose(copies.max(axis=(1, 2)), 1)
    np.testing.assert_array_equal(copies, with_remnants(images, seed=3))
    assert not np.array_equal(copies, with_remnants(images, seed=4))
    assert (np.abs(copies - preprocess_all(images)).max(axis=(1, 2)) > 0.3).mean() > 0.9  # nearly every copy differs


@pytest.mark.parametrize("seed", range(5))
def test_frames_and_lines_add_ink_beyond_the_digit_and_cuts_only_remove_it(seed):
    image = training_digits(seed + 1)[seed]
    for draw in (draw_frame, draw_lines):
        canvas, (x, y, w, h) = on_canvas(image)
        before = canvas.copy()
        draw(canvas, (x, y, w, h), np.random.default_rng(seed))
        rows, cols = np.nonzero(canvas > before)
        assert len(rows), draw.__name__
        reach = np.ptp(cols) + 1 if np.ptp(cols) >= np.ptp(rows) else np.ptp(rows) + 1
        assert reach >= min(w, h) - 2, draw.__name__  # a frame's side or a line spans the digit
    canvas, box = on_canvas(image)
    before = canvas.copy()
    cut_strokes(canvas, box, np.random.default_rng(seed))
    assert (canvas <= before).all() and (canvas < before).any()


def test_an_ensemble_answers_the_mean_of_its_members(mnist_test):
    ensemble = build_ensemble(untrained(3))
    members = [layer for layer in ensemble.layers if layer.name.startswith("mnist_cnn_")]
    assert len(members) == 3
    fields = preprocess_all(mnist_test[0][:8])[..., None]
    answers = [member.predict(fields, verbose=0) for member in members]
    assert np.abs(answers[0] - answers[1]).max() > 1e-3  # members start apart
    np.testing.assert_allclose(ensemble.predict(fields, verbose=0), np.mean(answers, axis=0), atol=1e-6)
    np.testing.assert_allclose(ensemble.predict(fields, verbose=0).sum(axis=1), 1, atol=1e-5)


def test_classify_a_folder_offline(tmp_path, mnist_test):
    images, labels = mnist_test
    folder = tmp_path / "scans"
    (folder / "more").mkdir(parents=True)
    for index in range(5):
        (folder / ("more" if index % 2 else "") / f"{index}.png").write_bytes(encode(255 - images[index]))
    (folder / "z-broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    output = tmp_path / "out.jsonl"
    run_cli("classify", str(folder), "--output", str(output))
    rows = {Path(row["path"]).name: row for row in map(json.loads, output.read_text().splitlines())}
    assert set(rows) == {"0.png", "1.png", "2.png", "3.png", "4.png", "z-broken.png"}
    assert [rows[f"{i}.png"]["prediction"] for i in range(5)] == labels[:5].tolist()
    assert "not an image" in rows["z-broken.png"]["error"]
    run_cli("classify", str(folder / "0.png"), "--output", str(tmp_path / "out.csv"))
    header, first = (tmp_path / "out.csv").read_text().splitlines()
    assert header.startswith("path,prediction,confidence") and first.split(",")[1] == str(labels[0])


def test_models_export_and_import(tmp_path):
    archive = tmp_path / "mnist.tar.gz"
    run_cli("models", "export", str(archive))
    store = tmp_path / "store"
    run_cli("models", "import", "--model-dir", str(store), str(archive))
    newest = list_versions(Defaults.MODEL_DIR, "mnist")[-1]
    assert list_versions(store, "mnist") == [newest]
    run_cli("models", "import", "--model-dir", str(store), "--version", "7", str(archive))
    assert list_versions(store, "mnist") == [newest, 7]
    assert f"mnist:{newest}" in run_cli("models", "list", "--model-dir", str(store))
    refused = subprocess.run([str(CLI), "models", "import", "--model-dir", str(store), str(archive)], capture_output=True, text=True)
    assert refused.returncode != 0 and "exists already" in refused.stderr


def looks_like_a_digit(digit: Digit, floor: float = LIKELY_DIGIT) -> bool:
    """Whether a reading's likeness, as the second looks weigh it, reaches ``floor``."""
    return bool(likenesses([digit])[0] >= floor)


def unlooked(digit: Digit) -> Digit:
    """A reading whose second look must not be taken."""

    def fail() -> Digit:
        raise AssertionError("a sure reading was read again")

    return Digit(digit.pixels, digit.found, digit.box, second_look=fail)


def test_a_sure_reading_is_not_read_again(classifier, mnist_test):
    images, labels = mnist_test
    digits = [to_mnist(image) for image in images[:20]]
    sure = [digit for digit, answer in zip(digits, classifier.answers(digits)) if answer["confidence"] >= SECOND_LOOK_BELOW]
    assert len(sure) >= 15
    assert classifier.answers([unlooked(digit) for digit in sure]) == classifier.answers(sure)


def test_a_digit_not_found_takes_the_second_look_that_finds_one(classifier, mnist_test):
    images, labels = mnist_test
    answer = classifier.answers([Digit(NOT_FOUND.pixels, False, second_look=lambda: [to_mnist(images[3])])])[0]
    assert answer["digit_found"] is True and answer["prediction"] == labels[3]


def test_a_doubtful_reading_takes_the_surer_second_look_and_only_that(classifier, mnist_test):
    """A mix of two different digits leaves the model in doubt; a clean digit is surer, also
    among other readings that are less sure, and a blank field found nowhere, or no other
    reading, is no better answer."""
    images, labels = mnist_test
    first, second = 0, next(index for index in range(1, 100) if labels[index] != labels[0])
    mixes = [(1 - share) * to_mnist(images[first]).pixels + share * to_mnist(images[second]).pixels for share in np.linspace(0.2, 0.8, 13)]
    answers = classifier.answers([Digit(mix, True) for mix in mixes])
    mixed = mixes[int(np.argmin([answer["confidence"] for answer in answers]))]
    doubt = classifier.answers([Digit(mixed, True)])[0]
    assert doubt["confidence"] < SECOND_LOOK_BELOW
    clean = to_mnist(images[second])
    answer = classifier.answers([Digit(mixed, True, (1, 2, 3, 4), second_look=lambda: [clean])])[0]
    assert answer["prediction"] == labels[second] and answer["confidence"] > doubt["confidence"]
    assert answer["box"] == clean.where()
    between = [Digit(mix, True) for mix, other in zip(mixes, answers) if other["confidence"] < answer["confidence"]]
    assert len(between) >= 5  # other readings, each less sure than the clean one
    surest = classifier.answers([Digit(mixed, True, (1, 2, 3, 4), second_look=lambda: [NOT_FOUND, *between, clean, *between])])[0]
    assert surest == answer
    for nothing_better in ([NOT_FOUND], []):  # []: the picture reads the same the other ways
        kept = classifier.answers([Digit(mixed, True, (1, 2, 3, 4), second_look=lambda: nothing_better)])[0]
        assert kept["probabilities"] == doubt["probabilities"] and kept["box"] == {"x": 1, "y": 2, "width": 3, "height": 4}


def test_a_sure_reading_at_the_pictures_edge_gives_way_to_a_sure_one_clear_of_it(classifier, mnist_test):
    """A shadow's tip at the picture's edge reads as a confident "1" (here one that looks like a
    digit too): a reading whose strokes reach the edge is read again, and a second look clear of the edge that the model is sure enough of
    is taken even though the first was surer. A second look at the edge too leaves the first
    reading."""
    images, labels = mnist_test
    ones = [to_mnist(images[index]) for index in np.flatnonzero(labels[:100] == 1)]
    tip = next(one.pixels for one, answer in zip(ones, classifier.answers(ones)) if answer["confidence"] >= SECOND_LOOK_BELOW and looks_like_a_digit(one))
    first = classifier.answers([Digit(tip, True, (0, 10, 4, 40))])[0]
    assert first["prediction"] == 1
    index = next(index for index in range(100) if labels[index] != 1)
    clear = to_mnist(images[index])
    answer = classifier.answers([Digit(tip, True, (0, 10, 4, 40), second_look=lambda: [clear], at_edge=True)])[0]
    assert answer["prediction"] == labels[index] and answer["box"] == clear.where()
    also_at_edge = replace(clear, at_edge=True)
    kept = classifier.answers([Digit(tip, True, (0, 10, 4, 40), second_look=lambda: [also_at_edge], at_edge=True)])[0]
    assert kept["prediction"] == 1 and kept["box"] == {"x": 0, "y": 10, "width": 4, "height": 40}


def test_a_sure_reading_that_looks_like_no_digit_gives_way_to_one_that_does(classifier, mnist_test):
    """A digit's stem alone, its loop lost, reads as a confident "1": a reading that looks like no
    digit (likeness under ``LIKELY_DIGIT``) is read again, clear of the edge too, and a second look
    that looks like a digit by ``SURE_DIGIT`` is taken though the model is less sure of it, if it
    is ``CLEAR_OF_EDGE_SURE`` of it. One the model doubts more, or one that looks like no digit
    either, leaves the first. A sure reading that looks like a digit is not read again."""
    images, labels = mnist_test
    stem = np.zeros((28, 28), np.float32)
    stem[4:24, 13:15] = 1.0
    first = classifier.answers([Digit(stem, True, (10, 10, 4, 40))])[0]
    assert first["prediction"] == 1 and first["confidence"] >= SECOND_LOOK_BELOW and not looks_like_a_digit(Digit(stem, True))
    mixes = [Digit((1 - share) * to_mnist(images[0]).pixels + share * to_mnist(images[index]).pixels, True, (5, 6, 7, 8)) for index in range(1, 40) for share in (0.2, 0.3, 0.4, 0.5)]
    readings = [(digit, answer) for digit, answer in zip(mixes, classifier.answers(mixes)) if looks_like_a_digit(digit, SURE_DIGIT)]
    sure_enough = next(digit for digit, answer in readings if CLEAR_OF_EDGE_SURE <= answer["confidence"] < first["confidence"])
    doubted = next(digit for digit, answer in readings if answer["confidence"] < CLEAR_OF_EDGE_SURE)
    answer = classifier.answers([Digit(stem, True, (10, 10, 4, 40), second_look=lambda: [doubted, sure_enough])])[0]
    assert answer["box"] == sure_enough.where()
    other_stem = Digit(np.roll(stem, 3, axis=1), True, (9, 9, 4, 40))
    for no_better in (doubted, other_stem):
        kept = classifier.answers([Digit(stem, True, (10, 10, 4, 40), second_look=lambda: [no_better])])[0]
        assert kept["box"] == {"x": 10, "y": 10, "width": 4, "height": 40}
    sure = next(digit for digit, answer in readings if answer["confidence"] >= SECOND_LOOK_BELOW)
    assert classifier.answers([unlooked(sure)]) == classifier.answers([sure])


def test_a_nine_read_as_its_stem_first_is_answered_from_the_whole_nine(classifier):
    """A "9" on a note on a dark desk (``note_on_desk`` held out, x_test's digit 882): the first
    reading keeps the stem, its loop too faint against the closing over the desk, and the model
    is sure of that "1"; the stem looks like no digit, and the reading of the note's paper apart
    finds the whole "9"."""
    data = (PICTURES / "nine_read_as_its_stem_first.jpg").read_bytes()
    digit = prepare_upload(data, 25_000_000)
    first = classifier.answers([replace(digit, second_look=None)])[0]
    assert first["prediction"] == 1 and first["confidence"] >= SECOND_LOOK_BELOW and not looks_like_a_digit(digit)
    assert classifier.answers([digit])[0]["prediction"] == 9


def test_a_reading_that_spans_the_picture_gives_way_to_any_that_does_not(classifier, mnist_test):
    """The desk around a note, taken in with the digit edge to edge, reads as a confident digit: any other reading found is
    preferred to it, even one the model is less sure of than ``CLEAR_OF_EDGE_SURE``; a reading
    that spans the picture never replaces one that does not."""
    images, labels = mnist_test
    surface = to_mnist(images[0])
    first = classifier.answers([surface])[0]
    assert first["confidence"] >= SECOND_LOOK_BELOW
    mixes = [(1 - share) * surface.pixels + share * to_mnist(images[index]).pixels for index in range(1, 40) for share in (0.4, 0.5, 0.6)]
    confidences = [answer["confidence"] for answer in classifier.answers([Digit(mix, True) for mix in mixes])]
    doubtful = Digit(mixes[int(np.argmin(confidences))], True, (5, 6, 7, 8))
    assert min(confidences) < CLEAR_OF_EDGE_SURE
    spanning = Digit(surface.pixels, True, (0, 0, 50, 60), second_look=lambda: [doubtful], at_edge=True, spans=True)
    answer = classifier.answers([spanning])[0]
    assert answer["box"] == doubtful.where() and answer["confidence"] == pytest.approx(min(confidences), abs=1e-5)
    kept = classifier.answers([replace(doubtful, second_look=lambda: [replace(spanning, second_look=None)])])[0]
    assert kept["box"] == doubtful.where()
    assert classifier.answers([replace(spanning, spans=False)])[0]["box"] == {"x": 0, "y": 0, "width": 50, "height": 60}


def test_a_note_read_with_its_desk_is_answered_from_the_reading_of_its_digit(classifier, model_4):
    """The note whose first reading takes in the desk around it, edge to edge
    (tests/test_preprocessing.py): model 4 is sure of that shape, a "2" (model 5 doubts it), but
    the digit read without the desk, a "5", is the answer, its box clear of the picture's edges."""
    data = (PICTURES / "note_read_with_its_desk.jpg").read_bytes()
    digit = prepare_upload(data, 25_000_000)
    first = model_4.answers([replace(digit, second_look=None)])[0]
    assert first["prediction"] != 5 and first["confidence"] >= CLEAR_OF_EDGE_SURE
    for model in (classifier, model_4):
        answer = model.answers([digit])[0]
        box, (width, height) = answer["box"], Image.open(io.BytesIO(data)).size
        assert answer["prediction"] == 5
        assert 0 < box["x"] and box["x"] + box["width"] < width and 0 < box["y"] and box["y"] + box["height"] < height
