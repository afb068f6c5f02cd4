"""The pull-request report's model sections: a candidate whose metric is undefined reads as such."""

from pillars.ci.pr_report import selection_section, validation_section


def test_undefined_scores_and_checks_are_named_not_crashed_on() -> None:
    head = {
        "model": "linear",
        "metric": "roc_auc",
        "reason": "best valid roc_auc (0.9000) of 2 eligible",
        "ranking": [
            {"family": "linear", "valid": 0.9, "size_bytes": 10},
            {"family": "xgboost", "valid": None, "size_bytes": 20},
        ],
        "not_eligible": [],
    }
    base = {
        "model": "linear",
        "ranking": [{"family": "linear", "valid": 0.88}, {"family": "xgboost", "valid": 0.9}],
    }
    section = selection_section(base, head)
    assert "| linear | 0.9000 | 0.8800 | +0.0200 |" in section
    assert "| xgboost | undefined (see model_validation.json) | 0.9000 | - |" in section
    validation = {
        "candidates": {
            "linear": {
                "passed": False,
                "checks": {
                    "precision": {
                        "value": None,
                        "min": 0.6,
                        "passed": False,
                        "undefined": "no row predicted positive",
                    }
                },
            }
        }
    }
    assert "precision (undefined: no row predicted positive)" in validation_section(None, validation)


def test_a_failed_paired_comparison_shows_its_difference_and_interval() -> None:
    validation = {
        "candidates": {
            "linear": {
                "passed": False,
                "checks": {
                    "vs_defaults:roc_auc": {
                        "verdict": "worse",
                        "passed": False,
                        "difference": -0.0241,
                        "interval": [-0.0282, -0.0199],
                        "required": "not worse",
                    }
                },
            }
        }
    }
    section = validation_section(None, validation)
    assert "vs_defaults:roc_auc (worse: -0.0241, interval [-0.0282, -0.0199])" in section
