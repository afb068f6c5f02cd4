"""The shadow replay, on small seeded data in a second: logs written the way the service writes them (its own
`log_line` and `PredictionLog`) and the way batch inference does, replayed through real serving models.

What a team relies on before a model ships: the replay gives every logged answer back bit for bit (and fails
naming the rows when it does not), a challenger that learned a shuffled feature is blocked, a retrain that
changed only its seed passes, a slice whose labels are one class is `insufficient` (a verdict, not a crash),
and a first release without a champion passes and says so. The same logs and models give the same report.
"""

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from pillars.bento import server
from pillars.bento.archive import packaged_model
from pillars.bento.parity import raw_rows
from pillars.core import layout
from pillars.core.io import read_parquet
from pillars.core.params import FeaturizeParams, Params, ShadowParams, load_params
from pillars.core.schema import load_checked
from pillars.monitoring.replay import replay
from pillars.monitoring.shadow import disagreement_bound, read_requests, shadow
from pillars.serve.capture import DIR_ENV, PredictionLog, log_line, new_request_ids, utc_now
from pillars.serve.model import InputField, ServingModel, compile_features
from pillars.stages.shadow import no_champion, paired_evidence, shadow_as_params_set
from pillars.training.evidence import alpha
from pillars.training.features import build_pipeline
from tests.helpers import ROOT

FEATURES = {"x1": "numeric", "x2": "numeric", "group": "categorical", "region": "categorical"}
FIELDS = (
    InputField("x1", "x1", "float", True, impossible=(-10.0, 10.0)),
    InputField("x2", "x2", "float", True),
    InputField("group", "group", "string", True, categories=("a", "b", "c")),
    InputField("region", "region", "string", True, categories=("north", "south")),
)
LABELS = ("no", "yes")
SLICES = ["group", "region"]
TARGET = "label"


def table(rows: int, seed: int) -> pd.DataFrame:
    """x1 decides most, x2 a little; every row of group c is a `yes` (a slice with one class)."""
    generator = np.random.default_rng(seed)
    x1, x2 = generator.normal(0, 1, rows).round(3), generator.normal(0, 1, rows).round(3)
    group = np.array(["a", "b", "c"], dtype=object)[generator.choice(3, rows, p=[0.45, 0.4, 0.15])]
    region = np.array(["north", "south"], dtype=object)[generator.integers(0, 2, rows)]
    signal = 2.0 * x1 + 0.5 * x2 + generator.normal(0, 0.7, rows)
    label = np.where((signal > 0) | (group == "c"), 1, 0)
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "region": region, TARGET: label})


TRAIN, TRAFFIC = table(3000, 1), table(1500, 2)
PIPELINE = build_pipeline(FEATURES, FeaturizeParams()).fit(TRAIN[list(FEATURES)])


def serving(
    seed: int, shuffled: str | None = None, fields: tuple[InputField, ...] = FIELDS, task: str = "binary"
) -> ServingModel:
    """A serving model of a random forest fitted with `seed` (and `shuffled`: that feature's values shuffled,
    so the model learned noise for it); a regression forest predicts x1 + x2 from the other columns."""
    train = TRAIN.copy()
    if shuffled is not None:
        train[shuffled] = np.random.default_rng(seed).permutation(train[shuffled].to_numpy())
    matrix = np.asarray(PIPELINE.transform(train[list(FEATURES)]), dtype=np.float32)
    forest = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = forest(n_estimators=60, min_samples_leaf=5, random_state=seed, n_jobs=1)
    model.fit(matrix, train["x1"] + train["x2"] if task == "regression" else train[TARGET])
    version = f"forest-{task}-{seed}-{shuffled or 'all'}"
    labels = () if task == "regression" else LABELS
    return ServingModel(
        version, task, labels, fields, (), "lower", compile_features(PIPELINE), model, {}, 1, 1, 1
    )


def columns_of(frame: pd.DataFrame) -> dict[str, list]:
    """Rows as the service's record types hand them to scoring: plain Python values per raw column."""
    return {item.name: frame[item.name].tolist() for item in FIELDS}


def serve(model: ServingModel, frame: pd.DataFrame, folder: Path, per_call: int = 7) -> list[str]:
    """Score the rows as the service does (`_score`: a line per scoring call, through the service's own log
    writer), `per_call` rows per call; the request ids, in row order."""
    log = PredictionLog(folder, 2**20)
    request_ids = []
    for start in range(0, len(frame), per_call):
        columns = columns_of(frame.iloc[start : start + per_call])
        scored = model.score(model.typed(columns))
        ids = new_request_ids(len(scored.predictions))
        log.write(
            log_line(
                source="predict",
                model_version=model.version,
                request_ids=ids,
                rows=[0] * len(ids),
                inputs=columns,
                predictions=scored.predictions,
                probabilities=scored.probabilities,
                time_utc=utc_now(),
            )
        )
        request_ids += ids
    log.close()
    return request_ids


def feedback(request_ids: list[str], frame: pd.DataFrame) -> pd.DataFrame:
    """Ground truth as `read_feedback` returns it: keyed by request id and row."""
    return pd.DataFrame(
        {"request_id": request_ids, "row": 0, "label": np.asarray(LABELS, dtype=object)[frame[TARGET]]}
    )


NO_FEEDBACK = pd.DataFrame(columns=["request_id", "row", "label"])


@pytest.fixture(scope="module")
def champion() -> ServingModel:
    return serving(seed=0)


@pytest.fixture
def served(champion: ServingModel, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """The traffic the champion answered, logged, and the labels that came back for it."""
    logs = tmp_path / "logs"
    return logs, feedback(serve(champion, TRAFFIC, logs / "service"), TRAFFIC)


@pytest.fixture
def run_shadow(make_params: Callable[..., Params]) -> Callable[..., dict]:
    params = make_params()

    def run(
        logs: Path,
        truth: pd.DataFrame,
        candidate: ServingModel,
        champion: ServingModel | None,
        **settings: object,
    ) -> dict:
        result = shadow(
            read_requests(logs, int(settings.pop("window_rows", 0))),  # type: ignore[call-overload]
            truth,
            candidate,
            champion,
            "first release: no champion",
            SLICES,
            ShadowParams.model_validate({"batch_rows": 500, **settings}),
            paired_evidence(params),
            alpha(params.validate_model.evidence),
        )
        assert (result.report["verdict"] == "blocked") == bool(result.blocked)
        return {**result.report, "unfaithful": result.unfaithful, "seconds": result.seconds}

    return run


def test_replay_gives_back_every_logged_answer_bit_for_bit(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    candidate = serving(seed=1)
    serve(candidate, TRAFFIC.iloc[:200], logs / "batch", per_call=200)  # a log of the candidate's own too
    serve(serving(seed=3), TRAFFIC.iloc[:50], logs / "older")  # and of a model that is neither
    (logs / "service" / "broken.jsonl").write_text('{"log_format": 1, "model_ver\n')
    report = run_shadow(logs, truth, candidate, champion)
    assert report["rows"]["logged"] == report["rows"]["replayed"] == len(TRAFFIC) + 250
    assert report["rows"]["logged_by_other_models"] == 50
    assert report["rows"]["skipped"] == {"corrupt_lines": 1}
    assert report["faithful"]["champion"] == {
        "version": champion.version,
        "rows": len(TRAFFIC),
        "differ": 0,
        "examples": [],
    }
    assert report["faithful"]["candidate"]["rows"] == 200 and report["faithful"]["candidate"]["differ"] == 0
    assert report["unfaithful"] == [] and report["verdict"] == "passed"
    assert set(report["seconds"]) == {"candidate", "champion"}


def test_a_replay_that_differs_from_the_log_fails_naming_the_rows(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    (path,) = (logs / "service").glob("*.jsonl")
    lines = path.read_text().splitlines()
    record = json.loads(lines[3])
    record["probabilities"]["yes"][1] = float(np.nextafter(record["probabilities"]["yes"][1], 2.0))
    lines[3] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    report = run_shadow(logs, truth, serving(seed=1), champion)
    assert report["verdict"] == "failed"
    assert report["faithful"]["champion"]["differ"] == 1
    assert report["faithful"]["champion"]["examples"] == [f"request {record['request_id'][1]} row 0"]
    assert record["request_id"][1] in report["unfaithful"][0]


def test_a_challenger_that_learned_a_shuffled_feature_is_blocked(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    report = run_shadow(logs, truth, serving(seed=0, shuffled="x1"), champion)
    assert report["verdict"] == "blocked"
    assert report["champion"]["agreement"] < 0.95
    assert any(reason.startswith("overall: decision agreement") for reason in report["blocked"])
    assert report["labelled"]["verdict"] == "worse" and report["labelled"]["meets"] is False
    assert "labelled rows: the candidate is worse" in report["blocked"]


def test_a_retrain_that_changed_only_its_seed_passes(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    report = run_shadow(logs, truth, serving(seed=7), champion)
    assert report["verdict"] == "passed", report["blocked"]
    assert 0.95 <= report["champion"]["agreement"] < 1.0
    assert report["labelled"]["verdict"] in ("not worse", "better")
    assert (
        report["labelled"]["interval"][0]
        < report["labelled"]["difference"]
        < report["labelled"]["interval"][1]
    )


def test_a_small_slice_blocks_only_on_evidence_of_disagreement() -> None:
    """3 % disagreement against an allowance of 2.5 %: not shown by 100 rows, shown by 10,000."""
    assert disagreement_bound(3, 100, 0.025) < 0.025 < disagreement_bound(300, 10_000, 0.025) < 0.03
    assert disagreement_bound(0, 100, 0.025) == 0.0


def test_a_slice_with_one_class_is_insufficient_not_a_crash(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    report = run_shadow(logs, truth, serving(seed=7), champion)
    one_class = report["labelled"]["slices"]["group=c"]
    assert one_class["verdict"] == "insufficient" and "one class" in json.dumps(one_class)
    assert report["labelled"]["slices"]["group=a"]["verdict"] != "insufficient"
    assert report["champion"]["slices"]["group=c"]["verdict"] == "passed"  # decisions still compared


def test_a_first_release_without_a_champion_passes_and_says_so(
    served: tuple[Path, pd.DataFrame],
    run_shadow: Callable[..., dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs, truth = served
    report = run_shadow(logs, truth, serving(seed=1), None)
    assert report["verdict"] == "passed"
    assert report["champion"] == {"verdict": "skipped", "skipped": "first release: no champion"}
    assert "labelled" not in report and report["rows"]["replayed"] == len(TRAFFIC)
    monkeypatch.chdir(tmp_path)
    assert no_champion().startswith("first release")
    (tmp_path / "models/champion").mkdir(parents=True)
    (tmp_path / "models/champion/model.pkl").write_bytes(b"")
    assert "not its Bento" in no_champion()


def test_rows_the_champion_served_that_the_candidate_would_refuse_block(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    narrow = (replace(FIELDS[0], impossible=(-1.5, 10.0)), *FIELDS[1:])
    report = run_shadow(logs, truth, replace(serving(seed=0, fields=narrow), version="narrow"), champion)
    refused = int((TRAFFIC["x1"] < -1.5).sum())
    assert report["refused"]["rows"] == refused > 0
    assert report["refused"]["reasons"] == {"x1: outside the possible range [-1.5, 10.0]": refused}
    assert report["verdict"] == "blocked" and "would refuse" in report["blocked"][0]
    assert report["champion"]["rows"] == len(TRAFFIC) - refused  # compared where both answer


def test_the_window_keeps_the_last_rows_and_the_report_is_the_same_bytes_again(
    champion: ServingModel, served: tuple[Path, pd.DataFrame], run_shadow: Callable[..., dict]
) -> None:
    logs, truth = served
    window = read_requests(logs, 100)
    assert window.rows == 100
    assert window.keys["request_id"].tolist() == read_requests(logs).keys["request_id"].tolist()[-100:]
    runs = [run_shadow(logs, truth, serving(seed=7), champion, window_rows=100) for _ in range(2)]
    for run in runs:
        del run["seconds"]
    assert json.dumps(runs[0], sort_keys=True) == json.dumps(runs[1], sort_keys=True)
    assert runs[0]["rows"]["logged"] == 100 and runs[0]["labelled"]["rows"] == 100


def test_regression_reports_the_distribution_of_differences_and_blocks_over_the_limit(
    tmp_path: Path, run_shadow: Callable[..., dict]
) -> None:
    champion = serving(seed=0, task="regression")
    logs = tmp_path / "logs"
    serve(champion, TRAFFIC, logs)
    report = run_shadow(logs, NO_FEEDBACK, serving(seed=7, task="regression"), champion)
    differences = report["champion"]
    assert report["faithful"]["champion"]["differ"] == 0
    assert differences["quantiles"]["p5"] < 0 < differences["quantiles"]["p95"]
    assert differences["p95_absolute"] > 0 and report["verdict"] == "passed"
    limit = differences["p95_absolute"] / 2
    blocked = run_shadow(
        logs, NO_FEEDBACK, serving(seed=7, task="regression"), champion, max_difference=limit
    )
    assert blocked["verdict"] == "blocked" and "95th percentile of |difference|" in blocked["blocked"][0]


def test_nothing_ships_before_the_shadow_report() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "metrics/shadow.json" in stages["deploy"]["deps"]
    assert {"models/service.bento", "models/champion", "data/monitoring/logs"} <= set(
        stages["shadow"]["deps"]
    )
    assert list(stages).index("shadow") < list(stages).index("deploy")


@pytest.mark.slow
def test_logs_of_a_real_bentoml_serve_replay_bit_for_bit(
    reproduced: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline ran shadow on batch inference's log (a first release: no champion); then the archive,
    served by a real `bentoml serve`, answers 300 requests, and their log replays exactly."""
    report = json.loads((reproduced / "metrics/shadow.json").read_text())
    assert report["verdict"] == "passed" and report["champion"]["verdict"] == "skipped"
    assert report["faithful"]["candidate"]["rows"] == report["rows"]["logged"] > 4_500
    monkeypatch.chdir(reproduced)
    params = load_params()
    serving_model = packaged_model(layout.SERVICE_ARCHIVE)
    curated = read_parquet(layout.curated_split("holdout"))
    raw = raw_rows(read_parquet(layout.RAW_DATA), curated, load_checked(params), params.dataset.placeholders)
    columns = {name: values[:300] for name, values in raw.items()}
    logs = tmp_path / "logs"
    with tempfile.TemporaryDirectory(prefix="pillars-shadow-") as home:
        tag = server.import_archive(layout.SERVICE_ARCHIVE, Path(home))
        with server.served(tag, Path(home), params.deploy.ready_timeout_s, {DIR_ENV: str(logs)}) as (url, _):
            request_ids = replay(url, columns, 8)
    logged = read_requests(logs)
    assert sorted(logged.keys["request_id"]) == sorted(request_ids)
    result = shadow_as_params_set(params, logged, NO_FEEDBACK, serving_model, serving_model)
    assert result.report["faithful"]["champion"] == {
        "version": serving_model.version,
        "rows": 300,
        "differ": 0,
        "examples": [],
    }
    assert result.report["champion"]["agreement"] == 1.0 and result.report["verdict"] == "passed"
