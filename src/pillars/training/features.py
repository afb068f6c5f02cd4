"""The feature pipeline: fitted on train by `featurize`, applied unchanged when serving.

Numeric columns are imputed (with a missing-value indicator) and scaled; categorical columns are one-hot
encoded, with categories rarer than `min_category_share` in train - and categories never seen in train -
sharing one `infrequent` column.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from pillars.core.data_handoffs import FeatureManifest
from pillars.core.params import FeaturizeParams

MISSING_CATEGORY = "missing"
FEATURE_DTYPE = np.float32


def as_float(values: pd.DataFrame) -> np.ndarray:
    """Numeric and boolean columns as float64, missing as NaN."""
    return values.astype("float64").to_numpy()


def as_text(values: pd.DataFrame) -> np.ndarray:
    """Categorical columns as an object array with NaN for missing, which the imputer fills."""
    return values.astype(object).where(values.notna(), np.nan).to_numpy()


def build_pipeline(features: dict[str, str], settings: FeaturizeParams) -> ColumnTransformer:
    """An unfitted feature pipeline for the selected columns (name -> role from curate)."""
    numeric = [name for name, role in features.items() if role in ("numeric", "boolean")]
    categorical = [name for name, role in features.items() if role == "categorical"]
    numeric_steps = [
        ("as_float", FunctionTransformer(as_float, feature_names_out="one-to-one")),
        (
            "impute",
            SimpleImputer(strategy=settings.numeric_impute, add_indicator=True, keep_empty_features=True),
        ),
    ]
    if settings.scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps = [
        ("as_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
        (
            "encode",
            OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=settings.min_category_share or None,
                sparse_output=False,
                dtype=FEATURE_DTYPE,
            ),
        ),
    ]
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), numeric),
            ("categorical", Pipeline(categorical_steps), categorical),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def feature_sources(pipeline: ColumnTransformer) -> dict[str, str]:
    """Each output feature's source column: the longest input name the feature is named after."""
    sources = {}
    for _, branch, columns in pipeline.transformers_:
        if branch == "drop" or not len(columns):
            continue
        by_length = sorted(columns, key=len, reverse=True)
        for feature in branch.get_feature_names_out(columns):
            sources[str(feature)] = next(
                (
                    column
                    for column in by_length
                    if feature in (column, f"missingindicator_{column}") or feature.startswith(f"{column}_")
                ),
                feature,
            )
    return sources


def categorical_blocks(manifest: FeatureManifest, columns: list[str]) -> tuple[tuple[int, ...], ...]:
    """The positions (in `columns`, the feature matrix's) of each categorical input's one-hot columns, in the
    manifest's order of inputs: what a model that splits on categories natively codes back into one column."""
    sources = {feature.name: feature.source for feature in manifest.features}
    blocks: dict[str, list[int]] = {
        name: [] for name, role in manifest.inputs.items() if role == "categorical"
    }
    for position, column in enumerate(columns):
        if sources.get(column) in blocks:
            blocks[sources[column]].append(position)
    return tuple(tuple(block) for block in blocks.values() if block)
