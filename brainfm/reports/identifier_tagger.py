"""A statistical identifier tagger for report text: a small character CNN, trained here on the hand-written
identifier sets and shipped with its weights (``identifier_tagger/``), that marks each character as part of a
name, ID, phone number, date, hospital or address, or of none.

Why a learned tagger beside the rules: three rounds of rules (:mod:`brainfm.reports.deid_text`,
:mod:`brainfm.reports.person_names`) find every identifier of the sets they were written on, and 83 % of a set
in formats they never met. The tagger learns from the sets' labels where identifiers stand (after which labels,
in which lines, in which shapes) rather than from a list someone wrote down, and deid_text runs it after the
rules, where it only adds what they leave uncovered. A general NER library was not taken: the Chinese ones
(HanLP, LAC, spaCy's zh models) download their weights at run time, and the pipeline may fetch nothing.

Each character is read as its id in a vocabulary of the training text's frequent characters (digits folded to
0, Latin letters to lower case, anything rarer to a token of its class, so that an unseen character of a name
reads as "a Chinese character") and as flags: its class, whether a surname or a compound surname starts there,
whether a clinical word of the report lexicon covers it, whether it lies in a placeholder such as ``[姓名]``.
Dilated convolutions see about 30 characters on each side. A run of characters whose probability of being
some identifier reaches the threshold is a span, trimmed of spaces and punctuation, never across a line or a
placeholder, and dropped when a clinical word covers it whole; its kind is the kind most probable over it.
What a caller keeps of a span must pass :func:`could_be` (a span's shape as an identifier of its kind), which
deid_text applies to the parts the rules left uncovered only, as it costs a dictionary cut.

Training and cross-validation: :mod:`brainfm.reports.identifier_tagger_training`; figures: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from threadpoolctl import ThreadpoolController

from brainfm.reports.lexicon import alternation
from brainfm.reports.person_names import (
    COMPOUND_SURNAMES,
    SURNAMES,
    WORD_SURNAMES,
    all_ordinary_words,
    inside_long_word,
    vetoed_words,
)

KINDS = ("name", "id", "phone", "date", "hospital", "address")  # class k + 1 of the net; class 0: none
SHIPPED = Path(__file__).with_name("identifier_tagger")  # model.safetensors and tagger.json
PAD, UNK_CJK, UNK_LATIN, UNK_OTHER = 0, 1, 2, 3  # the vocabulary's first ids
SPECIAL_TOKENS = 4
FLAGS = (
    "cjk", "digit", "upper", "lower", "space", "colon", "punctuation", "other",
    "surname", "compound_surname", "word_surname", "clinical", "placeholder",
)  # fmt: skip
# Any placeholder deid_text writes in place of an identifier (deid_text reads it from here too).
PLACEHOLDER = re.compile(r"\[(?:姓名|编号|医院|电话|日期|医师|地址|标识)\]")
_SINGLE_SURNAMES = frozenset(SURNAMES) - WORD_SURNAMES
_COMPOUND_SURNAME = re.compile(alternation(COMPOUND_SURNAMES))
_ASTRAL = 0x10000  # the row of the per-character tables for every character beyond the BMP
_MAX_CLINICAL = 8  # the longest clinical word looked for
DILATIONS = (1, 2, 4, 8, 16)  # of the net's residual convolutions (receptive field 5 + 2 * 31 characters)


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


def _char_class(char: str) -> str:
    if _is_cjk(char):
        return "cjk"
    if char.isdigit():
        return "digit"
    if char.isalpha():
        return "upper" if char.isupper() else "lower"
    if char.isspace():
        return "space"
    if char in ":：":
        return "colon"
    return "punctuation" if unicodedata.category(char).startswith("P") else "other"


def vocabulary_key(char: str) -> str:
    """The vocabulary entry a character reads as: digits as 0, Latin letters in lower case."""
    return "0" if char.isdigit() else char.lower()


def unknown_id(char: str) -> int:
    """The id of a character outside the vocabulary: the token of its class."""
    if _is_cjk(char):
        return UNK_CJK
    return UNK_LATIN if char.isalpha() else UNK_OTHER


def code_points(text: str) -> np.ndarray:
    """Each character's row in the per-character tables: its code point, or :data:`_ASTRAL` beyond the BMP."""
    return np.minimum(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), _ASTRAL)


def id_table(vocabulary: dict[str, int]) -> np.ndarray:
    """The id of every character of the BMP in ``vocabulary``, or of its class token; last, the id of any
    character beyond it (CJK extensions B–G, in reports)."""
    ids = [vocabulary.get(vocabulary_key(chr(cp))) or unknown_id(chr(cp)) for cp in range(_ASTRAL)]
    return np.array([*ids, UNK_CJK], dtype=np.int64)


@cache
def _flag_table() -> np.ndarray:
    """The flags that depend on the character alone (class, surname), for every row of :func:`code_points`."""
    table = np.zeros((_ASTRAL + 1, len(FLAGS)), dtype=np.float32)
    for cp in range(_ASTRAL):
        table[cp, FLAGS.index(_char_class(chr(cp)))] = 1.0
    table[_ASTRAL, FLAGS.index("cjk")] = 1.0
    table[[ord(c) for c in _SINGLE_SURNAMES], FLAGS.index("surname")] = 1.0
    table[[ord(c) for c in WORD_SURNAMES], FLAGS.index("word_surname")] = 1.0
    return table


def _clinical_cover(text: str) -> np.ndarray:
    """Whether a clinical word of the lexicon (the words no name may be or cross) covers each character."""
    words, beginnings = vetoed_words()
    cover = np.zeros(len(text), dtype=bool)
    starts = [i for i in range(len(text) - 1) if text[i : i + 2] in beginnings]  # most positions start none
    for i in starts:
        for j in range(i + 2, min(len(text), i + _MAX_CLINICAL) + 1):
            if text[i:j] not in beginnings:
                break
            if text[i:j] in words:
                cover[i:j] = True
    return cover


def char_flags(text: str) -> np.ndarray:
    """The flags (:data:`FLAGS`) of each character of ``text``, as a float32 array (characters × flags)."""
    flags = _flag_table()[code_points(text)]
    for column, pattern in (("compound_surname", _COMPOUND_SURNAME), ("placeholder", PLACEHOLDER)):
        for m in pattern.finditer(text):
            flags[m.start() : m.end(), FLAGS.index(column)] = 1.0
    flags[_clinical_cover(text), FLAGS.index("clinical")] = 1.0
    return flags


@cache
def _blas() -> ThreadpoolController:
    """The BLAS thread pools: the tagger's products (a few hundred rows) run on one thread, as handing them to
    more costs more than it saves, and de-identification runs in worker processes that must not oversubscribe
    the cores."""
    return ThreadpoolController()


def _conv(x: np.ndarray, matrix: np.ndarray, bias: np.ndarray, dilation: int) -> np.ndarray:
    """``nn.Conv1d`` (same padding) of ``x`` (characters × channels) as one product of its shifted copies with
    ``matrix`` (:func:`_conv_matrix`)."""
    taps, length = matrix.shape[0] // x.shape[1], x.shape[0]
    pad = dilation * (taps // 2)
    padded = np.zeros((length + 2 * pad, x.shape[1]), dtype=np.float32)
    padded[pad : pad + length] = x
    shifted = np.concatenate([padded[k * dilation : k * dilation + length] for k in range(taps)], axis=1)
    return shifted @ matrix + bias


def _conv_matrix(weight: np.ndarray) -> np.ndarray:
    """A ``Conv1d`` weight (out × in × taps) as the matrix (taps · in × out) that :func:`_conv` multiplies by."""
    return np.ascontiguousarray(weight.transpose(2, 1, 0).reshape(-1, weight.shape[0]))


@dataclass(frozen=True)
class IdentifierTagger:
    """A trained tagger: the net's weights, its vocabulary (character -> id) and its decision threshold on
    P(some identifier).

    The net is trained with torch (:class:`~brainfm.reports.identifier_tagger_training.TaggerNet`) and run here with numpy, one report at a time: on a
    report of a few hundred characters torch's per-operation overhead costs more than the arithmetic (about
    1.3 ms against 0.3 ms a report on one core), and de-identification must keep its throughput.
    """

    weights: dict[str, np.ndarray]
    vocabulary: dict[str, int]
    threshold: float
    dilations: tuple[int, ...] = DILATIONS
    ids: np.ndarray = field(init=False, repr=False)  # id_table(vocabulary)
    matrices: dict[str, np.ndarray] = field(init=False, repr=False)  # each convolution's _conv_matrix
    # The first convolution's part on the embeddings, folded into them: per tap, each id's contribution
    # (taps × (ids + 1) × width; the last id, all zeros, stands beyond the text's ends).
    embedded: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = self.weights
        convolutions = (k.removesuffix(".weight") for k in w if k.endswith(".weight") and k != "embed.weight")
        matrices = {k: _conv_matrix(w[f"{k}.weight"]) for k in convolutions}
        embedding, width = w["embed.weight"].shape[1], w["inp.weight"].shape[0]
        rows = matrices.pop("inp").reshape(-1, embedding + len(FLAGS), width)
        table = np.concatenate([w["embed.weight"], np.zeros((1, embedding), np.float32)])
        matrices["inp_flags"] = np.ascontiguousarray(rows[:, embedding:].reshape(-1, width))
        object.__setattr__(self, "ids", id_table(self.vocabulary))
        object.__setattr__(self, "matrices", matrices)
        object.__setattr__(self, "embedded", np.stack([table @ tap[:embedding] for tap in rows]))

    def logits(self, text: str, flags: np.ndarray) -> np.ndarray:
        """The net's class logits (characters × (1 + len(KINDS))) of ``text`` with its ``flags``."""
        w, m = self.weights, self.matrices
        taps, outside = self.embedded.shape[0], self.embedded.shape[1] - 1
        ids = np.pad(self.ids[code_points(text)], taps // 2, constant_values=outside)
        with _blas().limit(limits=1, user_api="blas"):
            x = _conv(flags, m["inp_flags"], w["inp.bias"], 1)
            for k in range(taps):
                x += self.embedded[k][ids[k : k + len(text)]]
            x = np.maximum(x, 0)
            for k, dilation in enumerate(self.dilations):
                x = x + np.maximum(_conv(x, m[f"blocks.{k}"], w[f"blocks.{k}.bias"], dilation), 0)
            return _conv(x, m["out"], w["out.bias"], 1)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """What the net reads as identifiers in ``text``: sorted ``(start, end, kind)``, before :func:`could_be`
        (which the caller applies to what it keeps of them)."""
        if not text:
            return []
        flags = char_flags(text)
        logits = self.logits(text, flags)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        clinical, placeholder = (
            flags[:, FLAGS.index("clinical")] > 0,
            flags[:, FLAGS.index("placeholder")] > 0,
        )
        on = (1.0 - probs[:, 0] >= self.threshold) & ~placeholder & (code_points(text) != ord("\n"))
        found = []
        bounds = np.flatnonzero(np.diff(on, prepend=False, append=False))  # each run's start and end
        for start, end in zip(bounds[::2].tolist(), bounds[1::2].tolist(), strict=True):
            while start < end and _edge_char(text[start]):
                start += 1
            while end > start and _edge_char(text[end - 1]):
                end -= 1
            if end > start and not clinical[start:end].all():
                found.append((start, end, KINDS[int(probs[start:end, 1:].sum(axis=0).argmax())]))
        return found

    def save(self, folder: Path, provenance: dict[str, Any]) -> None:
        """``folder/model.safetensors`` and ``folder/tagger.json`` (vocabulary, threshold, how it was trained)."""
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.weights, folder / "model.safetensors")
        chars = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        meta = {
            "threshold": self.threshold,
            "dilations": list(self.dilations),
            "vocabulary": "".join(chars),
            "provenance": provenance,
        }
        (folder / "tagger.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )


_DIGIT = re.compile(r"[0-9０-９]")
# Shapes a number the tagger reads must also have, as clinical text is full of numbers (b值 1000 2000, 复查间隔
# 3 6 12 个月): a date with a date word, or a year with a month, or day and month with a year; a mobile number, a
# landline with its area code, or eight digits; an ID of four digits or more, or of letters and digits.
_SHAPES = {
    "date": re.compile(
        r".*(?:\d[年月日号]|(?:19|20)\d{2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)?\d{2}\b).*"
    ),
    "phone": re.compile(r"(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}|0\d{2,3}[- ]?\d{7,8}(?:转\d+)?|\d{8}"),
    "id": re.compile(r".*(?:\d{4}|[A-Za-z][-_]?\d|\d[-_]?[A-Za-z]).*"),
}
# Shapes a number of a kind never has: a range of years (2019-2021年) or a version (V10.2.11) is no date, a
# measurement (Skyra 3.0T, a number with one decimal point) no ID, nor a marker or isotope (Ki-67, Tc-99m: a
# lower-case letter, three digits at most).
_NOT_SHAPES = {
    "date": re.compile(r"(?:19|20)\d{2}[-~–至到](?:19|20)\d{2}年?|[A-Za-z]+\d{1,3}(?:\.\d{1,3})+"),
    "id": re.compile(r".*(?<![\d.])\d+\.\d+(?![\d.]).*|[A-Za-z]*[a-z][A-Za-z]*-?\d{1,3}[a-z]?"),
}
_LATIN_WORD = re.compile(r"[A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ÿ]+")  # capitalised: Seen at is one
_UNIT_NEXT = re.compile(r"\s*(?:mm|cm|ms|s/mm|ml|mg|层|个月|年|天|周|次|岁)")


def could_be(text: str, start: int, end: int, kind: str) -> bool:
    """``text[start:end]`` could be an identifier of ``kind`` on its own: two characters or more, cutting no
    word of Latin letters and digits; a number has its kind's shape (and none it never has) and no unit after it;
    a name or a place in Latin script has two capitalised words or more, and in Chinese starts and ends in no long
    dictionary word (维吾尔|语, 韦克斯|勒) and is a word that jieba reads as a name or place, or one it does not know (主任, 出院, 简单说明
    and 于昨日 are none)."""
    span = text[start:end]
    if end - start < 2 or _inside_word(text, start) or _inside_word(text, end):
        return False
    if kind in _SHAPES:
        not_shape = _NOT_SHAPES.get(kind)
        return (
            bool(_SHAPES[kind].fullmatch(span))
            and not (not_shape and not_shape.fullmatch(span))
            and not _UNIT_NEXT.match(text, end)
        )
    if not any(_is_cjk(c) for c in span):  # one Latin word is as likely no name (MEDICAL CENTRE, Seen at)
        return len(_LATIN_WORD.findall(span)) >= 2
    return not (inside_long_word(text, start) or inside_long_word(text, end) or all_ordinary_words(span))


def _inside_word(text: str, at: int) -> bool:
    """``at`` cuts a word of Latin letters and digits, maybe joined by ``-/.:`` (FL|AIR, ZY20|23, 10:|05): no
    span starts or ends there."""
    if not 0 < at < len(text):
        return False
    before, after = text[at - 1], text[at]
    if _latin_or_digit(before) and _latin_or_digit(after):
        return True
    joined = before in _JOINERS and at >= 2 and _latin_or_digit(text[at - 2]) and _latin_or_digit(after)
    return joined or (
        after in _JOINERS and _latin_or_digit(before) and at + 1 < len(text) and _latin_or_digit(text[at + 1])
    )


_JOINERS = frozenset("-/.:：")


def _latin_or_digit(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _edge_char(char: str) -> bool:
    """A character a span never starts or ends with: spaces and punctuation."""
    return _char_class(char) in ("space", "colon", "punctuation")


def load_tagger(folder: Path = SHIPPED) -> IdentifierTagger:
    """The tagger saved in ``folder`` (by default the one shipped with brainfm)."""
    meta = json.loads((folder / "tagger.json").read_text(encoding="utf-8"))
    vocabulary = {c: SPECIAL_TOKENS + k for k, c in enumerate(meta["vocabulary"])}
    return IdentifierTagger(
        load_file(folder / "model.safetensors"),
        vocabulary,
        float(meta["threshold"]),
        tuple(meta["dilations"]),
    )


@cache
def shipped_tagger() -> IdentifierTagger:
    """The shipped tagger, loaded once per process."""
    return load_tagger()
