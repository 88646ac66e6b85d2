# Fashion-16: gunicorn serving wsgi:app, with the committed model and the default
# Fashion-MNIST gallery index built into the image (containers start in seconds, never write).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8000

# Fashion-MNIST from Debian: the gallery indexed below (and the data `python -m app train` uses).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/fashion16
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app/ app/
COPY models/ models/
COPY templates/ templates/
COPY static/ static/
COPY wsgi.py gunicorn.conf.py ./
RUN python -m app index build --out index_store/fashion_mnist.h5

RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent fashion16
USER fashion16

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import os, urllib.request as u; b = os.environ.get('FASHION16_BIND') or ':' + os.environ.get('PORT', '8000'); u.urlopen('http://127.0.0.1:' + b.rsplit(':', 1)[1] + '/api/health', timeout=4)"

# gunicorn reads ./gunicorn.conf.py (bind, workers, threads, timeouts) from the working directory.
CMD ["gunicorn", "wsgi:app"]
