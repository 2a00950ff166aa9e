"""Augmented copies of Korean examples for task-specific distillation (Tang et al., 2019, section 3.3).

    python -m distill.augment --data_file data/nsmc_train.txt.gz --output_file runs/augmented.txt \\
        --mask_per_example 2 --pos_per_example 2 --ngram_per_example 1
    augment(AugmentArguments(data_file="data/nsmc_train.txt.gz", output_file="runs/augmented.txt", ...))  # in Python

    settings = AugmentSettings(mask_per_example=2, pos_per_example=2, ngram_per_example=1, seed=42)
    augmenter = Augmenter(settings, corpus_texts)       # the POS index: the first settings.pos_index_lines texts
    augmenter.augment("영화가 정말 재미있었다", example_index=0)   # up to 5 new texts, none equal to the original

A teacher labels the copies, and the student learns from the enlarged transfer set. Three augmentations, each making
its own copies of an example (``*_per_example`` of them), all on whitespace-separated words (eojeol):

- masking: each word becomes ``[MASK]`` with probability ``mask_rate`` (the teacher's mask token);
- POS-guided replacement: each content morpheme (``CONTENT_TAGS``: nouns, verbs, adjectives, general adverbs) is,
  with probability ``pos_rate``, replaced by another morpheme of the same tag, drawn from that tag's corpus unigram
  distribution (Tang et al.'s "unigram distribution re-normalised by part of speech"), leaving out the morpheme
  itself. Korean is agglutinative, so the morphemes are kiwipiepy's (``Kiwi.tokenize``) and the changed word is
  re-joined by ``Kiwi.join``, which fits particles and endings to the new stem (음악이 -> 영화가); every other word
  keeps its original characters. Without kiwipiepy (not installed, or ``use_kiwi=False``) a simpler rule stands in:
  an eojeol is replaced by another corpus eojeol with the same final syllable, which in Korean is usually its
  particle or ending (영화가 -> 배우가);
- n-gram sampling: a run of n consecutive words, n uniform in 1..``ngram_max`` (Tang et al.'s 1..5).

Tang et al. apply masking and replacement in one pass (p_mask = p_pos = 0.1) and then n-gram sampling with p_ng =
0.25, n_iter = 20 times per example; here each augmentation has its own count, so each can be switched on alone.
A copy equal to the original or to an earlier copy, or empty, is dropped: ``augment`` gives at most the sum of the
counts.

Every copy draws from its own ``random.Random``, seeded with ``"seed/example_index/augmentation/copy"`` (a string
seed is hashed with SHA-512: the same in every process, whatever PYTHONHASHSEED), so shards of a corpus augmented in
any order or process give the same copies.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import logging
import random
import re
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from common.config import key, required, run_command
from common.io import output_written, require_data_files, require_output_place, write_atomic
from distill.examples import no_examples, read_examples

logger = logging.getLogger(__name__)

MASK_TOKEN = "[MASK]"
# Kiwi's (Sejong) tags of content morphemes: common and proper nouns, verbs, adjectives, general adverbs. Left out:
# bound nouns, pronouns, numerals, auxiliaries and the copula (grammar more than content), roots, symbols.
CONTENT_TAGS = frozenset({"NNG", "NNP", "VV", "VA", "MAG"})
FALLBACK_ENGINE = "same final syllable (kiwipiepy not used)"
AUGMENTATIONS = ("mask", "pos", "ngram")  # in the order augment() returns their copies


class Morpheme(NamedTuple):
    form: str
    tag: str  # Kiwi's tag, with its conjugation mark when it has one: "VV-I" (irregular), "VA-R" (regular)
    start: int  # characters of the text it was read from, [start, end)
    end: int


def base_tag(tag: str) -> str:
    """The part of speech without Kiwi's conjugation mark: ``VV-I`` -> ``VV``."""
    return tag.split("-", 1)[0]


def mask_words(words: Sequence[str], rate: float, rng: random.Random, mask_token: str = MASK_TOKEN) -> list[str]:
    """``words`` with each one replaced by ``mask_token`` with probability ``rate``."""
    return [mask_token if rng.random() < rate else word for word in words]


def sample_ngram(words: Sequence[str], max_n: int, rng: random.Random) -> list[str]:
    """A run of n consecutive ``words``, n uniform in 1..min(max_n, len(words)), its start uniform; [] for none."""
    if not words:
        return []
    n = rng.randint(1, min(max_n, len(words)))
    start = rng.randrange(len(words) - n + 1)
    return list(words[start : start + n])


@dataclass(frozen=True)
class Candidates:
    """The replacements of one class (a tag, a final syllable), drawn in proportion to their corpus counts."""

    items: tuple[Hashable, ...]
    cumulative: tuple[int, ...]  # cumulative[i]: the counts of items[0..i] summed
    positions: dict[Hashable, int]

    @classmethod
    def from_counts(cls, counts: dict[Hashable, int]) -> Candidates:
        return cls(tuple(counts), tuple(itertools.accumulate(counts.values())), {k: i for i, k in enumerate(counts)})

    def draw(self, rng: random.Random, exclude: Hashable) -> Hashable | None:
        """An item other than ``exclude``, by count (the distribution renormalised without it); None if none."""
        left_out = self.positions.get(exclude)
        skipped = 0 if left_out is None else self.count(left_out)
        if self.cumulative[-1] == skipped:
            return None
        point = rng.randrange(self.cumulative[-1] - skipped)  # integers: no rounding at the ends
        if left_out is not None and point >= self.cumulative[left_out] - skipped:
            point += skipped  # step over the left-out item's share
        return self.items[bisect.bisect_right(self.cumulative, point)]

    def count(self, position: int) -> int:
        return self.cumulative[position] - (self.cumulative[position - 1] if position else 0)


ReplacementIndex = dict[str, Candidates]


def build_index(entries: Iterable[tuple[str, Hashable]], max_per_class: int) -> ReplacementIndex:
    """Count ``(class, item)`` entries into each class's candidates. A class keeps at most ``max_per_class``
    distinct items (the first seen; later ones still count), so memory is bounded whatever the corpus."""
    counts: dict[str, dict[Hashable, int]] = {}
    for name, item in entries:
        bucket = counts.setdefault(name, {})
        if item in bucket or len(bucket) < max_per_class:
            bucket[item] = bucket.get(item, 0) + 1
    return {name: Candidates.from_counts(bucket) for name, bucket in counts.items()}


def eojeol_class(word: str) -> str:
    """The fallback's class of an eojeol: its final syllable, in Korean usually its particle or ending."""
    return word[-1]


def replace_eojeols(words: Sequence[str], index: ReplacementIndex, rate: float, rng: random.Random) -> list[str]:
    """The fallback replacement: each word, with probability ``rate``, replaced by another corpus eojeol of its class
    (``eojeol_class``); a word whose class has no other candidate stays."""
    replaced = []
    for word in words:
        candidates = index.get(eojeol_class(word))
        new = candidates.draw(rng, word) if candidates and rng.random() < rate else None
        replaced.append(word if new is None else new)
    return replaced


def replace_morphemes(
    text: str,
    words: Sequence[Sequence[Morpheme]],
    index: ReplacementIndex,
    rate: float,
    rng: random.Random,
    join: Callable[[list[tuple[str, str, bool]]], str],
) -> str:
    """``text`` with each content morpheme (``CONTENT_TAGS``), with probability ``rate``, replaced by another of its
    tag from ``index`` (items ``(form, tag)``). ``words`` holds the morphemes of each word of ``text``
    (``morphemes_by_word``). A changed word's morphemes are re-joined by ``join`` (``Kiwi.join``, which fits
    particles and endings to the new stem); every other character of ``text`` stays as it was."""
    pieces, done = [], 0
    for word in words:
        changed = [replacement(morpheme, index, rate, rng) for morpheme in word]
        if changed != [(morpheme.form, morpheme.tag) for morpheme in word]:
            pieces += [text[done : word[0].start], join([(form, tag, False) for form, tag in changed])]
            done = max(morpheme.end for morpheme in word)
    return "".join([*pieces, text[done:]])


def morphemes_by_word(text: str, morphemes: Iterable[Morpheme]) -> list[list[Morpheme]]:
    """The morphemes of each whitespace-separated word of ``text``, by where they start."""
    spans = [match.span() for match in re.finditer(r"\S+", text)]
    starts = [start for start, _ in spans]
    words: list[list[Morpheme]] = [[] for _ in spans]
    for morpheme in morphemes:
        words[bisect.bisect_right(starts, morpheme.start) - 1].append(morpheme)
    return [word for word in words if word]


def replacement(morpheme: Morpheme, index: ReplacementIndex, rate: float, rng: random.Random) -> tuple[str, str]:
    """``morpheme`` as ``(form, tag)``, or, with probability ``rate`` if it is a content morpheme, another."""
    original = (morpheme.form, morpheme.tag)
    candidates = index.get(base_tag(morpheme.tag))
    if base_tag(morpheme.tag) not in CONTENT_TAGS or candidates is None or rng.random() >= rate:
        return original
    return candidates.draw(rng, original) or original


def kiwi_version() -> str | None:
    """kiwipiepy's and its model's versions, or None when they cannot be imported."""
    try:
        import kiwipiepy
        import kiwipiepy_model
    except ImportError:
        return None
    return f"kiwipiepy {kiwipiepy.__version__} (model {kiwipiepy_model.__version__})"


def replacement_engine(settings: AugmentSettings) -> str | None:
    """What replaces words under ``settings``: kiwipiepy's and its model's versions, the fallback, or None without
    replaced copies (so that a cache without them outlives a kiwipiepy upgrade)."""
    if not settings.pos_per_example:
        return None
    return (kiwi_version() if settings.use_kiwi else None) or FALLBACK_ENGINE


@functools.cache
def shared_kiwi() -> Any:
    """One Kiwi per process (it loads a model, about a second). One thread: shards run as processes. No multi-word
    dictionary, so that every morpheme lies inside one eojeol."""
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=1, load_multi_dict=False)


def kiwi_morphemes(analyses: Iterable[Any]) -> Iterator[Morpheme]:
    """Kiwi's tokens as ``Morpheme``s."""
    return (Morpheme(token.form, token.tag, token.start, token.end) for token in analyses)


def copy_rng(seed: int, example_index: int, augmentation: str, copy: int) -> random.Random:
    """The random stream of one copy: independent of every other copy, example and process."""
    return random.Random(f"{seed}/{example_index}/{augmentation}/{copy}")


def field_problem(kind: str, value: Any) -> str | None:
    """What is wrong with a setting's value, by its kind, or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    integer = isinstance(value, int) and not isinstance(value, bool)
    if kind == "rate" and not (number and 0 <= value <= 1):
        return f"must be a share in [0, 1], got {value!r}"
    if kind == "count" and not (integer and value >= 0):
        return f"must be an integer >= 0, got {value!r}"
    if kind == "positive" and not (integer and value >= 1):
        return f"must be an integer >= 1, got {value!r}"
    if kind == "integer" and not integer:
        return f"must be an integer, got {value!r}"
    if kind == "flag" and not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    return None


def setting(default: Any, kind: str, help: str) -> Any:
    return field(default=default, metadata={"kind": kind, "help": help})


@dataclass(frozen=True)
class AugmentSettings:
    """How many copies of each example each augmentation makes, and how. Recorded in a logits cache's fingerprint
    (``as_dict``); the commands' options are these fields (``AugmentationOptions``: ``--mask_rate``)."""

    mask_rate: float = setting(0.1, "rate", "Share of the words of a masked copy replaced by [MASK] (Tang: 0.1).")
    mask_per_example: int = setting(0, "count", "Masked copies of each example.")
    pos_rate: float = setting(0.1, "rate", "Share of the content morphemes (or words) of a copy replaced (Tang: 0.1).")
    pos_per_example: int = setting(0, "count", "Copies of each example with words replaced by same-POS ones.")
    ngram_max: int = setting(5, "positive", "Longest n-gram sampled, in words: n is uniform in 1..this (Tang: 5).")
    ngram_per_example: int = setting(0, "count", "N-gram samples of each example.")
    seed: int = setting(42, "integer", "Seed of every copy's random stream (with the example's index).")
    pos_index_lines: int = setting(20_000, "positive", "Corpus lines read for the replacement index.")
    pos_index_words: int = setting(10_000, "positive", "Distinct replacements kept per tag (or final syllable).")
    use_kiwi: bool = setting(True, "flag", "Kiwi morphemes for the replacement; else same-final-syllable eojeols.")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            if problem := field_problem(spec.metadata["kind"], getattr(self, spec.name)):
                raise ValueError(f"{spec.name} {problem}")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation makes copies."""
        return any(getattr(self, f"{name}_per_example") > 0 for name in AUGMENTATIONS)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Augmenter:
    """Augments examples by ``AugmentSettings``, replacing words from an index of ``corpus`` texts (its first
    ``pos_index_lines``, read only when ``pos_per_example`` > 0)."""

    def __init__(self, settings: AugmentSettings, corpus: Iterable[str]) -> None:
        self.settings = settings
        self.pos_engine = replacement_engine(settings)
        self.kiwi = None
        self.index: ReplacementIndex = {}
        if self.pos_engine is None:
            return
        if self.pos_engine != FALLBACK_ENGINE:
            self.kiwi = shared_kiwi()
        elif settings.use_kiwi:
            logger.warning("kiwipiepy cannot be imported: words are replaced by %s", FALLBACK_ENGINE)
        texts = itertools.islice(corpus, settings.pos_index_lines)
        self.index = build_index(self.index_entries(texts), settings.pos_index_words)

    def describe(self) -> dict[str, Any]:
        """What decides the copies: the settings and the replacement engine (``replacement_engine``)."""
        return {**self.settings.as_dict(), "pos_engine": self.pos_engine}

    def index_entries(self, texts: Iterable[str]) -> Iterator[tuple[str, Hashable]]:
        if self.kiwi is None:
            yield from ((eojeol_class(word), word) for text in texts for word in text.split())
            return
        for analyses in self.kiwi.tokenize(texts):
            for morpheme in kiwi_morphemes(analyses):
                if base_tag(morpheme.tag) in CONTENT_TAGS:
                    yield base_tag(morpheme.tag), (morpheme.form, morpheme.tag)

    def augment(self, text: str, example_index: int) -> list[str]:
        """The new copies of ``text`` (example number ``example_index`` of its file): masked, then replaced, then
        n-grams; none empty, equal to ``text`` or to an earlier copy."""
        words = text.split()
        if not words:
            return []
        makers = {"mask": self.masker, "pos": self.replacer, "ngram": self.sampler}
        seen, copies = {text, " ".join(words)}, []
        for name in AUGMENTATIONS:
            count = getattr(self.settings, f"{name}_per_example")
            make = makers[name](text, words) if count else None
            for copy in range(count):
                new = make(copy_rng(self.settings.seed, example_index, name, copy))
                if new and new not in seen:
                    seen.add(new)
                    copies.append(new)
        return copies

    def masker(self, text: str, words: list[str]) -> Callable[[random.Random], str]:
        return lambda rng: " ".join(mask_words(words, self.settings.mask_rate, rng))

    def sampler(self, text: str, words: list[str]) -> Callable[[random.Random], str]:
        return lambda rng: " ".join(sample_ngram(words, self.settings.ngram_max, rng))

    def replacer(self, text: str, words: list[str]) -> Callable[[random.Random], str]:
        rate = self.settings.pos_rate
        if self.kiwi is None:
            return lambda rng: " ".join(replace_eojeols(words, self.index, rate, rng))
        by_word = morphemes_by_word(text, kiwi_morphemes(self.kiwi.tokenize(text)))  # analysed once for all copies
        return lambda rng: replace_morphemes(text, by_word, self.index, rate, rng, self.kiwi.join)


SETTINGS_FIELDS = {spec.name: spec for spec in dataclasses.fields(AugmentSettings)}


def setting_option(name: str) -> Any:
    """An options field with the default and help of the ``AugmentSettings`` field ``name``: one home for both."""
    spec = SETTINGS_FIELDS[name]
    return key(spec.default, spec.metadata["help"])


@dataclass(kw_only=True)
class AugmentationOptions:
    """The augmentation's options of a command (``distill.augment``, ``distill.cache_logits``): the fields of
    ``AugmentSettings``, but for the seed, which each command names (``seed_option``)."""

    seed_option: ClassVar[str] = "seed"  # the field of the command's options that holds the augmentation's seed

    mask_rate: float = setting_option("mask_rate")
    mask_per_example: int = setting_option("mask_per_example")
    pos_rate: float = setting_option("pos_rate")
    pos_per_example: int = setting_option("pos_per_example")
    ngram_max: int = setting_option("ngram_max")
    ngram_per_example: int = setting_option("ngram_per_example")
    pos_index_lines: int = setting_option("pos_index_lines")
    pos_index_words: int = setting_option("pos_index_words")
    use_kiwi: bool = setting_option("use_kiwi")

    def option_of(self, name: str) -> str:
        """The option that holds the settings field ``name``."""
        return self.seed_option if name == "seed" else name

    def check_augmentation(self) -> None:
        """ValueError naming the option whose value ``AugmentSettings`` would refuse."""
        for name, spec in SETTINGS_FIELDS.items():
            option = self.option_of(name)
            if problem := field_problem(spec.metadata["kind"], getattr(self, option)):
                raise ValueError(f"--{option} {problem}")

    def augment_settings(self) -> AugmentSettings:
        return AugmentSettings(**{name: getattr(self, self.option_of(name)) for name in SETTINGS_FIELDS})


@dataclass(kw_only=True)
class AugmentArguments(AugmentationOptions):
    """What ``python -m distill.augment`` reads."""

    data_file: str = required("NSMC-format TSV (id, document, label) or plain text; .gz ok.")
    output_file: str = required("Text file of the augmented copies, one per line.")
    seed: int = setting_option("seed")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work; the data file must be there."""
        self.check_augmentation()
        if not self.augment_settings().enabled:
            counts = ", ".join(f"--{name}_per_example" for name in AUGMENTATIONS)
            raise ValueError(f"nothing to write: give at least one of {counts} a count above 0")
        require_data_files(self, ["data_file"])
        require_output_place(self.output_file, "--output_file", folder=False)


@dataclass
class AugmentReport:
    data_file: str
    output_file: str
    copies: int  # texts written
    pos_engine: str | None  # what replaced words (``replacement_engine``), None without replaced copies


def write_augmented(data: str, output: str, augmenter: Augmenter) -> int:
    """Write the copies of every example of ``data`` to ``output``, one per line, streaming; returns how many."""
    written = 0

    def write(staging: Path) -> None:
        nonlocal written
        examples = 0
        with open(staging, "w", encoding="utf-8") as f:
            for example_index, example in enumerate(read_examples(data)):
                examples += 1
                for text in augmenter.augment(example.text, example_index):
                    f.write(text + "\n")
                    written += 1
        if examples == 0:
            raise no_examples(data, "--data_file")

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with output_written(output, "--output_file"):
        write_atomic(output, write)
    return written


def augment(args: AugmentArguments) -> AugmentReport:
    """Write the augmented copies of every example of ``args.data_file`` to ``args.output_file``, one a line (each
    example's copies in the order of ``Augmenter.augment``). ValueError or OSError names the option or the input that
    cannot work; nothing is half-written."""
    args.validate()
    augmenter = Augmenter(args.augment_settings(), (example.text for example in read_examples(args.data_file)))
    written = write_augmented(args.data_file, args.output_file, augmenter)
    return AugmentReport(args.data_file, args.output_file, written, augmenter.pos_engine)


def main(argv: list[str] | None = None) -> int:
    report = run_command(augment, AugmentArguments, argv, "python -m distill.augment", __doc__)
    replacement = report.pos_engine or "none"
    print(  # noqa: T201
        f"wrote {report.copies} augmented texts of {report.data_file} to {report.output_file} "
        f"(replacement: {replacement})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
