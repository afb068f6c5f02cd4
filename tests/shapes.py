"""Datasets of the shapes users bring, built by the tests (no downloads): messy headers with units and
parentheses, "NA" and empty placeholders, dates, identifiers, free text, constants, rare classes, leaky
component columns, small data, high-cardinality categories and booleans. Seeded: the same bytes each time."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

WORDS = np.array(
    [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "seven",
        "tall",
        "trees",
        "sway",
        "near",
        "an",
        "old",
        "red",
        "barn",
    ]
)


def sentences(generator: np.random.Generator, rows: int) -> list[str]:
    """Free text: 5 to 12 words a row."""
    lengths = generator.integers(5, 13, rows)
    return [" ".join(generator.choice(WORDS, length)) for length in lengths]


def messy_multiclass(generator: np.random.Generator, rows: int = 300) -> pd.DataFrame:
    """A small multiclass set (300 rows): headers with units and parentheses, "NA" and "" placeholders, a
    date column (day-first text), an identifier, free text, a constant, booleans, a high-cardinality
    category, and a rare class absent from some slices."""
    weight = generator.normal(70, 12, rows).round(1)
    height = generator.normal(170, 10, rows).round(0)
    region = generator.choice(["North", "South", "East", "West"], rows, p=[0.4, 0.3, 0.2, 0.1])
    smoker = generator.choice(["yes", "no"], rows, p=[0.3, 0.7])
    visits = generator.poisson(3, rows)
    score = weight / 10 + (smoker == "yes") * 2 + generator.normal(0, 1, rows)
    grade = np.select([score < 7.5, score < 9.5], ["low", "mid"], "high").astype(object)
    rare = generator.choice(rows, 6, replace=False)
    grade[rare] = "severe"  # 6 rows of 300: absent from most slices and some splits' slices
    region[rare] = "North"
    start = np.datetime64("2021-01-01")
    dates = pd.to_datetime(start + generator.integers(0, 900, rows).astype("timedelta64[D]"))
    frame = pd.DataFrame(
        {
            "Patient ID": [f"P-{index:05d}" for index in generator.permutation(rows)],
            "Visit Date": dates.strftime("%d/%m/%Y"),
            "Weight (kg)": weight.astype(object),
            "Height [cm]": height,
            "Region": region,
            "Smoker?": smoker,
            "Clinic": [f"clinic-{code}" for code in generator.integers(0, 120, rows)],
            "Visits (last year)": visits,
            "Notes": sentences(generator, rows),
            "Country": "NO",
            "Grade": grade,
        }
    )
    frame.loc[generator.choice(rows, 15, replace=False), "Weight (kg)"] = "NA"
    frame.loc[generator.choice(rows, 10, replace=False), "Region"] = ""
    return frame


def count_regression(generator: np.random.Generator, rows: int = 1500) -> pd.DataFrame:
    """Daily rentals (a count): weather and calendar inputs, rows in date order, and two leaky columns
    (casual + registered = count) that a model must not use."""
    days = pd.date_range("2019-01-01", periods=rows, freq="D")
    temperature = (15 + 10 * np.sin(2 * np.pi * days.day_of_year / 365) + generator.normal(0, 3, rows)).round(
        1
    )
    humidity = generator.uniform(0.3, 0.95, rows).round(2)
    holiday = generator.random(rows) < 0.03
    weather = generator.choice(["clear", "cloudy", "rain"], rows, p=[0.6, 0.3, 0.1])
    rate = np.exp(
        3 + 0.05 * temperature - 0.8 * (weather == "rain") + 0.2 * (days.day_of_week < 5) - 0.5 * holiday
    )
    casual = generator.poisson(rate * 0.3)
    registered = generator.poisson(rate)
    return pd.DataFrame(
        {
            "instant": np.arange(1, rows + 1),
            "dteday": days.strftime("%Y-%m-%d"),
            "weather": weather,
            "temp": temperature,
            "hum": humidity,
            "holiday": holiday,
            "casual": casual,
            "registered": registered,
            "cnt": casual + registered,
        }
    )


def credit_risk(generator: np.random.Generator, rows: int = 2000) -> pd.DataFrame:
    """A binary credit-risk set with missing values ("?" and empty), a minority "bad" class."""
    age = generator.integers(19, 75, rows).astype(float)
    amount = generator.lognormal(8, 0.7, rows).round(0)
    duration = generator.choice([6, 12, 18, 24, 36, 48], rows)
    housing = generator.choice(["own", "rent", "free"], rows, p=[0.6, 0.3, 0.1]).astype(object)
    savings = generator.choice(["little", "moderate", "rich", "quite rich"], rows).astype(object)
    logit = -2.0 + 0.00005 * amount + 0.03 * duration - 0.02 * (age - 40) + 0.8 * (housing == "rent")
    risk = np.where(generator.random(rows) < 1 / (1 + np.exp(-logit)), "bad", "good")
    age[generator.choice(rows, 60, replace=False)] = np.nan
    housing[generator.choice(rows, 40, replace=False)] = "?"
    savings[generator.choice(rows, 200, replace=False)] = None
    return pd.DataFrame(
        {
            "Age": age,
            "Credit amount": amount,
            "Duration": duration,
            "Housing": housing,
            "Saving accounts": savings,
            "Risk": risk,
        }
    )


SHAPES: dict[str, tuple[Callable[[np.random.Generator], pd.DataFrame], str, str]] = {
    "messy_multiclass": (messy_multiclass, "Grade", "clinic visits.csv"),
    "count_regression": (count_regression, "cnt", "day.csv"),
    "credit_risk": (credit_risk, "Risk", "german_credit.csv"),
}


def write_shape(name: str, folder: Path, seed: int = 3) -> tuple[Path, str]:
    """Write one dataset as a CSV the way such files come (pandas' own NA markers off); its path and target."""
    build, target, file_name = SHAPES[name]
    path = folder / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    build(np.random.default_rng(seed)).to_csv(path, index=False)
    return path, target
