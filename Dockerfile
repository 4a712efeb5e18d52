FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PIP_NO_CACHE_DIR=1 HEED_INDEX_DIR=/var/heed/index
WORKDIR /app
# torch first, pinned to the CPU build: an unpinned torch pulls several GB of CUDA wheels.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY heed heed
COPY indexer indexer
COPY search search
COPY service service
COPY cli cli
COPY models models
COPY data data
# EXTRAS=milvus (the compose `cluster` profile) adds pymilvus for HEED_VECTOR_BACKEND=milvus
ARG EXTRAS=""
RUN pip install ".${EXTRAS:+[$EXTRAS]}"
# Export (and quantise) both models to ONNX once, at build time, into the image's model cache:
# the re-ranker in fp32 and int8, since HEED_RERANK_PRECISION=auto picks by the CPU it runs on.
ENV HEED_MODEL_CACHE=/app/var/models
RUN python -c "import dataclasses as d; from heed.settings import Settings; from heed.models.encoders import load_bi_encoder as b, load_reranker as r; s = Settings(); rt = d.replace(s.model_runtime(), backend='onnx', embed_precision='fp32'); b(s.embed_model, rt); [r(s.rerank_model, d.replace(rt, rerank_precision=p)).score('q', ['p']) for p in ('fp32', 'int8')]"
EXPOSE 8000
CMD ["heed", "serve", "--host", "0.0.0.0", "--port", "8000"]
