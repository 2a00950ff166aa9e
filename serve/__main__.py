"""Serve one or several model folders over HTTP: batched predictions, sentence vectors, a page to try them.

    python -m serve --model runs/mini/nsmc/distilled/best --backend onnx-int8 --port 8000
    python -m serve --model teacher=runs/mini/nsmc/teacher/best --model student=runs/mini/nsmc/distilled/best

Each ``--model`` is ``DIR`` or ``NAME=DIR`` (the name defaults to the folder's): any model folder this project
writes. With ``--backend onnx`` or ``onnx-int8`` a folder without its own ONNX graph (``serve.export --output DIR``
writes ``DIR/onnx/``) is exported and checked on start-up into ``--onnx-cache``, keyed by the folder's contents and
reused by the next start: the model folder is never written (it may be read-only), and the model is loaded once.
Then open http://HOST:PORT/ for the page and http://HOST:PORT/openapi.json for the API.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from common.cli import command_parser
from common.io import setup_logging
from serve.batching import BatchSettings

if TYPE_CHECKING:  # torch, the models and the web framework are imported once the arguments are checked
    from serve.predict import Predictor

logger = logging.getLogger("serve")
BACKENDS = ("torch", "onnx", "onnx-int8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m serve", __doc__)
    parser.add_argument("--model", action="append", required=True, help="DIR or NAME=DIR; repeat for several.")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="What runs the models.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
    parser.add_argument(
        "--onnx-cache",
        default=None,
        help="Where graphs exported on start-up are kept (default: $XDG_CACHE_HOME/distilkobert/onnx); a folder with "
        "its own onnx/ (python -m serve.export --output DIR) is used as it is.",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads of inference.")
    parser.add_argument("--max-length", type=int, help="Tokens per input (default: each model's own limit).")
    parser.add_argument("--no-batching", action="store_true", help="Run every request alone, as it arrives.")
    parser.add_argument("--max-batch-size", type=int, default=32, help="Texts per batch.")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="How long a request waits for others.")
    parser.add_argument("--max-queue", type=int, default=256, help="Texts waiting per model; beyond, 503.")
    parser.add_argument("--max-chars", type=int, default=2000, help="Characters per text; longer, 422.")
    parser.add_argument("--max-items", type=int, default=64, help="Texts per request; more, 422.")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000, help="Request body size; larger, 413.")
    read_timeout_help = "Seconds a client has to send its headers (else the connection is closed), then its body (408)."
    parser.add_argument("--read-timeout", type=float, default=10.0, help=read_timeout_help)
    allowed_host_help = "A host name clients may use besides IP addresses ('*': any); repeat for several."
    parser.add_argument("--allowed-host", action="append", default=["localhost"], help=allowed_host_help)
    args = parser.parse_args(argv)
    for name in ("threads", "max_batch_size", "max_queue", "max_chars", "max_items", "max_body_bytes", "max_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.max_wait_ms < 0:
        parser.error(f"--max-wait-ms must not be negative, got {args.max_wait_ms}")
    if args.read_timeout <= 0:
        parser.error(f"--read-timeout must be positive, got {args.read_timeout}")
    args.models = model_folders(parser, args.model)
    if args.onnx_cache is None:
        from serve.export import default_onnx_cache

        args.onnx_cache = str(default_onnx_cache())
    return args


def model_folders(parser: argparse.ArgumentParser, values: list[str]) -> dict[str, str]:
    """``["teacher=DIR", "DIR2"]`` -> ``{"teacher": "DIR", "<DIR2's name>": "DIR2"}``; each folder must exist."""
    folders: dict[str, str] = {}
    for value in values:
        name, separator, folder = value.partition("=")
        if not separator:
            folder = value
            name = os.path.basename(os.path.normpath(value))
        if not os.path.isdir(folder):
            parser.error(f"--model {value!r}: {folder!r} is not a folder")
        if name in folders:
            parser.error(f"--model {value!r}: the name {name!r} is taken; give NAME=DIR")
        folders[name] = folder
    return folders


def load_predictors(args: argparse.Namespace) -> dict[str, Predictor]:
    from serve.models import load_model
    from serve.predict import Predictor, onnx_backend, torch_backend

    predictors = {}
    for name, folder in args.models.items():
        loaded = load_model(folder, args.max_length)
        if args.backend == "torch":
            backend = torch_backend(loaded)
        else:
            from serve.export import ensure_exported  # the exporter's imports only where a graph may be needed

            graph = ensure_exported(folder, args.backend == "onnx-int8", args.onnx_cache, loaded)
            backend = onnx_backend(str(graph), args.threads)
        predictors[name] = Predictor(loaded, backend, args.max_batch_size)
        logger.info("%s: %s model from %s on %s", name, loaded.kind, folder, args.backend)
    return predictors


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = parse_args(argv)
    import torch
    import uvicorn

    from serve.app import ServiceSettings, build_app
    from serve.deadline import with_header_deadline

    torch.set_num_threads(args.threads)
    batching = BatchSettings(not args.no_batching, args.max_batch_size, args.max_wait_ms, args.max_queue)
    limits = {"max_chars": args.max_chars, "max_items": args.max_items, "max_body_bytes": args.max_body_bytes}
    hosts = (*args.allowed_host, args.host)  # other names are most likely a page using DNS rebinding
    settings = ServiceSettings(
        batching, **limits, backend=args.backend, read_timeout=args.read_timeout, allowed_hosts=hosts
    )
    try:
        app = build_app(load_predictors(args), settings)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err
    print(f"serving {', '.join(args.models)} on http://{args.host}:{args.port}/ (the API: /openapi.json)")
    protocol = with_header_deadline(args.read_timeout)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", http=protocol)


if __name__ == "__main__":
    main()
