"""When ``trained_model`` runs by itself: a scheduled week whose training and validation days have all arrived.

A week's model depends on exactly its training and validation days (see ``_feature_mapping``), so "every parent
partition exists, and one updated since the last request" means the week's data has arrived: the Monday the week
starts, in data time. Each week is trained once (``missing()``): a re-landed day inside an old model's 98-day window
does not re-run the sweeps of the up to 14 weeks that read it (an old week can no longer become champion; rebuild it
with a backfill if needed). Between scheduled weeks, the drift sensor (``defs/monitoring/sensors.py``) requests the
current week when drift or decay persists; the gate judges that model like any other.
"""

from datetime import date

import dagster as dg

from mlops_assets.lib.retrain import is_scheduled_week


class ScheduledWeek(dg.AutomationCondition):
    """True for the weekly partitions on the retraining schedule: every ``every_weeks``-th week from ``first_week``.

    A custom condition because the schedule is a property of the partition (data time), which no built-in condition
    expresses; ``on_cron`` would tie it to the wall clock.
    """

    def __init__(self, first_week: date, every_weeks: int) -> None:
        self.first_week = first_week
        self.every_weeks = every_weeks

    @property
    def name(self) -> str:
        return f"scheduled_week(every {self.every_weeks} weeks from {self.first_week.isoformat()})"

    @property
    def description(self) -> str:
        return f"Week is on the retraining schedule (every {self.every_weeks} weeks from {self.first_week})"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        scheduled = [
            key
            for key in candidates.expensively_compute_partition_keys()
            if is_scheduled_week(date.fromisoformat(key), self.first_week, self.every_weeks)
        ]
        return dg.AutomationResult(context, candidates.compute_intersection_with_partition_keys(set(scheduled)))


def training_automation(first_week: date, every_weeks: int) -> dg.AutomationCondition:
    return (
        ScheduledWeek(first_week, every_weeks)
        & dg.AutomationCondition.missing()
        & dg.AutomationCondition.any_deps_updated().since_last_handled().with_label("a training day arrived")
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("scheduled week, its training days arrived")
