"""Study classification: category (8 classes) and subtype (14) logits from the aggregated study embedding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from models.heads.aggregate import StudyHead
from models.heads.study_data import StudyTargets, as_pandas

LABEL_COLUMNS: tuple[str, ...] = ("category", "subtype")


def encode_labels(values: pd.Series, names: Sequence[str]) -> torch.Tensor:
    """Class indices (long) of string labels; raises on a label outside `names`."""
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise ValueError(f"{values.name} labels {unknown} are not among the head's classes {list(names)}; "
                         "build the head with every class of the label table")
    return torch.tensor([index[v] for v in values], dtype=torch.long)


class ClassificationHead(StudyHead):
    """Linear category and subtype classifiers on the study embedding."""

    kind = "classification"

    def __init__(self, dim: int, categories: Sequence[str], subtypes: Sequence[str], hidden: int = 128) -> None:
        super().__init__(dim, hidden)
        self.classes = {"category": list(categories), "subtype": list(subtypes)}
        self.logits = nn.ModuleDict({name: nn.Linear(dim, len(c)) for name, c in self.classes.items()})

    def predict(self, study: torch.Tensor, covariates: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {name: layer(study) for name, layer in self.logits.items()}

    def targets(self, table: pd.DataFrame) -> StudyTargets:
        frame = as_pandas(table, ("study", *LABEL_COLUMNS))
        values = {name: encode_labels(frame[name], classes) for name, classes in self.classes.items()}
        return StudyTargets(tuple(frame["study"]), values)

    def predictions(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per output: the predicted class name and one probability column per class (`p_<output>_<class>`)."""
        columns: dict[str, np.ndarray] = {}
        for name, classes in self.classes.items():
            probs = torch.softmax(torch.as_tensor(outputs[name]), dim=1).numpy()
            columns[name] = np.asarray(classes)[probs.argmax(1)]
            columns |= {f"p_{name}_{c}": probs[:, i] for i, c in enumerate(classes)}
        return columns

    def spec(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "categories": self.classes["category"],
                "subtypes": self.classes["subtype"]}


def classification_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the category plus that of the subtype."""
    return F.cross_entropy(outputs["category"], targets["category"]) + F.cross_entropy(
        outputs["subtype"], targets["subtype"]
    )
