# One image for the API, the edge agent and the simulator (`tianwang serve|agent|simulate`).
# The console's browser library (Leaflet) from the npm registry, pinned by package-lock.json.
FROM node:20-slim AS web
WORKDIR /web
COPY platform/web/package.json platform/web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY edge_agent ./edge_agent
COPY simulator ./simulator
RUN pip install --no-cache-dir --upgrade pip && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# libgl/glib are not needed by opencv-python-headless; tzdata for the +08:00 local times of GA/T 1400
RUN apt-get update && apt-get install -y --no-install-recommends tzdata && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
COPY --from=web /web/node_modules /opt/tianwang/web/node_modules
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --system --create-home --home-dir /var/lib/tianwang tianwang
USER tianwang
WORKDIR /var/lib/tianwang
ENV TIANWANG_DATA_DIR=/var/lib/tianwang PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
ENTRYPOINT ["tianwang"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
