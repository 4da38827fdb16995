# pytriton_lite serving a Triton model repository mounted at /models.
#   docker build -t pytriton-lite:0.1.0 .
#   docker run --rm -p 8000-8002:8000-8002 -v "$PWD/models:/models:ro" pytriton-lite:0.1.0
# Extras (onnx, torch, speed) are chosen at build time: --build-arg EXTRAS=onnx,speed
FROM python:3.11-slim

ARG EXTRAS=onnx,speed
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/pytriton_lite
COPY pyproject.toml README.md ./
COPY pytriton_lite ./pytriton_lite
COPY triton_python_backend_utils ./triton_python_backend_utils
# the project itself, from this source tree: its dependencies are ranged in pyproject.toml, not pinned here
# hadolint ignore=DL3013
RUN pip install ".[${EXTRAS}]" \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin triton \
    && mkdir /models && chown triton:triton /models

# numeric, so that Kubernetes runAsNonRoot can check it
USER 1000:1000
WORKDIR /home/triton
EXPOSE 8000 8001 8002

# no curl in the slim image: the health check is a one-line stdlib request
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2).status != 200)"]

# exec form: the server is PID 1 and gets SIGTERM itself, then drains for --exit-timeout-secs
ENTRYPOINT ["python", "-m", "pytriton_lite", "serve"]
CMD ["--model-repository", "/models", "--exit-timeout-secs", "30"]
