"""gunicorn configuration for the e2e tests: per-worker telemetry through the post_fork hook."""

from otel_memory.workers import gunicorn_post_fork as post_fork
from otel_memory.workers import gunicorn_worker_exit as worker_exit

__all__ = ["post_fork", "worker_exit"]
