"""The sweep's successive halving decides the same whatever order the trials' reports arrive in (no Ray here)."""

import random

import numpy as np
import pytest

from mlops_assets.lib.halving import UNKNOWN, OrderedHalving

TRIALS, MAX_REPORTS = 8, 12


def _curves(seed: int) -> list[list[float]]:
    """Per trial, a best-so-far AUC per report; some trials end early (their own early stopping)."""
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(TRIALS):
        length = int(rng.integers(3, MAX_REPORTS + 1))
        curves.append(list(np.maximum.accumulate(0.6 + rng.uniform(0, 0.1) * np.sqrt(np.arange(1, length + 1)) / 4)))
    return curves


def _online(curves: list[list[float]], order_seed: int, concurrent: int) -> tuple[list[int | None], list[int]]:
    """Replay the sweep: ``concurrent`` trials at a time in grid order, reports interleaved at random; returns the
    decisions after the sweep and the report at which each trial actually stopped."""
    halving = OrderedHalving(TRIALS, grace_period=2, reduction_factor=3, max_reports=MAX_REPORTS)
    rng = random.Random(order_seed)
    waiting, running, stopped_at = list(range(TRIALS)), {}, [0] * TRIALS
    while waiting or running:
        while waiting and len(running) < concurrent:
            running[waiting.pop(0)] = 0
        trial = rng.choice(sorted(running))
        running[trial] += 1
        report = running[trial]
        halving.observe(trial, report, curves[trial][report - 1])
        if halving.should_stop(trial) or report == len(curves[trial]):
            halving.finish(trial)
            stopped_at[trial] = report
            del running[trial]
    return list(halving.outcomes()), stopped_at


@pytest.mark.parametrize("data_seed", [1, 2, 3, 4])
def test_the_decisions_do_not_depend_on_the_order_reports_arrive_in(data_seed: int) -> None:
    curves = _curves(data_seed)
    reference, _ = _online(curves, order_seed=0, concurrent=1)  # one at a time: the grid order itself
    assert any(stop is not None for stop in reference), "the data should make the rule stop some trial"
    for order_seed in range(20):
        decisions, stopped_at = _online(curves, order_seed, concurrent=3)
        assert decisions == reference
        # Online, a trial stops at its rung or later (while its decision waited), never earlier.
        for stop, actual, curve in zip(decisions, stopped_at, curves, strict=True):
            assert actual >= (stop if stop is not None else len(curve))


def test_a_trial_waits_for_the_earlier_trials_and_then_keeps_only_the_top_third() -> None:
    halving = OrderedHalving(3, grace_period=1, reduction_factor=3, max_reports=3)
    halving.observe(0, 1, 0.70)
    halving.observe(2, 1, 0.65)
    assert halving.stop_report(2) is UNKNOWN  # trial 1 has not reached the rung yet
    assert not halving.should_stop(2)
    halving.observe(1, 1, 0.72)
    # Trial 0 is judged alone (kept), trial 1 beats it (kept), trial 2 is below the 2/3 quantile of all three.
    assert halving.should_stop(2)
    for trial in range(3):
        halving.finish(trial)
    assert halving.outcomes() == [None, None, 1]
