"""transformers' own tokenizer tests against both KoBERT classes, on the real files (data/kobert): TokenizerTesterMixin
with the tokenizers-backend mixin for KoBertTokenizerFast and the SentencePiece-backend mixin for KoBertTokenizer,
from the source release of the installed transformers (tests/transformers_suite.py; ``make`` fetches it), set up as a
model's tokenizer test is in transformers. The integration expectations are kobert-transformers 0.6.0's. Each of the
mixins' assumptions that does not hold for KoBERT by design is skipped by name, with the reason (BOTH, SLOW)."""

from __future__ import annotations

import functools
import sys
import unittest
from collections.abc import Callable
from typing import ClassVar

import pytest
from conftest import KOBERT_FILES, ROOT
from transformers_suite import is_fetched, location

from tokenization_kobert import KoBertTokenizer, KoBertTokenizerFast

if not is_fetched(location()):
    pytest.skip(
        f"transformers' tokenizer tests are not in {location()}: run `make` (or python tests/transformers_suite.py)",
        allow_module_level=True,
    )
sys.path.insert(0, str(location()))
from transformers_tests.test_sentencepiece_backend_mixin import SentencePieceBackendTesterMixin
from transformers_tests.test_tokenization_common import TokenizerTesterMixin
from transformers_tests.test_tokenizers_backend_mixin import TokenizersBackendTesterMixin

KOBERT_DIR = str(ROOT / "data" / "kobert")

# The mixins' tests whose assumption KoBERT does not share, by design, and why. Nothing else is skipped.
BOTH = {
    "test_tokenizer_initialization_with_conflicting_key": "builds the tokenizer from vocab=/merges= keyword "
    "arguments; KoBERT's classes are built from their SentencePiece model and vocab.txt, as kobert-transformers' are",
    "test_integration": "its decode step expects '生[UNK]' (kobert-transformers glues a special token to the text "
    "before it); ours keeps special tokens apart, '生 [UNK]', by design (test_tokenization_kobert.py::"
    "test_decode_keeps_special_tokens_apart); its tokens and ids are checked in test_integration_tokens_and_ids",
}
SLOW = {
    "test_alignment_methods": "calls BatchEncoding.words(), which transformers gives only to tokenizers-backed "
    "encodings: in transformers' own set-up this mixin gets AutoTokenizer's fast class (tested in "
    "KoBertTokenizerFastTest)",
    "test_add_tokens_tokenizer": "expects ' l' to be one token; KoBERT's vocabulary has no '▁l', so SentencePiece "
    "gives '▁', 'l' (kobert-transformers too)",
}


@functools.cache
def reference_expectations(text: str) -> dict[str, object]:
    """The integration test's expectations, from kobert-transformers 0.6.0 (the independent oracle)."""
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer

    reference = ReferenceKoBertTokenizer(**KOBERT_FILES)
    ids = reference.encode(text, add_special_tokens=False)
    return {
        "integration_expected_tokens": reference.tokenize(text),
        "integration_expected_token_ids": ids,
        "integration_expected_decoded_text": reference.decode(ids, clean_up_tokenization_spaces=False),
    }


def set_up_like_transformers(inapplicable: dict[str, str]) -> Callable[[type], type]:
    """The reference's expectations on the mixin's integration string, and the inapplicable tests skipped."""

    def decorate(cls: type) -> type:
        for name, reason in inapplicable.items():
            setattr(cls, name, unittest.skip(reason)(getattr(cls, name)))
        for name, value in reference_expectations(cls.integration_test_input_string).items():
            setattr(cls, name, value)
        return cls

    return decorate


class KoBertTokenizerSetUp:
    """What both test classes share: the real files through AutoTokenizer, as transformers' model tests load them, and
    test_integration's first two checks (its third is the decode spacing in BOTH)."""

    from_pretrained_id: ClassVar[list[str]] = [KOBERT_DIR]
    from_pretrained_kwargs: ClassVar[dict[str, bool]] = {"trust_remote_code": True}
    test_tokenizer_from_extractor = False  # builds the class from vocab=/merges=: see BOTH

    def test_integration_tokens_and_ids(self) -> None:
        tokenizer = self.tokenizer_class.from_pretrained(KOBERT_DIR)
        self.assertEqual(tokenizer.tokenize(self.integration_test_input_string), self.integration_expected_tokens)
        ids = tokenizer.encode(self.integration_test_input_string, add_special_tokens=False)
        self.assertEqual(ids, self.integration_expected_token_ids)


@set_up_like_transformers(BOTH)
class KoBertTokenizerFastTest(
    KoBertTokenizerSetUp, TokenizerTesterMixin, TokenizersBackendTesterMixin, unittest.TestCase
):
    tokenizer_class = KoBertTokenizerFast
    rust_tokenizer_class = KoBertTokenizerFast


@set_up_like_transformers(BOTH | SLOW)
class KoBertTokenizerTest(
    KoBertTokenizerSetUp, TokenizerTesterMixin, SentencePieceBackendTesterMixin, unittest.TestCase
):
    tokenizer_class = KoBertTokenizer
    test_sentencepiece = True  # TokenizerTesterMixin's False would hide the SentencePiece mixin's own tests
