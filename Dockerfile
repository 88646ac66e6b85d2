# Fashion-16: nginx in front of gunicorn (python -m app serve), with the committed models, the
# clothing photos and both catalogs' stores built into the image (containers start in seconds,
# never write outside /tmp). No TensorFlow: serving runs the models on LiteRT. nginx runs as the
# image's user, its files in a private /tmp directory.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8000

# Fashion-MNIST from Debian: the paper's catalog, indexed below;
# nginx: the reverse proxy `python -m app serve` puts in front of gunicorn.
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist nginx \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/fashion16
# MILVUS=1 (deploy/compose.yaml) adds the Milvus client (its pinned lines of requirements-milvus.txt),
# for catalogs kept in a Milvus server.
ARG MILVUS=0
COPY requirements.txt requirements-milvus.txt ./
RUN pip install -r requirements.txt \
    && if [ "$MILVUS" = 1 ]; then grep -E "^(pymilvus|setuptools)" requirements-milvus.txt > /tmp/milvus.txt \
        && pip install -r /tmp/milvus.txt; fi

COPY app/ app/
COPY models/ models/
COPY templates/ templates/
COPY static/ static/
COPY deploy/ deploy/
# The photo catalog: its train and validation photos (the test split is for evaluation only).
COPY datasets/clothing-photos/train/ datasets/clothing-photos/train/
COPY datasets/clothing-photos/validation/ datasets/clothing-photos/validation/
COPY datasets/clothing-photos/LICENSE datasets/clothing-photos/SOURCE.md datasets/clothing-photos/
COPY wsgi.py gunicorn.conf.py ./
RUN python -m app index ensure

RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent fashion16
USER fashion16

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import urllib.request as u; from app.settings import Settings; u.urlopen(f'http://127.0.0.1:{Settings.from_env().port}/api/health', timeout=4)"

# nginx on $PORT (FASHION16_BIND) buffers clients and hands complete requests to gunicorn
# (./gunicorn.conf.py) on a unix socket; both stop cleanly on `docker stop` (SIGTERM).
# FASHION16_PROXY=0 serves with gunicorn alone.
CMD ["python", "-m", "app", "serve"]
