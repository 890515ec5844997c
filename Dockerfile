# The Model Heritage API (`heritage serve`); Neo4j runs in its own container
# (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# CPU-only PyTorch first, in its own layer: the CUDA wheels are gigabytes and the
# API does not need a GPU.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.2"

# A C compiler for the fingerprint's compiled inner loops (heritage/reading/_kernels.c;
# without one the install still succeeds and slower NumPy twins run).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

COPY . /app
# Editable install: the graph layer reads its Cypher files from /app/cypher, next
# to the package, so the source tree stays the installed tree.
RUN pip install -e ".[torch]" \
    && useradd --create-home --uid 10001 heritage \
    && chown -R heritage /app
USER heritage

EXPOSE 8000
CMD ["heritage", "serve", "--host", "0.0.0.0", "--port", "8000"]
