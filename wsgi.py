"""Gunicorn's entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from mnist_flask import create_app

app = create_app()
