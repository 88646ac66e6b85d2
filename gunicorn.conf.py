"""Gunicorn settings for Fashion-16 (read automatically from the working directory).

Every value comes from app/settings.py, the one place FASHION16_* variables are read and
checked, so gunicorn, the command line and the app agree and a bad value stops startup
with one line naming the variable. Searching is CPU-bound (one model pass per query), so
the default is one worker process per CPU, each with a couple of threads to overlap I/O.
"""
import os

from app.privileges import worker_account
from app.settings import WORKER_THREAD_ENV, Settings, SettingsError

try:
    _settings = Settings.from_env()
    worker_account(_settings)  # started as root, FASHION16_USER must name an unprivileged user
except SettingsError as exc:
    raise SystemExit(f"Fashion-16 cannot start: {exc}") from None

# One BLAS/OpenMP thread per worker (app/settings.py says why), set in the master before any
# worker is forked and imports NumPy; it overrides the environment's value.
os.environ.update(WORKER_THREAD_ENV)

bind = _settings.bind
workers = _settings.workers
threads = _settings.threads
# gthread, answering what gunicorn refuses itself in the app's shape (JSON under /api/, with the
# security headers) and saying "Connection: close" whenever it will close (app/gunicorn_worker.py).
worker_class = "app.gunicorn_worker.ThreadWorker"
timeout = _settings.timeout  # a worker (or one of its requests: app/gunicorn_worker.py) busy this long is restarted
graceful_timeout = 30
keepalive = 5

# No preload: each worker opens the catalogs itself (models and stores load in about a
# second, without TensorFlow), so no interpreter thread pool is ever shared across a fork.
# A missing or mismatched file stops every worker with the log line naming the command
# that builds it (gunicorn then exits).
preload_app = False

# Requests carry one image in the body; headers and URLs stay small. (Behind nginx,
# `python -m app serve` lifts these: nginx bounds them already, see app/serving.py.)
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# Heartbeat files on tmpfs: a slow container disk must not make healthy workers look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Gunicorn 25+ opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl),
# so two servers of one user clash over it; nothing here uses gunicornc. (Older versions ignore this.)
control_socket_disable = True

accesslog = _settings.access_log
errorlog = "-"
loglevel = _settings.log_level
access_log_format = '%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms %(p)s'
