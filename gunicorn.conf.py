"""Gunicorn settings for Fashion-16 (read automatically from the working directory).

Every value can be set with an environment variable, so the same file serves a laptop,
a container and a VM. Searching is CPU-bound (one CNN forward pass per query), so the
default is one worker process per CPU, each with a couple of threads to overlap I/O.
"""
import os


def _cpus() -> int:
    """CPUs this process may use (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = os.environ.get("FASHION16_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("FASHION16_WORKERS") or os.environ.get("WEB_CONCURRENCY") or _cpus())
threads = int(os.environ.get("FASHION16_THREADS") or 2)
timeout = int(os.environ.get("FASHION16_TIMEOUT") or 60)  # a worker busy this long is restarted
graceful_timeout = 30
keepalive = 5

# No preload: TensorFlow is not fork-safe once its thread pools have started, and loading
# the model starts them (Embedder runs one forward pass to trace its graph). With
# preload_app=True the master loads the model, forks, and every worker hangs on its first
# query. Checked with real gunicorn and 2 workers; tests/test_gunicorn.py runs the shipped
# settings. So each worker runs create_app() itself: model and index load once per worker
# process at boot, never per request, and a missing or mismatched file stops every worker
# with the log line naming the command that builds it (gunicorn then exits).
preload_app = False

# Requests carry one image in the body; headers and URLs stay small.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# Heartbeat files on tmpfs: a slow container disk must not make healthy workers look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Gunicorn 25+ opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl),
# so two servers of one user clash over it; nothing here uses gunicornc. (Older versions ignore this.)
control_socket_disable = True

accesslog = os.environ.get("FASHION16_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("FASHION16_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms %(p)s'
