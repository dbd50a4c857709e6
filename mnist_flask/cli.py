"""``mnist-flask``: train, evaluate and inspect models without starting the server."""

from __future__ import annotations

import json
from pathlib import Path

import click

from . import config
from .model import list_versions, load_classifier, read_metadata, version_dir

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
@click.option("--epochs", type=int, default=40, show_default=True)
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
