"""Build, validate and push a release of a model to the Hugging Face Hub.

    python -m hub_upload --model_name_or_path runs/distilkobert/final --repo_id USER/distilkobert \
        --results_files runs/finetune/distilkobert/*/results.json --dry_run --output_dir runs/release/distilkobert
    HF_TOKEN=... python -m hub_upload --model_name_or_path runs/distilkobert/final --repo_id USER/distilkobert \
        --results_files runs/finetune/distilkobert/*/results.json --tag v1.0

The release folder holds the weights (safetensors) and config, the tokenizer files (SentencePiece model, vocab.txt,
tokenizer.json, tokenizer_config.json with an auto_map to both classes), ``tokenization_kobert.py`` as remote code,
and README.md, a model card built from the saved config, pretraining records and results files. A sentence encoder
(a sentence-transformers folder, as ``sentence.*`` write) keeps its modules and pooling and gets a card of its own:
pipeline tag sentence-similarity, the STS table of ``sentence.evaluate --output_file`` files given as --results_files,
usage with sentence-transformers and with plain transformers. It is validated in a fresh offline process
(``hub_upload.validate``) before anything is sent; ``--dry_run`` stops there and leaves it in ``--output_dir``. The
token comes from HF_TOKEN or the stored login and is never printed or written. From Python:
``upload(UploadArguments(model_name_or_path=..., repo_id=..., dry_run=True, output_dir=...))``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, get_token

from common.config import key, required, run_command
from common.io import (
    output_written,
    publish_folder,
    quiet_file_progress_bars,
    require_output_folder,
    staging_folder,
)
from hub_upload.card import build_card
from hub_upload.sentence_card import build_sentence_card, read_evaluation_rows
from hub_upload.validate import check_model_folder, has_mlm_head

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass(kw_only=True)
class UploadArguments:
    """What ``python -m hub_upload`` reads."""

    model_name_or_path: str = required("Model folder (save_pretrained), with its tokenizer.")
    repo_id: str = required("Hub repository, namespace/name.")
    results_files: list[str] = key(
        [], "results.json files of fine-tuning this model; for a sentence encoder, sentence.evaluate's --output_file."
    )
    private: bool = key(False, "Create the repository as private.")
    revision: str | None = key(None, "Branch to push to (created if missing).")
    tag: str | None = key(None, "Tag the pushed commit.")
    commit_message: str | None = key(None, "Commit message (default: 'Upload NAME').")
    license: str = key("apache-2.0", "License id for the model card.")
    dry_run: bool = key(False, "Build and validate only; needs --output_dir.")
    output_dir: str | None = key(None, "Where to leave the release folder.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir folder.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work (the model folder is checked by ``upload``)."""
        if not REPO_ID.match(self.repo_id):
            raise ValueError(f"--repo_id must be namespace/name, got {self.repo_id!r}")
        if self.dry_run and not self.output_dir:
            raise ValueError("--dry_run needs --output_dir DIR to leave the release folder in")
        for path in self.results_files:
            if not os.path.isfile(path):
                raise ValueError(f"--results_files: no such file: {path}")
        if self.output_dir:
            require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class UploadReport:
    repo_id: str
    folder: Path  # the release folder: --output_dir, or a temporary folder
    validation: str  # what the fresh process that validated it said
    url: str | None = None  # the pushed commit; None for a dry run


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


def build_sentence_release(args: UploadArguments, folder: Path) -> None:
    """A sentence-transformers folder as saved (modules, pooling, our tokenizer) and its card into ``folder``."""
    from modeling.student import size_mb
    from sentence.model import encoder_summary, load_encoder

    encoder = load_encoder(args.model_name_or_path, max_seq_length=None)
    transformer = encoder[0].auto_model
    check_tokenizer_size(Path(args.model_name_or_path), len(encoder.tokenizer), transformer.config.vocab_size)
    row, rows = read_evaluation_rows(args.results_files, args.model_name_or_path)
    encoder.save(str(folder))
    card = build_sentence_card(
        args.repo_id,
        folder,
        encoder_summary(encoder),
        size_mb(transformer),
        args.license,
        row,
        rows,
        args.model_name_or_path,
    )
    (folder / "README.md").write_text(card, encoding="utf-8")  # replaces the card sentence-transformers wrote


def build_release(args: UploadArguments, folder: Path) -> None:
    """Weights, tokenizer, remote code and model card into ``folder``."""
    from transformers import AutoModel, AutoModelForMaskedLM  # the models where there is work, not for --help

    from modeling.load import has_kobert_tokenizer, load_tokenizer
    from modeling.student import parameter_count, size_mb
    from sentence.model import is_sentence_transformer

    if is_sentence_transformer(args.model_name_or_path):
        build_sentence_release(args, folder)
        return
    source = Path(args.model_name_or_path)
    has_head = has_mlm_head(source)
    model = (AutoModelForMaskedLM if has_head else AutoModel).from_pretrained(source)
    tokenizer = load_tokenizer(str(source))
    check_tokenizer_size(source, len(tokenizer), model.config.vocab_size)
    results = read_results(args.results_files, args.model_name_or_path, args.repo_id)
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
    command = [sys.executable, "-m", "hub_upload.validate", "--release_dir", str(folder)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "validation failed"
        raise ValueError(last.removeprefix("error: "))
    return result.stdout.strip()


def push(api: HfApi, folder: Path, args: UploadArguments, token: str) -> str:
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


def build_checked_release(args: UploadArguments, folder: Path) -> str:
    """The release of ``--model_name_or_path`` in ``folder``, validated in a fresh process (what it said is
    returned); ValueError naming what failed (a full disk ends the command in one line naming the folder written)."""
    try:
        with output_written(args.output_dir or folder, "--output_dir"):
            check_model_folder(Path(args.model_name_or_path))
            build_release(args, folder)
        return validate(folder)
    except (ValueError, OSError) as err:
        raise ValueError(f"{err}; nothing was uploaded") from err


def upload(args: UploadArguments) -> UploadReport:
    """Build the release of ``args.model_name_or_path``, validate it offline in a fresh process, leave it in
    ``args.output_dir`` (if given) and, unless ``args.dry_run``, push it to ``args.repo_id``. ValueError or OSError
    names what is wrong; nothing is uploaded then, and ``args.output_dir`` is as it was."""
    args.validate()
    quiet_file_progress_bars()
    token = None if args.dry_run else get_token()
    if not args.dry_run and not token:
        raise ValueError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry_run)")
    # Built aside and published only once validated, so a failure leaves --output_dir as it was.
    output = args.output_dir
    folder = staging_folder(output, "release") if output else Path(tempfile.mkdtemp(prefix="release-"))
    try:
        validation = build_checked_release(args, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if output:
        publish_folder(folder, output)
        folder = Path(output)
    if args.dry_run:
        return UploadReport(args.repo_id, folder, validation)
    return UploadReport(args.repo_id, folder, validation, push(HfApi(), folder, args, token))


def main(argv: list[str] | None = None) -> int:
    report = run_command(upload, UploadArguments, argv, "python -m hub_upload", __doc__)
    print(report.validation)
    if report.url is None:
        print(f"dry run: release folder left in {report.folder}; nothing was uploaded")
    else:
        files = sorted(p.name for p in report.folder.iterdir())
        print(f"uploaded {files} to {report.repo_id}: {report.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
