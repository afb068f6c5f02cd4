"""The hand-offs of the data stages (standardize, cleanse, curate, featurize) to the stages after them."""

from typing import Literal

from pydantic import ConfigDict, RootModel

from pillars.core import layout
from pillars.core.handoffs import Contract, Handoff


# standardize -> curate, package
class ColumnDescription(Contract):
    source: str  # the column's name in the raw data
    dtype: str
    role: Literal["target", "lineage", "datetime", "boolean", "numeric", "categorical"]


class StandardColumns(RootModel[dict[str, ColumnDescription]]):
    """Each standardized column (canonical name) described."""

    model_config = ConfigDict(frozen=True)


class TargetEncoding(Contract):
    task: Literal["binary", "multiclass", "regression"]
    column: str
    labels: dict[str, int]  # the target's values -> class codes (empty for regression)


# cleanse -> package
class CleanseReport(Contract):
    outlier_limits: dict[str, list[int | float | None]]  # column -> [low, high] clip limits, as written


# curate -> featurize, package, assess
class ColumnSelection(Contract):
    target: str
    features: dict[str, str]  # column -> role, in the order the feature pipeline takes them
    dropped: dict[str, str]  # column -> why
    lineage: list[str]


class CurationReport(Contract):
    rows: dict[str, int]  # split -> rows


# featurize -> train, validate_model, assess, make budget
class FeatureSource(Contract):
    name: str  # the matrix column
    source: str  # the curated column it comes from


class FeatureManifest(Contract):
    target: str
    inputs: dict[str, str]  # curated column -> role
    features: list[FeatureSource]


STANDARD_COLUMNS = Handoff(layout.STANDARD_COLUMNS, StandardColumns)
TARGET_ENCODING = Handoff(layout.TARGET_ENCODING, TargetEncoding)
CLEANSE_REPORT = Handoff(layout.CLEANSE_REPORT, CleanseReport)
COLUMN_SELECTION = Handoff(layout.COLUMN_SELECTION, ColumnSelection)
CURATION_REPORT = Handoff(layout.CURATION_REPORT, CurationReport)
FEATURE_MANIFEST = Handoff(layout.FEATURE_MANIFEST, FeatureManifest)
HANDOFFS = (
    STANDARD_COLUMNS,
    TARGET_ENCODING,
    CLEANSE_REPORT,
    COLUMN_SELECTION,
    CURATION_REPORT,
    FEATURE_MANIFEST,
)
