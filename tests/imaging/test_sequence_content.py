"""Content inference of the sequence type on volumes alone: the features ignore the intensity scale and the order
of a series' volumes, and a series unlike every fitted one keeps no label. Its accuracy on held-out synthetic
patients is measured by bench/sequence_content.py and floored in tests/dicom/test_sequence_labels.py."""

from __future__ import annotations

import numpy as np
import pytest

from brainfm.imaging.sequence_content import content_features, load_model, sequence_from_content
from brainfm.imaging.volumes import Volume
from brainfm.synth.anatomy import Template, load_template
from tests.imaging.test_window import _rendered


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _volume(data: np.ndarray) -> Volume:
    return Volume(data.astype(np.float32), np.eye(4), None)


def test_features_ignore_the_intensity_scale_and_the_order_of_volumes(template: Template) -> None:
    dwi = [_volume(_rendered(template, "DWI", b, False)) for b in (0, 1000)]
    scaled = [_volume(v.data * 7.5) for v in reversed(dwi)]
    features = content_features(dwi)
    assert features is not None
    np.testing.assert_allclose(content_features(scaled), features, rtol=1e-5)
    assert 0.1 < features[-1] < 0.9  # the b = 1000 volume is darker: its spread tells diffusion apart


def test_a_series_unlike_every_fitted_one_or_without_foreground_keeps_no_label(template: Template) -> None:
    """A T1 rendered on the 2 mm MNI template (no bias field, no thick slices, no lesions: unlike the fitted
    cohort's acquisitions) lies far from the fitted T1 series, though that class holds nearly all of the
    probability: the distance rule withholds the label."""
    t1 = _volume(_rendered(template, "T1", 0, False))
    model, features = load_model(), content_features([t1])
    assert features is not None
    assert model.labels[int(np.argmax(model.probabilities(features)))] == "T1"
    assert model.probabilities(features).max() > 0.9
    assert sequence_from_content([t1]) is None
    assert sequence_from_content([_volume(np.full((32, 32, 8), 100.0))]) is None
