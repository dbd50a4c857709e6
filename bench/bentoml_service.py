"""BentoML 1.4 serving mnist_flask's model with mnist_flask's preprocessing, as BentoML's docs
write a service: a class under ``@bentoml.service``, the model loaded once per worker in
``__init__``, the endpoint an ``@bentoml.api`` method taking the upload as a ``Path``.

    .venv-bentoml/bin/bentoml serve bench.bentoml_service:Batched --port 3000   # adaptive batching on
    .venv-bentoml/bin/bentoml serve bench.bentoml_service:Unbatched --port 3001

Both run 2 workers, like the other peers. ``Batched`` is a batchable API: BentoML's dispatcher
gathers the uploads of concurrent requests into one call (up to MAX_BATCH, within MAX_LATENCY_MS),
which preprocesses each and classifies them all in one model call; its answer to a request is
BentoML's batchable contract, a list with one answer per upload sent. ``Unbatched`` answers each
request on its own, with mnist_flask's JSON answer. Both run in BentoML's own venv
(requirements-bentoml.txt), started by bench/harness.py like every other server.
"""

from __future__ import annotations

from pathlib import Path

import bentoml

from bench.same_work import answer_uploads, served_classifier

WORKERS = 2
MAX_BATCH = 64  # mnist_flask's own limit of images per request
# The latency budget: BentoML answers 503 at once to an upload it expects to miss it, so it is set
# to the benchmark client's timeout (a budget of 100 ms shed most uploads under load on 2 cores).
MAX_LATENCY_MS = 10_000


@bentoml.service(workers=WORKERS)
class Unbatched:
    def __init__(self) -> None:
        self.classifier = served_classifier()

    @bentoml.api(route="/prediction")
    def prediction(self, image: Path, ctx: bentoml.Context) -> dict:
        body, status = answer_uploads(self.classifier, [image.read_bytes()])[0]
        ctx.response.status_code = status
        return body


@bentoml.service(workers=WORKERS)
class Batched:
    def __init__(self) -> None:
        self.classifier = served_classifier()

    @bentoml.api(route="/prediction", batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def prediction(self, image: list[Path]) -> list[dict]:
        return [body for body, _ in answer_uploads(self.classifier, [path.read_bytes() for path in image])]
