"""mnist_flask: a Flask + Gunicorn HTTP server for an MNIST handwritten-digit classifier."""

from __future__ import annotations

from flasgger import Swagger
from flask import Flask

from . import api, apispec, config, errors, forms, health, logs, metrics, model, security, tfserving, v2, web


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, then ``MNIST_FLASK_*`` environment variables, then ``test_config``.

    Under Gunicorn (without ``preload_app``) this runs in each worker after the fork, so every
    worker loads its own model and the master never touches the inference runtime.
    """
    app = Flask(__name__)
    app.config.update(config.load(test_config))

    forms.init_app(app)
    logs.init_app(app)
    metrics.init_app(app)
    security.init_app(app)
    Swagger(app, template=apispec.TEMPLATE)
    app.register_blueprint(errors.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(tfserving.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(v2.bp)
    app.register_blueprint(web.bp)
    model.init_app(app)
    metrics.record_model(app)
    return app
