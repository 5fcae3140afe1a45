"""``brainfm predict``: the deployed models on one study (or a folder of studies) from a hospital's export.

The application layer joining the core (``brainfm``: reading, ingest, geometry, output formats) and
``models/`` (the encoder and adapters): ``study`` ingests a study through the training-time ingest and maps
predictions back to its geometry, ``outputs`` writes NIfTI, DICOM SEG and SR (highdicom), overlays and JSON,
``run`` loads and runs the models (:class:`~brainfm.predict.run.Predictor`, batch mode) and ``cli`` adds the
subcommand. torch and ``models`` are imported lazily, inside the functions that run models, and the package's
attributes load on first use, so ``brainfm --help`` imports neither torch nor highdicom.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IngestedStudy": "brainfm.predict.study",
    "Predictor": "brainfm.predict.run",
    "StudyError": "brainfm.predict.study",
    "default_models_dir": "brainfm.predict.run",
    "ingest_study": "brainfm.predict.study",
    "predict_batch": "brainfm.predict.run",
}
__all__ = ["IngestedStudy", "Predictor", "StudyError", "default_models_dir", "ingest_study", "predict_batch"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'brainfm.predict' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
