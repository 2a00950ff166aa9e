# The service on a CPU: python -m serve over model folders mounted at /models (no GPU wheels).
#   docker build -t distilkobert-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/mini/onnx/distilled:/models/student:ro" distilkobert-serve
# Folders are mounted read-only: one exported already (python -m serve.export ... --int8) is served as it is, any
# other is exported on start-up into the container's cache (~/.cache/distilkobert/onnx), never into the folder.
FROM python:3.11-slim

WORKDIR /app
# PyTorch's CPU build first: the default index would pull the CUDA build, several GB the service never uses.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md tokenization_kobert.py ./
COPY common common
COPY modeling modeling
COPY pretrain pretrain
COPY finetune finetune
COPY distill distill
COPY sentence sentence
COPY hub_upload hub_upload
COPY reproduce reproduce
COPY serve serve
COPY data data
# Editable, so that the bundled data (the export's parity reviews) stays where the code finds it.
RUN pip install --no-cache-dir -e .

ENV HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
ENTRYPOINT ["python", "-m", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--model_name_or_path", "student=/models/student", "--backend", "onnx-int8"]
