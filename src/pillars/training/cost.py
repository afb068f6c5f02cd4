"""What a fitted model costs to score one row, counted rather than timed.

A count is the same on every machine and every run, so a selection that breaks ties with it stays
reproducible; a timing would change the choice from run to run. Each family counts its own models
(`Family.prediction_cost`: a tree ensemble tests one node per level of each tree, a linear model does one
multiply-add per coefficient); here the wrappers of our own are seen through.
"""

from typing import Any

from pillars.core.errors import PillarsError
from pillars.serve.estimators import Blend, NativeCategorical
from pillars.training.families import FAMILIES


def prediction_cost(model: Any) -> int:
    """Node tests or multiply-adds to score one row; a blend costs what its members cost together."""
    if isinstance(model, Blend):
        return sum(prediction_cost(member) for member in model.members.values())
    if isinstance(model, NativeCategorical):  # coding the categories back is one lookup per row, not counted
        return prediction_cost(model.model)
    for family in FAMILIES.values():
        if isinstance(model, family.model_types):
            return family.prediction_cost(model)
    raise PillarsError(f"no prediction cost is known for a {type(model).__name__}")
