"""Serve one or several model folders over HTTP: batched predictions, sentence vectors, a page to try them.

    python -m serve --model_name_or_path runs/mini/nsmc/distilled/best --backend onnx-int8 --port 8000
    python -m serve --model_name_or_path teacher=runs/mini/nsmc/teacher/best student=runs/mini/nsmc/distilled/best

Each ``--model_name_or_path`` value is ``DIR`` or ``NAME=DIR`` (the name defaults to the folder's): any model folder
this project writes. With ``--backend onnx`` or ``onnx-int8`` a folder without its own ONNX graph (``serve.export
--output_dir DIR`` writes ``DIR/onnx/``) is exported and checked on start-up into ``--onnx_cache_dir``, keyed by the
folder's contents and reused by the next start: the model folder is never written (it may be read-only), and the
model is loaded once. Then open http://HOST:PORT/ for the page and http://HOST:PORT/openapi.json for the API. From
Python: ``serve(ServeArguments(model_name_or_path=[...]))`` runs the service until it is stopped.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from common.config import key, required, run_command
from serve.batching import BatchSettings

if TYPE_CHECKING:  # torch, the models and the web framework are imported once the options are checked
    from serve.predict import Predictor

logger = logging.getLogger("serve")


@dataclass(kw_only=True)
class ServeArguments:
    """What ``python -m serve`` reads."""

    model_name_or_path: list[str] = required(
        "Model folders, each DIR or NAME=DIR (NAME: the folder's by default); the flag may be repeated.",
        repeatable=True,
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = key("torch", "What runs the models.")
    host: str = key("127.0.0.1", "Address to listen on.")
    port: int = key(8000, "Port to listen on.")
    onnx_cache_dir: str | None = key(
        None,
        "Where graphs exported on start-up are kept (default: $XDG_CACHE_HOME/distilkobert/onnx); a folder with its "
        "own onnx/ (python -m serve.export --output_dir DIR) is used as it is.",
    )
    threads: int = key(os.cpu_count() or 1, "CPU threads of inference.")
    max_seq_length: int | None = key(None, "Tokens per input (default: each model's own limit).")
    batching: bool = key(True, "Run the texts of requests that arrive together as one batch.")
    max_batch_size: int = key(32, "Texts per batch.")
    max_wait_ms: float = key(5.0, "How long a request waits for others.")
    max_queue: int = key(256, "Texts waiting per model; beyond, 503.")
    max_chars: int = key(2000, "Characters per text; longer, 422.")
    max_items: int = key(64, "Texts per request; more, 422.")
    max_body_bytes: int = key(1_000_000, "Request body size; larger, 413.")
    read_timeout: float = key(
        10.0, "Seconds a client has to send its headers (else the connection is closed), then its body (408)."
    )
    allowed_hosts: list[str] = key(
        [], "Host names clients may use besides IP addresses, localhost and --host ('*': any)."
    )

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work; every model folder must be there."""
        for name in ("threads", "max_batch_size", "max_queue", "max_chars", "max_items", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.max_seq_length is not None and self.max_seq_length < 1:
            raise ValueError(f"--max_seq_length must be at least 1, got {self.max_seq_length}")
        if self.max_wait_ms < 0:
            raise ValueError(f"--max_wait_ms must not be negative, got {self.max_wait_ms}")
        if self.read_timeout <= 0:
            raise ValueError(f"--read_timeout must be positive, got {self.read_timeout}")
        self.models()

    def models(self) -> dict[str, str]:
        """``["teacher=DIR", "DIR2"]`` -> ``{"teacher": "DIR", "<DIR2's name>": "DIR2"}``; ValueError for a value
        that is not a folder, or a name given twice."""
        folders: dict[str, str] = {}
        for value in self.model_name_or_path:
            name, separator, folder = value.partition("=")
            if not separator:
                folder = value
                name = os.path.basename(os.path.normpath(value))
            if not os.path.isdir(folder):
                raise ValueError(f"--model_name_or_path {value!r}: {folder!r} is not a folder")
            if name in folders:
                raise ValueError(f"--model_name_or_path {value!r}: the name {name!r} is taken; give NAME=DIR")
            folders[name] = folder
        return folders


def load_predictors(args: ServeArguments) -> dict[str, Predictor]:
    """Each model of ``args`` loaded once, on its backend (an ONNX graph exported into the cache if need be)."""
    from serve.models import load_model
    from serve.predict import Predictor, onnx_backend, torch_backend

    predictors = {}
    for name, folder in args.models().items():
        loaded = load_model(folder, args.max_seq_length)
        if args.backend == "torch":
            backend = torch_backend(loaded)
        else:
            from serve.export import default_onnx_cache, ensure_exported  # only where a graph may be needed

            cache = args.onnx_cache_dir or default_onnx_cache()
            graph = ensure_exported(folder, args.backend == "onnx-int8", cache, loaded)
            backend = onnx_backend(str(graph), args.threads)
        predictors[name] = Predictor(loaded, backend, args.max_batch_size)
        logger.info("%s: %s model from %s on %s", name, loaded.kind, folder, args.backend)
    return predictors


def serve(args: ServeArguments) -> None:
    """Load the models and answer on ``args.host``:``args.port`` until stopped. ValueError or OSError names a model
    folder that cannot be served, before the service starts."""
    args.validate()
    import torch
    import uvicorn

    from serve.app import ServiceSettings, build_app
    from serve.deadline import with_header_deadline

    torch.set_num_threads(args.threads)
    batching = BatchSettings(args.batching, args.max_batch_size, args.max_wait_ms, args.max_queue)
    limits = {"max_chars": args.max_chars, "max_items": args.max_items, "max_body_bytes": args.max_body_bytes}
    hosts = ("localhost", *args.allowed_hosts, args.host)  # other names are most likely a page using DNS rebinding
    settings = ServiceSettings(
        batching, **limits, backend=args.backend, read_timeout=args.read_timeout, allowed_hosts=hosts
    )
    predictors = load_predictors(args)
    app = build_app(predictors, settings)
    print(f"serving {', '.join(predictors)} on http://{args.host}:{args.port}/ (the API: /openapi.json)")
    protocol = with_header_deadline(args.read_timeout)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", http=protocol)


def main(argv: list[str] | None = None) -> int:
    run_command(serve, ServeArguments, argv, "python -m serve", __doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
