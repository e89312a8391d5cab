# plantgraph API / UI image (CPU only). Used by docker-compose.yml for the `api` and `ui` services.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PLANTGRAPH_DATA=/data

WORKDIR /app

# torch first, from the CPU wheel index, pinned like pyproject.toml: the project install then
# finds it satisfied and does not pull the much larger CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY ontology ./ontology
COPY store ./store
COPY graph_loader ./graph_loader
COPY reasoning ./reasoning
COPY api ./api
COPY ui ./ui
COPY config ./config
COPY plantgraph ./plantgraph
RUN pip install .

RUN useradd --create-home --uid 10001 plantgraph && mkdir -p /data && chown plantgraph /data
USER plantgraph
VOLUME ["/data"]
EXPOSE 8000 8501

CMD ["plantgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
