"""Label silver STS pairs with a cross-encoder, for a bi-encoder to train on beside the gold pairs (Augmented SBERT,
Thakur et al. 2021: a cross-encoder learns the few gold pairs better than a bi-encoder, and passes that on through
many new pairs it scores).

    python -m sentence.silver --cross-encoder runs/sentence/cross-encoder/best \
        --sentences ../shared/data/korsts/sts-train.tsv --sampler neighbours --encoder runs/mini/distilled/final \
        --output runs/sentence/silver.tsv
    python -m sentence.sts --model runs/mini/distilled/final --train ../shared/data/korsts/sts-train.tsv \
        --silver runs/sentence/silver.tsv --dev ../shared/data/korsts/sts-dev.tsv --output runs/sentence/augmented

Each distinct sentence of --sentences (STS, NLI or text files, ``sentence.data``) is paired with --pairs-per-sentence
others: drawn at random (seeded), or its nearest neighbours by --encoder's cosine similarity (Thakur et al.'s
semantic-search sampling: random pairs are nearly all unrelated). A pair is kept once, whichever its order. The
output is a KorSTS TSV (genre ``silver``, the cross-encoder's score x 5), written whole or not at all.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from common.cli import command_parser
from common.io import check_output_place, output_written, write_text
from common.readers import KORSTS_HEADER, STS_MAX_SCORE
from sentence.arguments import setup_command_logging
from sentence.data import sentences

SAMPLERS = ("random", "neighbours")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("python -m sentence.silver", __doc__)
    parser.add_argument("--cross-encoder", required=True, help="The teacher: a sentence.cross_encoder folder.")
    parser.add_argument(
        "--sentences",
        nargs="+",
        required=True,
        help="STS, NLI or text files (or Hub STS or NLI datasets) of sentences to pair.",
    )
    parser.add_argument("--output", required=True, help="The silver pairs: a KorSTS TSV file.")
    parser.add_argument(
        "--sampler", choices=SAMPLERS, default="neighbours", help="How a sentence's partners are chosen."
    )
    parser.add_argument("--encoder", default=None, help="The bi-encoder whose neighbours --sampler neighbours takes.")
    parser.add_argument("--pairs-per-sentence", type=int, default=3, help="Partners of each sentence.")
    parser.add_argument("--max-sentences", type=int, default=None, help="Pair at most this many distinct sentences.")
    parser.add_argument("--max-seq-length", type=int, default=128, help="Tokens per input, special tokens included.")
    parser.add_argument("--batch-size", type=int, default=64, help="Pairs or sentences per model call.")
    parser.add_argument("--seed", type=int, default=42, help="Seeds the random sampler.")
    args = parser.parse_args(argv)
    if args.sampler == "neighbours" and not args.encoder:
        parser.error("--sampler neighbours needs --encoder (a bi-encoder whose nearest neighbours are the partners)")
    if args.pairs_per_sentence < 1:
        parser.error("--pairs-per-sentence must be at least 1")
    check_output_place(parser, args.output, folder=False)
    return args


def distinct(texts: Any, limit: int | None) -> list[str]:
    """The distinct sentences in their first order, at most ``limit``."""
    return list(dict.fromkeys(texts))[:limit]


def random_partners(count: int, per_sentence: int, seed: int) -> list[tuple[int, int]]:
    """Each sentence with ``per_sentence`` distinct others at random: drawn from the ``count - 1`` others by shifting
    the draws at or above ``i`` by one (no list of the others per sentence, which would cost count² steps)."""
    generator = random.Random(seed)
    return [(i, j + (j >= i)) for i in range(count) for j in generator.sample(range(count - 1), per_sentence)]


def neighbour_partners(encoder_path: str, texts: list[str], per_sentence: int, args: Any) -> list[tuple[int, int]]:
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from sentence.model import load_cross_encoder  # torch and sentence-transformers: after the arguments

    setup_command_logging()
    try:
        texts = distinct(sentences(args.sentences, None), args.max_sentences)
        if len(texts) <= args.pairs_per_sentence:
            raise ValueError(
                f"{', '.join(args.sentences)}: {len(texts)} distinct sentences, too few to pair each "
                f"with {args.pairs_per_sentence} others"
            )
        cross_encoder = load_cross_encoder(args.cross_encoder, args.max_seq_length)
        if args.sampler == "random":
            drawn = random_partners(len(texts), args.pairs_per_sentence, args.seed)
        else:
            drawn = neighbour_partners(args.encoder, texts, args.pairs_per_sentence, args)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err
    pairs = unordered(drawn)
    scores = cross_encoder.predict([(texts[i], texts[j]) for i, j in pairs], batch_size=args.batch_size)
    text = "\n".join(silver_lines(texts, pairs, scores, args.sampler)) + "\n"
    with output_written(args.output):
        write_text(args.output, text)
    print(f"{len(pairs)} silver pairs of {len(texts)} sentences: {args.output}")
    return {"pairs": len(pairs), "sentences": len(texts)}


if __name__ == "__main__":
    main()
