"""Mean ± sample standard deviation over seeds, as every results table reports them."""

import math

import numpy as np

NOTE = "mean ± sample standard deviation (n − 1 in the denominator) over seeds"


def mean_std(values) -> tuple[float, float]:
    """(mean, sample std with ddof = 1) of the finite values; std is NaN for fewer than two, both for none."""
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if len(values) == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan


def format_mean_std(values, digits: int = 3) -> str:
    """"0.512 ± 0.007" over several values, "0.512" for one, "–" for none."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def sample_std(values, axis: int = 0) -> np.ndarray:
    """The sample std (ddof = 1) along `axis`, for error bars over seeds."""
    return np.asarray(values, np.float64).std(axis=axis, ddof=1)
