"""MMLU's subjects in the four groups of its paper (Hendrycks et al., 2021), for leave-one-domain-out.

A router judged on a subject group it never trained on says whether it learned "what is hard" or
only "which subjects are hard". The grouping is the paper's; the source of each prompt is the CSV
file stem (``mmlu_<subject>``) the dataset reader records.
"""

from __future__ import annotations

STEM = (
    "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
    "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
    "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
    "high_school_mathematics high_school_physics high_school_statistics machine_learning"
)
HUMANITIES = (
    "formal_logic high_school_european_history high_school_us_history high_school_world_history "
    "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
    "prehistory professional_law world_religions"
)
SOCIAL_SCIENCES = (
    "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics "
    "high_school_microeconomics high_school_psychology human_sexuality professional_psychology "
    "public_relations security_studies sociology us_foreign_policy"
)
OTHER = (
    "business_ethics clinical_knowledge college_medicine global_facts human_aging management marketing "
    "medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology"
)
GROUPS: dict[str, frozenset[str]] = {
    "mmlu-stem": frozenset(STEM.split()),
    "mmlu-humanities": frozenset(HUMANITIES.split()),
    "mmlu-social": frozenset(SOCIAL_SCIENCES.split()),
    "mmlu-other": frozenset(OTHER.split()),
}


def mmlu_group(source: str) -> str:
    """``mmlu_college_physics`` -> ``mmlu-stem``; a ``ValueError`` for a subject in no group."""
    subject = source.removeprefix("mmlu_")
    for group, subjects in GROUPS.items():
        if subject in subjects:
            return group
    raise ValueError(f"MMLU subject {subject!r} is in no group")
