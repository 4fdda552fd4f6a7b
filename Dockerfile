# wabot's container image. How to use it: docs/operations.md, "3. Run it" > Docker.
# Not built on wabot's own machines (no Docker engine there): tests/test_deploy.py runs these install steps in a
# plain venv and this HEALTHCHECK's command against a real server, and lints this file with hadolint.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wabot ./wabot
# a wheel, installed below as a normal package (not editable): the image holds no source tree
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WABOT_DB=/data/wabot.db \
    WABOT_PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin wabot \
    && mkdir -p /data \
    && chown wabot:wabot /data
WORKDIR /app
# the settings and the demo flows; mount your own flows over /app/flows (compose.yaml does)
COPY config.yaml ./config.yaml
COPY flows ./flows
USER 10001:10001
# the database (SQLite file, its -wal, its lock and its backups) lives here
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WABOT_PORT', '8080') + '/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "wabot", "--config", "/app/config.yaml"]
