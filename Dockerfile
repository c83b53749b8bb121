# The xorstream app image: producer and stream processor (one image, two commands).
# Serves with the NumPy backend, so it installs the package WITHOUT the `ml` extra: no TensorFlow
# (pyproject.toml). Build: docker build -t xorstream:latest .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# pyproject.toml names README.md as the package readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY model ./model
COPY producer ./producer
COPY stream ./stream
RUN pip install . \
    && useradd --create-home --uid 10001 xorstream

USER xorstream
# Defaults the processor reads (stream/config.py ENV_VARS); docker-compose.yml sets the rest.
ENV XORSTREAM_BACKEND=numpy \
    XORSTREAM_METRICS_PORT=9400
EXPOSE 9400
CMD ["xorstream-stream"]
