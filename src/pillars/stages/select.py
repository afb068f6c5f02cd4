"""Pillar 10, select: the top model among the validated candidates, on the valid split only.

Candidates within `tie_tolerance` of the best primary metric are tied; the tie goes to the model that is
cheapest to serve (`tie_breaker: cost`: node tests or multiply-adds per row, counted, see
`pillars.training.cost`), the smallest model file (`size`) or the first in `train.candidates` (`order`).
The test split is never read: assess runs after this stage, so the DAG itself shows that test results
cannot influence the choice.

After small-data tuning the candidates were refit on train + valid, and validate_model judged their
out-of-fold predictions instead (`evaluated_on: out_of_fold`): select ranks on those, and its report names
the value `out_of_fold` instead of `valid`.
"""

from typing import NamedTuple

from pillars.core import layout, model_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_bytes
from pillars.core.metrics import METRICS
from pillars.core.model_handoffs import ModelValidation
from pillars.core.params import Params, load_params
from pillars.serve.estimators import load_model
from pillars.training.cost import prediction_cost

TIE_BREAKERS = {"cost": "cost_per_row", "size": "size_bytes"}  # the footprint each one compares


class Footprint(NamedTuple):
    """What a candidate costs beyond its score: its file, and the work of scoring one row."""

    size_bytes: int
    cost_per_row: int


def rank(validation: ModelValidation, footprints: dict[str, Footprint], params: Params) -> dict:
    """The ranking of eligible candidates and the choice, with the reason. A candidate whose primary metric
    is undefined where it was judged (valid or out-of-fold: null, with the reason in the report) ranks after
    every measured one and is never chosen; if no candidate has a value, there is nothing to choose on."""
    metric_name = params.train.metric
    metric = METRICS[params.dataset.task][metric_name]
    on = validation.evaluated_on  # valid, or out_of_fold after small-data tuning
    judged = "valid" if on == "valid" else "out-of-fold (train + valid)"
    values: dict[str, float | None] = {
        family: validation.candidates[family].measured_on(on)[metric_name] for family in validation.eligible
    }
    measured = {family: value for family, value in values.items() if value is not None}
    if not measured:
        reasons = [
            f"{family}: {validation.candidates[family].undefined.get(metric_name, 'no value')}"
            for family in values
        ]
        raise PillarsError(
            f"select: {judged} {metric_name} is undefined for every eligible candidate ({'; '.join(reasons)})"
        )
    order = {family: position for position, family in enumerate(params.train.candidate_names)}
    ranked = sorted(
        measured,
        key=lambda family: (
            -measured[family] if metric.greater_is_better else measured[family],
            order[family],
        ),
    )
    ranked += sorted(set(values) - set(measured), key=order.__getitem__)
    best = measured[ranked[0]]
    tied = [family for family, value in measured.items() if abs(value - best) <= params.select.tie_tolerance]
    if params.select.tie_breaker == "order":
        chosen = min(tied, key=order.__getitem__)
    else:  # cost or size
        chosen = min(
            tied,
            key=lambda family: (
                getattr(footprints[family], TIE_BREAKERS[params.select.tie_breaker]),
                order[family],
            ),
        )
    reason = f"best {judged} {metric_name} ({measured[chosen]:.4f}) of {len(values)} eligible"
    if len(tied) > 1:
        reason = f"tied within {params.select.tie_tolerance} on {judged} {metric_name} with {sorted(set(tied) - {chosen})}; chosen by {params.select.tie_breaker}"
    ineligible = sorted(set(validation.candidates) - set(values))
    return {
        "model": chosen,
        "metric": metric_name,
        on: values[chosen],
        "eligible": len(values),
        "reason": reason,
        "ranking": [
            {"family": family, on: values[family], **footprints[family]._asdict()} for family in ranked
        ],
        "not_eligible": ineligible,
    } | ({} if on == "valid" else {"evaluated_on": on})


def footprint(family: str) -> Footprint:
    """A candidate's file size and prediction cost (the pickle is this pipeline's own train output)."""
    path = layout.candidate_model(family)
    payload = path.read_bytes()
    return Footprint(len(payload), prediction_cost(load_model(payload)))


def main() -> None:
    params = load_params()
    validation = model_handoffs.MODEL_VALIDATION.read()
    footprints = {family: footprint(family) for family in validation.eligible}
    selection = rank(validation, footprints, params)
    payload = layout.candidate_model(selection["model"]).read_bytes()
    write_bytes(layout.SELECTED_MODEL, lambda path: path.write_bytes(payload))
    model_handoffs.SELECTION.write(selection)
    print(f"select: {selection['model']}: {selection['reason']}")


if __name__ == "__main__":
    run_cli(main)
