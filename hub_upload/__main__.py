"""Build, validate and push a release of a model to the Hugging Face Hub.

    python -m hub_upload --model runs/distilkobert/final --repo-id USER/distilkobert \
        --results runs/finetune/distilkobert/*/results.json --dry-run --output runs/release/distilkobert
    HF_TOKEN=... python -m hub_upload --model runs/distilkobert/final --repo-id USER/distilkobert \
        --results runs/finetune/distilkobert/*/results.json --tag v1.0

The release folder holds the weights (safetensors) and config, the tokenizer files (SentencePiece model, vocab.txt,
tokenizer.json, tokenizer_config.json with an auto_map to both classes), ``tokenization_kobert.py`` as remote code,
and README.md, a model card built from the saved config, pretraining records and results files. A sentence encoder
(a sentence-transformers folder, as ``sentence.*`` write) keeps its modules and pooling and gets a card of its own:
pipeline tag sentence-similarity, the STS table of ``sentence.evaluate --output`` files given as --results, usage
with sentence-transformers and with plain transformers. It is validated in a
fresh offline process before anything is sent; ``--dry-run`` stops there and leaves it in ``--output``. The token
comes from HF_TOKEN or the stored login and is never printed or written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, get_token

from common.cli import command_parser
from common.io import check_output_folder, output_written, publish_folder, quiet_file_progress_bars, staging_folder
from hub_upload.card import build_card
from hub_upload.sentence_card import build_sentence_card, read_evaluation_rows
from hub_upload.validate import check_model_folder, has_mlm_head

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m hub_upload", __doc__)
    parser.add_argument("--model", required=True, help="Model folder (save_pretrained), with its tokenizer.")
    parser.add_argument("--repo-id", required=True, help="Hub repository, namespace/name.")
    parser.add_argument(
        "--results",
        nargs="*",
        default=[],
        help="results.json files of fine-tuning this model; for a sentence encoder, sentence.evaluate --output files.",
    )
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--revision", default=None, help="Branch to push to (created if missing).")
    parser.add_argument("--tag", default=None, help="Tag the pushed commit.")
    parser.add_argument("--commit-message", default=None, help="Commit message (default: 'Upload NAME').")
    parser.add_argument("--license", default="apache-2.0", help="License id for the model card.")
    parser.add_argument("--dry-run", action="store_true", help="Build and validate only; needs --output.")
    parser.add_argument("--output", default=None, help="Where to leave the release folder.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing non-empty --output folder.")
    args = parser.parse_args(argv)
    if not REPO_ID.match(args.repo_id):
        parser.error(f"--repo-id must be namespace/name, got {args.repo_id!r}")
    if args.dry_run and not args.output:
        parser.error("--dry-run needs --output DIR to leave the release folder in")
    if args.output:
        check_output_folder(parser, args.output, args.overwrite)
    return args


def read_results(paths: list[str], model: str, repo_id: str) -> list[dict[str, Any]]:
    """Results files, each of a model fine-tuned from ``model`` (or from the repo itself)."""
    results = []
    for path in paths:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(result, dict) or not result.get("model"):
            raise ValueError(
                f"{path}: not a fine-tuning results file (it names no model: finetune.* writes results.json "
                "with the model it started from)"
            )
        started_from = result["model"]
        if os.path.realpath(started_from) != os.path.realpath(model) and started_from != repo_id:
            raise ValueError(f"{path}: results of {started_from!r}, not of {model!r}")
        results.append(result)
    return results


def read_optional_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_tokenizer_size(source: Path, tokens: int, embeddings: int) -> None:
    if tokens != embeddings:
        raise ValueError(
            f"{source}: the tokenizer has {tokens} tokens but the model has {embeddings} embeddings; "
            "they do not belong together"
        )


def build_sentence_release(args: argparse.Namespace, folder: Path) -> None:
    """A sentence-transformers folder as saved (modules, pooling, our tokenizer) and its card into ``folder``."""
    from modeling.student import size_mb
    from sentence.model import encoder_summary, load_encoder

    encoder = load_encoder(args.model, max_seq_length=None)
    transformer = encoder[0].auto_model
    check_tokenizer_size(Path(args.model), len(encoder.tokenizer), transformer.config.vocab_size)
    row, rows = read_evaluation_rows(args.results, args.model)
    encoder.save(str(folder))
    card = build_sentence_card(
        args.repo_id, folder, encoder_summary(encoder), size_mb(transformer), args.license, row, rows, args.model
    )
    (folder / "README.md").write_text(card, encoding="utf-8")  # replaces the card sentence-transformers wrote


def build_release(args: argparse.Namespace, folder: Path) -> None:
    """Weights, tokenizer, remote code and model card into ``folder``."""
    from transformers import AutoModel, AutoModelForMaskedLM  # the models where there is work, not for --help

    from modeling.load import has_kobert_tokenizer, load_tokenizer
    from modeling.student import parameter_count, size_mb
    from sentence.model import is_sentence_transformer

    if is_sentence_transformer(args.model):
        build_sentence_release(args, folder)
        return
    source = Path(args.model)
    has_head = has_mlm_head(source)
    model = (AutoModelForMaskedLM if has_head else AutoModel).from_pretrained(source)
    tokenizer = load_tokenizer(str(source))
    check_tokenizer_size(source, len(tokenizer), model.config.vocab_size)
    results = read_results(args.results, args.model, args.repo_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    card = build_card(
        args.repo_id,
        json.loads((folder / "config.json").read_text()),
        parameter_count(model),
        size_mb(model),
        has_head,
        args.license,
        results,
        read_optional_json(source / "distillation.json"),
        read_optional_json(source / "extraction.json"),
        kobert_tokenizer=has_kobert_tokenizer(str(source)),
    )
    (folder / "README.md").write_text(card, encoding="utf-8")


def validate(folder: Path) -> str:
    """Run hub_upload.validate in a fresh, offline process; raise with its message if the folder fails."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "hub_upload.validate", str(folder)], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "validation failed"
        raise ValueError(last.removeprefix("error: "))
    return result.stdout.strip()


def upload(api: HfApi, folder: Path, args: argparse.Namespace, token: str) -> str:
    """Create the repository (and branch) if needed, push the folder in one commit, tag it; returns the commit URL."""
    api.create_repo(args.repo_id, token=token, private=args.private, exist_ok=True)
    if args.revision:
        api.create_branch(args.repo_id, branch=args.revision, token=token, exist_ok=True)
    commit = api.upload_folder(
        repo_id=args.repo_id,
        folder_path=str(folder),
        commit_message=args.commit_message or f"Upload {args.repo_id.split('/')[-1]}",
        revision=args.revision,
        token=token,
    )
    if args.tag:
        api.create_tag(args.repo_id, tag=args.tag, revision=args.revision, token=token, exist_ok=True)
    return str(getattr(commit, "commit_url", commit))


def build_checked_release(args: argparse.Namespace, folder: Path) -> None:
    """The release of ``--model`` in ``folder``, validated in a fresh process; what fails ends the command in one
    line (a full disk naming the folder written)."""
    try:
        with output_written(args.output or folder):
            check_model_folder(Path(args.model))
            build_release(args, folder)
        print(validate(folder))
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}; nothing was uploaded") from err


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet_file_progress_bars()
    token = None if args.dry_run else get_token()
    if not args.dry_run and not token:
        raise SystemExit("error: no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry-run)")
    # Built aside and published only once validated, so a failure leaves --output as it was.
    folder = staging_folder(args.output, "release") if args.output else Path(tempfile.mkdtemp(prefix="release-"))
    try:
        build_checked_release(args, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if args.output:
        publish_folder(folder, args.output)
        folder = Path(args.output)
    if args.dry_run:
        print(f"dry run: release folder left in {folder}; nothing was uploaded")
        return
    url = upload(HfApi(), folder, args, token)
    print(f"uploaded {sorted(p.name for p in folder.iterdir())} to {args.repo_id}: {url}")


if __name__ == "__main__":
    main()
