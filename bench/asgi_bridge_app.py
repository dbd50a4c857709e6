"""mnist_flask behind :class:`mnist_flask.server.WsgiBridge` as a plain ASGI app, for ASGI workers
other than the shipped one (``gunicorn -k asgi ... bench.asgi_bridge_app:app``; bench.workers)."""

from mnist_flask import create_app
from mnist_flask.server import WsgiBridge, limits_from_environment

flask_app = create_app()
app = WsgiBridge(flask_app, limits_from_environment(flask_app), lambda line: None)
