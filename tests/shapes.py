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


def loan_grades(generator: np.random.Generator, rows: int = 10_000) -> pd.DataFrame:
    """A loan export: 10,000 rows x 50 columns, 7 grades to predict, missing values in a third of the numeric
    columns, an identifier, and two leaking columns (the sub-grade and the interest rate follow the grade)."""
    numeric = generator.normal(size=(rows, 30))
    categories = {
        f"cat_{index:02d}": generator.choice([f"v{level}" for level in range(levels)], rows)
        for index, levels in enumerate(generator.integers(3, 20, 16))
    }
    effect = sum(
        (pd.Series(values).str[1:].astype(int).to_numpy() % 3 - 1) * 0.3
        for values in list(categories.values())[:4]
    )
    score = numeric[:, :8] @ generator.uniform(-1, 1, 8) + 0.5 * numeric[:, 8] * numeric[:, 9] + effect
    score += generator.normal(0, 0.8, rows)
    grade = np.digitize(score, np.quantile(score, [0.08, 0.22, 0.42, 0.62, 0.8, 0.93]))
    letters = np.array(list("ABCDEFG"))[grade]
    frame = pd.DataFrame(numeric.round(4), columns=[f"num_{index:02d}" for index in range(30)])
    for index in range(0, 30, 3):
        frame.loc[generator.random(rows) < 0.1, f"num_{index:02d}"] = np.nan
    frame = frame.assign(**categories)
    frame.insert(0, "loan_id", generator.permutation(rows) + 100_000)
    frame["sub_grade"] = [
        f"{letter}{digit}" for letter, digit in zip(letters, generator.integers(1, 6, rows), strict=True)
    ]
    frame["int_rate"] = (5 + 3 * grade + generator.uniform(0, 0.5, rows)).round(2)
    frame["grade"] = letters
    return frame


def flight_delays(generator: np.random.Generator, rows: int = 300_000) -> pd.DataFrame:
    """A flights export: 300,000 rows in time order with an ISO date-time, a route of 4,000 values (a few
    frequent, most rare), carriers and airports, and 3 % of the arrival delays (the target) missing."""
    start = np.datetime64("2023-01-01T00:00")
    minutes = np.sort(generator.integers(0, 365 * 24 * 60, rows))
    moments = start + minutes.astype("timedelta64[m]")
    carriers = np.array([f"C{index}" for index in range(15)])
    routes = np.array([f"R{index:04d}" for index in range(4000)])
    popularity = 1 / np.arange(1, 4001) ** 1.1
    route = generator.choice(4000, rows, p=popularity / popularity.sum())
    carrier = generator.integers(0, 15, rows)
    distance = (200 + (route * 37) % 2500 + generator.normal(0, 20, rows)).round(0)
    hour = (minutes // 60) % 24
    month = ((minutes // (60 * 24 * 30.5)) % 12).astype(int)
    route_effect = generator.normal(0, 8, 4000)[route]
    delay = (
        5
        + 1.5 * (hour - 12).clip(0)
        + 6 * np.isin(month, [6, 7, 11])
        + 3 * (carrier % 4)
        + route_effect
        + 0.004 * distance
        + generator.gamma(1.5, 8, rows)
        - 12
    ).round(0)
    frame = pd.DataFrame(
        {
            "FlightDate": pd.to_datetime(moments).strftime("%Y-%m-%dT%H:%M:%S"),
            "Carrier": carriers[carrier],
            "Origin": np.array([f"A{index:03d}" for index in range(300)])[route % 300],
            "Dest": np.array([f"A{index:03d}" for index in range(300)])[(route * 7) % 300],
            "Route": routes[route],
            "Distance": distance,
            "DepDelay": (delay * 0.6 + generator.normal(0, 10, rows)).round(0),
            "TaxiOut": generator.gamma(3, 5, rows).round(0),
            "Temperature": (10 + 12 * np.sin(2 * np.pi * month / 12) + generator.normal(0, 4, rows)).round(1),
            "Visibility": generator.uniform(1, 10, rows).round(1),
            "ArrDelay": delay,
        }
    )
    frame.loc[generator.random(rows) < 0.03, "ArrDelay"] = np.nan
    return frame


def wide_imbalanced(generator: np.random.Generator, rows: int = 5_000) -> pd.DataFrame:
    """A wide sensor export: 5,000 rows x 85 numeric columns, 6 % positives, the signal in a few columns."""
    values = generator.normal(size=(rows, 85))
    logit = values[:, :6] @ np.array([1.2, -1.0, 0.8, 0.6, -0.6, 0.5]) + 0.8 * values[:, 6] * values[:, 7]
    threshold = np.quantile(logit + generator.normal(0, 1.0, rows), 0.94)
    frame = pd.DataFrame(values.round(4), columns=[f"sensor_{index:02d}" for index in range(85)])
    frame["failure"] = np.where(logit + generator.normal(0, 1.0, rows) > threshold, "yes", "no")
    return frame


SHAPES: dict[str, tuple[Callable[[np.random.Generator], pd.DataFrame], str, str]] = {
    "messy_multiclass": (messy_multiclass, "Grade", "clinic visits.csv"),
    "count_regression": (count_regression, "cnt", "day.csv"),
    "credit_risk": (credit_risk, "Risk", "german_credit.csv"),
}


EXPORT_SHAPES: dict[str, tuple[Callable[[np.random.Generator], pd.DataFrame], str, str]] = {  # bench_own_data
    "loan_grades": (loan_grades, "grade", "loans.csv"),
    "flight_delays": (flight_delays, "ArrDelay", "flights.csv"),
    "wide_imbalanced": (wide_imbalanced, "failure", "sensors.csv"),
}


def write_shape(name: str, folder: Path, seed: int = 3) -> tuple[Path, str]:
    """Write one dataset as a CSV the way such files come (pandas' own NA markers off); its path and target."""
    build, target, file_name = (SHAPES | EXPORT_SHAPES)[name]
    path = folder / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    build(np.random.default_rng(seed)).to_csv(path, index=False)
    return path, target
