"""Training the identifier tagger (:mod:`brainfm.reports.identifier_tagger`) on labelled identifier sets, and
the leave-one-set-out cross-validation that says what it adds to the rules on a set it has not seen.

Every listed identifier's occurrences (case-insensitively, as :mod:`brainfm.reports.deid_eval` counts them)
are its kind's characters; the rest of a report is "none". Each report is also learnt in its de-identified
form (identifiers replaced by their placeholders, all "none"), so that the tagger leaves placeholders and the
words around them alone: de-identified text must read as clean. While training, characters are dropped to
their class token at random, so that the tagger learns names from where they stand and not only from which
characters they are made of (a name of the next report is made of characters it has never seen).

    python -m brainfm.reports.identifier_tagger_training  # retrain the shipped tagger on the nine sets
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from brainfm.jsonl import read_jsonl
from brainfm.reports.deid_eval import DeidScores, occurrences, score_deid
from brainfm.reports.deid_text import PLACEHOLDERS, identifier_spans
from brainfm.reports.identifier_tagger import (
    DILATIONS,
    FLAGS,
    KINDS,
    PAD,
    SHIPPED,
    SPECIAL_TOKENS,
    IdentifierTagger,
    char_flags,
    code_points,
    id_table,
    unknown_id,
    vocabulary_key,
)
from brainfm.reports.lexicon import simplified
from brainfm.versioning import file_md5

Record = Mapping[str, Any]
DATA = Path(__file__).parents[2] / "tests" / "data" / "reports"
TRAINING_SETS = ("deid_identifiers.jsonl", "deid_identifiers_fresh.jsonl", "deid_identifiers_holdout.jsonl",
                 "deid_identifiers_unseen.jsonl", "deid_identifiers_sealed.jsonl",
                 "deid_identifiers_sealed2.jsonl", "deid_identifiers_sealed3.jsonl",
                 "deid_identifiers_sealed4.jsonl", "deid_identifiers_sealed5.jsonl")  # fmt: skip
IGNORE = -100  # padding, in the labels


class TaggerNet(nn.Module):
    """Character embeddings and flags, a convolution and dilated residual convolutions (receptive field
    ``5 + 2 * sum(dilations)`` characters), and a linear read-out of the classes (none, :data:`KINDS`)."""

    def __init__(
        self,
        vocabulary_size: int,
        embedding: int = 32,
        width: int = 48,
        dilations: tuple[int, ...] = DILATIONS,
    ) -> None:
        super().__init__()
        self.dilations = dilations
        self.embed = nn.Embedding(vocabulary_size, embedding, padding_idx=PAD)
        self.inp = nn.Conv1d(embedding + len(FLAGS), width, 5, padding=2)
        self.blocks = nn.ModuleList(nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in dilations)
        self.out = nn.Conv1d(width, 1 + len(KINDS), 1)

    def forward(self, ids: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
        """Class logits (batch × characters × classes) of ``ids`` (batch × characters) and ``flags``."""
        x = F.relu(self.inp(torch.cat([self.embed(ids), flags], dim=-1).transpose(1, 2)))
        for block in self.blocks:
            x = x + F.relu(block(x))
        return self.out(x).transpose(1, 2)


def to_tagger(net: TaggerNet, vocabulary: dict[str, int], threshold: float) -> IdentifierTagger:
    """The numpy tagger of a trained ``net``."""
    weights = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    return IdentifierTagger(weights, vocabulary, threshold, net.dilations)


def char_labels(record: Record) -> np.ndarray:
    """Each character's class: 0 (none) or 1 + the index in :data:`KINDS` of the identifier covering it."""
    text = record["text"]
    labels = np.zeros(len(text), dtype=np.int64)
    for entry in sorted(record["identifiers"], key=lambda e: len(e["text"])):  # the longer entry wins
        for found in occurrences(text, entry["text"]):
            labels[found.start : found.stop] = 1 + KINDS.index(entry["kind"])
    return labels


def placeholder_form(text: str, labels: np.ndarray) -> str:
    """``text`` with each labelled run replaced by its kind's placeholder (the de-identified report)."""
    parts, i = [], 0
    while i < len(text):
        j = i + 1
        while j < len(text) and labels[j] == labels[i]:
            j += 1
        parts.append(PLACEHOLDERS[KINDS[labels[i] - 1]] if labels[i] else text[i:j])
        i = j
    return "".join(parts)


def _examples(records: Sequence[Record]) -> list[tuple[str, np.ndarray]]:
    """(text in simplified characters, labels) of each report and of its de-identified form."""
    examples = []
    for record in records:
        text, labels = simplified(record["text"]), char_labels(record)
        clean = placeholder_form(text, labels)
        examples += [(text, labels), (clean, np.zeros(len(clean), dtype=np.int64))]
    return examples


def train_tagger(
    records: Sequence[Record],
    seed: int = 0,
    epochs: int = 60,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    char_dropout: float = 0.15,
    threshold: float = 0.6,
    min_count: int = 2,
) -> IdentifierTagger:
    """A tagger trained on ``records`` (labelled like tests/data/reports/deid_identifiers.jsonl), deterministic
    under ``seed``; characters seen fewer than ``min_count`` times read as their class token."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    examples = _examples(records)
    counts = Counter(vocabulary_key(c) for text, _ in examples for c in text)
    chars = sorted(c for c, n in counts.items() if n >= min_count)
    vocabulary = {c: SPECIAL_TOKENS + k for k, c in enumerate(chars)}
    net = TaggerNet(SPECIAL_TOKENS + len(vocabulary))
    ids = id_table(vocabulary)
    encoded = []
    for text, labels in examples:
        encoded.append(
            (
                torch.from_numpy(ids[code_points(text)]),
                torch.from_numpy(char_flags(text)),
                torch.from_numpy(labels),
                torch.tensor([unknown_id(c) for c in text]),
            )
        )
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps = epochs * -(-len(encoded) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps)
    net.train()
    with tqdm(total=steps, desc="identifier tagger", unit="step", leave=False) as bar:
        for _ in range(epochs):
            order = rng.permutation(len(encoded))
            for start in range(0, len(order), batch_size):
                batch = [encoded[k] for k in order[start : start + batch_size]]
                ids = torch.nn.utils.rnn.pad_sequence(
                    [b[0] for b in batch], batch_first=True, padding_value=PAD
                )
                flags = torch.nn.utils.rnn.pad_sequence([b[1] for b in batch], batch_first=True)
                labels = torch.nn.utils.rnn.pad_sequence(
                    [b[2] for b in batch], batch_first=True, padding_value=IGNORE
                )
                unknown = torch.nn.utils.rnn.pad_sequence(
                    [b[3] for b in batch], batch_first=True, padding_value=PAD
                )
                dropped = torch.from_numpy(rng.random(ids.shape) < char_dropout) & (ids >= SPECIAL_TOKENS)
                logits = net(torch.where(dropped, unknown, ids), flags)
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.set_postfix(loss=f"{loss.item():.4f}")
                bar.update()
    return to_tagger(net.eval(), vocabulary, threshold)


def cross_validate(
    sets: Mapping[str, Sequence[Record]], seed: int = 0, **training: Any
) -> dict[str, dict[str, DeidScores]]:
    """For each set: its scores with the rules alone and with the rules and a tagger trained on the other sets."""
    results = {}
    for held_out, records in sets.items():
        tagger = train_tagger(
            [r for name, rs in sets.items() if name != held_out for r in rs], seed, **training
        )
        spans: dict[str, Callable[[str], list]] = {
            "rules": partial(identifier_spans, learned=False),
            "rules + tagger": partial(identifier_spans, tagger=tagger),
        }
        results[held_out] = {name: score_deid(records, spans=f) for name, f in spans.items()}
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Retrain the shipped identifier tagger on labelled sets.")
    parser.add_argument("--sets", type=Path, nargs="+", default=[DATA / name for name in TRAINING_SETS])
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    records = [r for path in args.sets for r in read_jsonl(path)]
    tagger = train_tagger(records, args.seed)
    provenance = {
        "sets": {p.name: file_md5(p) for p in args.sets},
        "seed": args.seed,
        "reports": len(records),
        "command": "python -m brainfm.reports.identifier_tagger_training",
    }
    tagger.save(args.out, provenance)
    print(f"saved the tagger trained on {len(records)} reports to {args.out}")


if __name__ == "__main__":
    main()
