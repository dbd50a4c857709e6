# A slim serving image: the LiteRT runtime and no TensorFlow, a non-root user, Gunicorn as in the README.
#   docker build -t mnist-flask:1.0.0 . && docker run -p 8000:8000 mnist-flask:1.0.0

# The package's compiled MNIST-form check is built here, as `make install` builds it (pip, in place),
# so the serving image carries no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY mnist_flask/ mnist_flask/
RUN pip install --no-cache-dir --no-deps -e .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /app
COPY requirements-serve.txt ./
RUN pip install -r requirements-serve.txt

COPY wsgi.py gunicorn.conf.py ./
COPY --from=build /src/mnist_flask/ mnist_flask/
COPY models/ models/

RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
