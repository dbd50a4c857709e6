"""The settings (mnist_flask/config.py): how they are layered, and the README's one table of them,
checked against the variables the code reads so that the two cannot drift apart."""

from __future__ import annotations

import ast
import re

from bench.harness import ROOT
from mnist_flask import create_app
from mnist_flask.config import ENV_PREFIX, Defaults

# Where a user's settings are read: the served package, Gunicorn's settings file and the WSGI entry.
SERVING_SOURCES = [*sorted((ROOT / "mnist_flask").rglob("*.py")), ROOT / "gunicorn.conf.py", ROOT / "wsgi.py"]


def is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"


def variables_read(tree: ast.AST) -> set[str]:
    """Names read with ``os.environ.get``, ``os.getenv``, ``os.environ[...]`` or ``... in os.environ``;
    not those only set (``os.environ[...] = ``, ``setdefault``: another library's variable)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and isinstance(node.args[0], ast.Constant):
            if node.func.attr == "getenv" or (node.func.attr == "get" and is_environ(node.func.value)):
                names.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and is_environ(node.value):
            if isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and any(is_environ(c) for c in node.comparators):
            names.add(node.left.value)
    return names


def app_variables() -> set[str]:
    """``MNIST_FLASK_<KEY>`` for every key with a default: ``config.load`` reads them all by prefix."""
    return {f"{ENV_PREFIX}_{key}" for key in vars(Defaults) if key.isupper()}


def readme_table_variables() -> list[str]:
    """The first column of the table in the README's Configuration section."""
    section = (ROOT / "README.md").read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_the_readme_table_lists_every_variable_the_code_reads_and_no_other():
    read = app_variables().union(*(variables_read(ast.parse(path.read_text())) for path in SERVING_SOURCES))
    listed = readme_table_variables()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) == read, f"missing from the README: {read - set(listed)}; not read: {set(listed) - read}"


def test_the_scan_finds_each_way_of_reading_a_variable():
    source = """
import os
a = os.environ.get("A", "1")
b = os.getenv("B")
c = os.environ["C"]
d = "D" in os.environ
os.environ["E"] = "set, not read"
os.environ.setdefault("F", "set unless set")
"""
    assert variables_read(ast.parse(source)) == {"A", "B", "C", "D"}


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("MNIST_FLASK_MAX_IMAGE_PIXELS", "1234")
    assert create_app().config["MAX_IMAGE_PIXELS"] == 1234


def test_test_config_overrides_environment(monkeypatch):
    monkeypatch.setenv("MNIST_FLASK_MAX_IMAGE_PIXELS", "1234")
    assert create_app({"MAX_IMAGE_PIXELS": 99}).config["MAX_IMAGE_PIXELS"] == 99
