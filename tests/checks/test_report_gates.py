"""The report gates pass the tiny cohort's structured reports and the training data built from them, and fail
them broken one way at a time: schema, identifiers left in the text, a patient on both sides of the split or on
another side than its images, pairs that do not link to a study, no record at all."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from assets.reports import MIN_LINKED_PAIRS, structured_gate, training_text_gate
from assets.resources import DeidSecretResource
from brainfm.jsonl import read_jsonl
from brainfm.raw_layout import RawLayout
from brainfm.reports import build_instruction_data, structure_jsonl

from .conftest import failures

PHONE = "联系电话13800138000"  # a mobile number: found by pattern, planted or not


@pytest.fixture(scope="module")
def structured(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("structured") / "structured.jsonl"
    structure_jsonl(raw / "reports" / "center_a.jsonl", out, DeidSecretResource().pseudonymizer(), "center_a")
    return read_jsonl(out)


@pytest.fixture(scope="module")
def planted(raw: Path) -> list[str]:
    return RawLayout(raw).planted_identifiers()


@pytest.fixture(scope="module")
def training(structured: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pairs, instructions = build_instruction_data(structured)
    for n, pair in enumerate(pairs):
        pair["study"] = f"2.25.{n}"  # linked, as vl_pairs links them through the accession pseudonym
    return pairs, instructions


def _sides(records: list[dict[str, Any]]) -> dict[str, str]:
    return {r["patient"]: r["split"] for r in records}


def test_the_cohort_reports_and_training_data_pass(
    structured: list[dict[str, Any]], training: tuple[list, list], planted: list[str]
) -> None:
    pairs, instructions = training
    assert failures(structured_gate(structured, planted)) == set()
    assert failures(training_text_gate(pairs, planted, _sides(pairs))) == set()
    assert failures(training_text_gate(instructions, planted)) == set()


def test_a_record_off_schema_or_with_an_identifier_fails(
    structured: list[dict[str, Any]], planted: list[str]
) -> None:
    off_schema = copy.deepcopy(structured)
    del off_schema[0]["sections"]
    assert failures(structured_gate(off_schema, planted)) == {"expect_column_values_to_be_between(problems)"}
    leaking = copy.deepcopy(structured)
    leaking[0]["sections"]["findings"] += PHONE
    assert failures(structured_gate(leaking, [])) == {
        "expect_column_values_to_be_between(problems)",  # the schema validation counts identifiers too
        "expect_column_values_to_be_between(identifiers)",
    }
    assert failures(structured_gate([], planted)) == {"expect_table_row_count_to_be_between"}
    assert failures(structured_gate([], planted, sent=False)) == set()  # a center that sent no report table


def test_an_identifier_in_training_text_fails(training: tuple[list, list], planted: list[str]) -> None:
    pairs, instructions = copy.deepcopy(training)
    pairs[0]["impression"] += PHONE
    instructions[0]["messages"][-1]["content"] += max(planted, key=len)  # the answer
    assert failures(training_text_gate(pairs, [], _sides(pairs))) == {
        "expect_column_values_to_be_between(identifiers)"
    }
    assert failures(training_text_gate(instructions, planted)) == {
        "expect_column_values_to_be_between(identifiers)"
    }


def test_a_patient_on_both_sides_or_off_its_images_side_fails(
    training: tuple[list, list], planted: list[str]
) -> None:
    pairs, instructions = copy.deepcopy(training)
    other = {"train": "val", "val": "train"}
    image_sides = _sides(pairs)
    image_sides[pairs[0]["patient"]] = other[pairs[0]["split"]]
    assert failures(training_text_gate(pairs, planted, image_sides)) == {
        "expect_column_values_to_be_in_set(image_side_agrees)"
    }
    moved = {**instructions[0], "split": other[instructions[0]["split"]]}
    assert failures(training_text_gate([*instructions, moved], planted)) == {
        "expect_column_values_to_be_between(sides)"
    }


def test_pairs_that_do_not_link_to_a_study_fail(training: tuple[list, list], planted: list[str]) -> None:
    pairs = copy.deepcopy(training[0])
    unlinked = int(len(pairs) * (1 - MIN_LINKED_PAIRS)) + 1
    for pair in pairs[:unlinked]:
        pair["study"] = None
    assert failures(training_text_gate(pairs, planted, _sides(pairs))) == {
        "expect_column_values_to_be_in_set(linked)"
    }
    assert failures(training_text_gate([], planted, {})) == {"expect_table_row_count_to_be_between"}
