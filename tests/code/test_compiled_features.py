"""The service's compiled features (NumPy operations read off the fitted pipeline) give the fitted feature
pipeline's matrix to the bit, for every kind of input a table has: numeric only, categorical only, mixed,
rare categories folded into one column, categories and missing values never seen in training. `package`
checks this on the test split inside `dvc repro`; here it is checked in a second, on inputs built to
reach each branch."""

import numpy as np
import pandas as pd
import pytest

from pillars.core.params import FeaturizeParams
from pillars.serve.model import compile_features
from pillars.training.features import build_pipeline

ROWS = 400
GENERATOR_SEED = 11

KINDS = {
    "numeric": {"age": "numeric", "income": "numeric", "member": "boolean"},
    "categorical": {"city": "categorical", "plan": "categorical"},
    "mixed": {"age": "numeric", "member": "boolean", "city": "categorical", "plan": "categorical"},
}


def table(rows: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    """Seeded columns of each kind: missing numbers, a skewed city column with rare values, and (unseen)
    categories and missing values the pipeline never saw."""
    generator = np.random.default_rng(seed)
    age = generator.normal(40, 12, rows).round(1)
    age[generator.random(rows) < 0.1] = np.nan
    income = generator.lognormal(10, 1, rows)
    cities = np.array(["oslo", "rome", "lima", "kyiv", "baku", "suva"])
    city = cities[np.minimum(generator.geometric(0.5, rows) - 1, len(cities) - 1)].astype(object)
    city[generator.random(rows) < 0.05] = None
    plan = np.array(["basic", "plus", "pro"], dtype=object)[generator.integers(0, 3, rows)]
    if unseen:
        city[:10] = "atlantis"
        plan[10:20] = None
        income[20:30] = np.nan
    return pd.DataFrame(
        {"age": age, "income": income, "member": generator.random(rows) < 0.3, "city": city, "plan": plan}
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rare_share", [0.0, 0.05], ids=["all-categories", "rare-folded"])
@pytest.mark.parametrize("scale", [False, True], ids=["unscaled", "scaled"])
def test_compiled_features_equal_the_fitted_pipeline(
    kind: str, rare_share: float | None, scale: bool
) -> None:
    features = KINDS[kind]
    settings = FeaturizeParams.model_validate({"min_category_share": rare_share, "scale_numeric": scale})
    pipeline = build_pipeline(features, settings).fit(table(ROWS, GENERATOR_SEED)[list(features)])
    compiled = compile_features(pipeline)
    for scored in (table(ROWS, GENERATOR_SEED + 1), table(ROWS, GENERATOR_SEED + 2, unseen=True)):
        expected = np.asarray(pipeline.transform(scored[list(features)]), dtype=np.float32)
        columns = {name: scored[name].to_numpy() for name in features}
        actual = compiled.transform(columns, len(scored))
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        assert np.array_equal(actual, expected, equal_nan=True)
    if rare_share and "city" in features:
        assert compiled.blocks[0].unknown >= 0, "rare cities fold into one column, where unseen ones go too"
