# The otel-memory demo app for docker-compose.observability.yml.
FROM python:3.12.7-slim-bookworm
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_memory ./otel_memory
RUN pip install --no-cache-dir ".[demo]"
EXPOSE 9464
CMD ["otel-memory", "demo", "--host", "0.0.0.0"]
