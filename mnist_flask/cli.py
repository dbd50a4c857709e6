"""``mnist-flask``: train, evaluate and inspect models without starting the server."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import click

from . import config
from .model import METADATA_FILE, classify_each, list_versions, load_classifier, read_metadata, version_dir
from .preprocessing import prepare_upload

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}

model_dir_option = click.option(
    "--model-dir", type=click.Path(path_type=Path), default=config.Defaults.MODEL_DIR, show_default=True
)
name_option = click.option("--name", default=config.Defaults.MODEL_NAME, show_default=True)
data_option = click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    help="local mnist.npz (Keras layout); default: keras.datasets.mnist.load_data(), which needs a network",
)


@click.group()
def main():
    """Train, evaluate and list the MNIST models this server serves."""


@main.command()
@data_option
@model_dir_option
@name_option
@click.option("--version", type=int, help="version to write; default: newest + 1")
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--limit", type=int, help="train on the first N digits only (quick checks)")
def train(data, model_dir, name, version, epochs, seed, limit):
    """Train on x_train and export a new model version (Keras + LiteRT + metadata)."""
    from .training import train as run_training

    run_training(data, model_dir, name, version, epochs, seed=seed, limit=limit, log=click.echo)


@main.command()
@data_option
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
@click.option("--backend", type=click.Choice(["auto", "litert", "keras"]), default="auto", show_default=True)
def evaluate(data, model_dir, name, version, backend):
    """Accuracy on x_test through the serving preprocessing and classifier."""
    from .training import accuracy, load_mnist, preprocess_all

    _, (x_test, y_test) = load_mnist(data)
    classifier = load_classifier(model_dir, name, version, backend)
    score = accuracy(classifier.predict(preprocess_all(x_test)), y_test)
    click.echo(f"{classifier.label} ({classifier.backend}): accuracy on {len(x_test)} x_test digits: {score:.4%}")


@main.group()
def models():
    """The model store."""


@models.command("list")
@model_dir_option
@name_option
def list_models(model_dir, name):
    """Versions with their metadata, newest last."""
    for version in list_versions(model_dir, name):
        meta = read_metadata(version_dir(model_dir, name, version))
        click.echo(
            f"{name}:{version}  created {meta['created']}  "
            f"x_test accuracy {meta['evaluation']['accuracy']:.2%}  "
            f"tensorflow {meta['versions']['tensorflow']}"
        )


@models.command("show")
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
def show_model(model_dir, name, version):
    """One version's metadata as JSON."""
    click.echo(json.dumps(read_metadata(version_dir(model_dir, name, version)), indent=2))


@models.command("export")
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
def export_model(model_dir, name, version, archive):
    """Pack one version into a .tar.gz that `models import` takes on another machine."""
    folder = version_dir(model_dir, name, version)
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(folder, arcname=f"{name}/{folder.name}")
    click.echo(f"exported {name}:{folder.name} to {archive}")


@models.command("import")
@model_dir_option
@click.option("--version", type=int, help="store it as this version; default: the version it was exported as")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_model(model_dir, version, archive):
    """Unpack an exported version into the store; it is served after the next reload."""
    with tempfile.TemporaryDirectory() as staging, tarfile.open(archive) as packed:
        packed.extractall(staging, filter="data")
        found = [path.parent for path in Path(staging).glob(f"*/*/{METADATA_FILE}")]
        if len(found) != 1:
            raise click.ClickException(f"{archive} holds {len(found)} model versions; expected one")
        name, exported = found[0].parent.name, found[0].name
        target = Path(model_dir) / name / str(version or exported)
        if target.exists():
            raise click.ClickException(f"{target} exists already; pass --version to store it under another")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(found[0], target)
    click.echo(f"imported {name}:{target.name} into {model_dir}")


def image_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given, and the images found under folders, in a stable order."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="a .csv or .jsonl file; default: JSON lines on standard output")
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--max-pixels", type=int, default=config.Defaults.MAX_IMAGE_PIXELS, show_default=True)
def classify(paths, output, model_dir, name, version, batch_size, max_pixels):
    """Classify image files and folders offline, with the server's preprocessing and model."""
    files = image_files(paths)
    classifier = load_classifier(model_dir, name, version)
    rows = []
    with click.progressbar(length=len(files), label="classifying", file=sys.stderr) as progress:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            rows += classify_files(classifier, chunk, max_pixels)
            progress.update(len(chunk))
    write_rows(rows, output)


def classify_files(classifier, files: list[Path], max_pixels: int) -> list[dict]:
    answers = classify_each(files, lambda path: prepare_upload(path.read_bytes(), max_pixels), classifier.answers)
    return [{"path": str(path), **answer} for path, answer in zip(files, answers)]


def write_rows(rows: list[dict], output: Path | None) -> None:
    if output is not None and output.suffix == ".csv":
        with output.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["path", "prediction", "confidence", "digit_found", "error", *[f"p{d}" for d in range(10)]])
            for row in rows:
                writer.writerow([row["path"], row.get("prediction", ""), row.get("confidence", ""),
                                 row.get("digit_found", ""), row.get("error", ""), *row.get("probabilities", [""] * 10)])
        return
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    if output is None:
        click.echo(lines, nl=False)
    else:
        output.write_text(lines)
