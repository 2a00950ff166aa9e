"""Label silver STS pairs with a cross-encoder, for a bi-encoder to train on beside the gold pairs (Augmented SBERT,
Thakur et al. 2021: a cross-encoder learns the few gold pairs better than a bi-encoder, and passes that on through
many new pairs it scores).

    python -m sentence.silver --cross_encoder_name_or_path runs/sentence/cross-encoder/best \
        --sentences ../shared/data/korsts/sts-train.tsv --sampler neighbours \
        --encoder_name_or_path runs/mini/distilled/final --output_file runs/sentence/silver.tsv
    python -m sentence.sts --model_name_or_path runs/mini/distilled/final \
        --train_file ../shared/data/korsts/sts-train.tsv --silver runs/sentence/silver.tsv \
        --test_file ../shared/data/korsts/sts-dev.tsv --output_dir runs/sentence/augmented

Each distinct sentence of --sentences (STS, NLI or text files, ``sentence.pairs``) is paired with --pairs_per_sentence
others: drawn at random (seeded), or its nearest neighbours by --encoder_name_or_path's cosine similarity (Thakur et
al.'s semantic-search sampling: random pairs are nearly all unrelated). A pair is kept once, whichever its order. The
output is a KorSTS TSV (genre ``silver``, the cross-encoder's score x 5), written whole or not at all.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from typing import Any, Literal

from common.config import key, required, run_command
from common.io import output_written, require_data_files, require_output_place, write_text
from common.readers import KORSTS_HEADER, STS_MAX_SCORE
from sentence.arguments import setup_command_logging
from sentence.pairs import sentences

Sampler = Literal["random", "neighbours"]


@dataclass(kw_only=True)
class SilverArguments:
    cross_encoder_name_or_path: str = required("The teacher: a sentence.cross_encoder folder.")
    sentences: list[str] = required("STS, NLI or text files (or Hub STS or NLI datasets) of sentences to pair.")
    output_file: str = required("The silver pairs: a KorSTS TSV file.")
    sampler: Sampler = key("neighbours", "How a sentence's partners are chosen.")
    encoder_name_or_path: str | None = key(None, "The bi-encoder whose neighbours --sampler neighbours takes.")
    pairs_per_sentence: int = key(3, "Partners of each sentence.")
    max_sentences: int | None = key(None, "Pair at most this many distinct sentences.")
    max_seq_length: int = key(128, "Tokens per input, special tokens included.")
    batch_size: int = key(64, "Pairs or sentences per model call.")
    seed: int = key(42, "Seeds the random sampler.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work, before anything is read."""
        if self.sampler == "neighbours" and not self.encoder_name_or_path:
            raise ValueError(
                "--sampler neighbours needs --encoder_name_or_path (a bi-encoder whose nearest neighbours are the "
                "partners)"
            )
        if self.pairs_per_sentence < 1:
            raise ValueError("--pairs_per_sentence must be at least 1")
        if self.batch_size < 1:
            raise ValueError("--batch_size must be at least 1")
        require_data_files(self, ("sentences",))
        require_output_place(self.output_file, "--output_file", folder=False)


def distinct(texts: Any, limit: int | None) -> list[str]:
    """The distinct sentences in their first order, at most ``limit``."""
    return list(dict.fromkeys(texts))[:limit]


def random_partners(count: int, per_sentence: int, seed: int) -> list[tuple[int, int]]:
    """Each sentence with ``per_sentence`` distinct others at random: drawn from the ``count - 1`` others by shifting
    the draws at or above ``i`` by one (no list of the others per sentence, which would cost count² steps)."""
    generator = random.Random(seed)
    return [(i, j + (j >= i)) for i in range(count) for j in generator.sample(range(count - 1), per_sentence)]


def neighbour_partners(
    encoder_path: str, texts: list[str], per_sentence: int, args: SilverArguments
) -> list[tuple[int, int]]:
    """Each sentence with its ``per_sentence`` most similar others (cosine of the encoder's embeddings)."""
    from sentence_transformers import util

    from sentence.model import load_encoder

    encoder = load_encoder(encoder_path, max_seq_length=args.max_seq_length)
    embeddings = encoder.encode(texts, batch_size=args.batch_size, convert_to_tensor=True, normalize_embeddings=True)
    hits = util.semantic_search(embeddings, embeddings, top_k=per_sentence + 1)
    return [(i, hit["corpus_id"]) for i, found in enumerate(hits) for hit in found if hit["corpus_id"] != i][
        : len(texts) * per_sentence
    ]


def unordered(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each pair once, whichever order it was drawn in (first occurrence kept)."""
    return list(dict.fromkeys(tuple(sorted(pair)) for pair in pairs))


def silver_lines(texts: list[str], pairs: list[tuple[int, int]], scores: Any, sampler: str) -> list[str]:
    lines = ["\t".join(KORSTS_HEADER)]
    for number, ((i, j), score) in enumerate(zip(pairs, scores, strict=True)):
        lines.append(f"silver\t{sampler}\t-\t{number:06d}\t{STS_MAX_SCORE * float(score):.3f}\t{texts[i]}\t{texts[j]}")
    return lines


def label_silver_pairs(args: SilverArguments) -> dict[str, Any]:
    """Pair the distinct sentences of ``args.sentences``, score the pairs with the cross-encoder and write them to
    ``args.output_file``; returns how many pairs of how many sentences, and the file. ValueError or OSError names an
    option or input that cannot work, before anything is written."""
    args.validate()
    from sentence.model import load_cross_encoder  # torch and sentence-transformers: after the arguments

    setup_command_logging()
    texts = distinct(sentences(args.sentences, None), args.max_sentences)
    if len(texts) <= args.pairs_per_sentence:
        raise ValueError(
            f"{', '.join(args.sentences)}: {len(texts)} distinct sentences, too few to pair each "
            f"with {args.pairs_per_sentence} others"
        )
    cross_encoder = load_cross_encoder(args.cross_encoder_name_or_path, args.max_seq_length)
    if args.sampler == "random":
        drawn = random_partners(len(texts), args.pairs_per_sentence, args.seed)
    else:
        drawn = neighbour_partners(args.encoder_name_or_path, texts, args.pairs_per_sentence, args)
    pairs = unordered(drawn)
    scores = cross_encoder.predict([(texts[i], texts[j]) for i, j in pairs], batch_size=args.batch_size)
    text = "\n".join(silver_lines(texts, pairs, scores, args.sampler)) + "\n"
    with output_written(args.output_file, "--output_file"):
        write_text(args.output_file, text)
    return {"pairs": len(pairs), "sentences": len(texts), "output_file": args.output_file}


def main(argv: list[str] | None = None) -> int:
    report = run_command(label_silver_pairs, SilverArguments, argv, "python -m sentence.silver", __doc__)
    print(f"{report['pairs']} silver pairs of {report['sentences']} sentences: {report['output_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
