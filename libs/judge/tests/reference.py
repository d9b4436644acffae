"""Reference values for tests/reference.rs, from SciPy and NumPy.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install scipy
    /tmp/ref/bin/python libs/judge/tests/reference.py

Prints the values the Rust tests compare with; the data sets are defined
the same way in both files.
"""
import numpy as np
from scipy import stats

# R's wilcox.test example (Hollander & Wolfe): no ties.
DEPRESSION_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
DEPRESSION_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
# Many ties.
TIES_X = [1, 2, 2, 3, 3, 3, 4, 5, 5, 6]
TIES_Y = [2, 2, 3, 3, 4, 4, 4, 5, 7, 7, 8]
# Larger, with ties, computed the same way in Rust.
WIDE_X = [((i * 7919) % 1013) / 10 for i in range(200)]
WIDE_Y = [((j * 104729) % 1009) / 10 + 3 for j in range(300)]


def hodges_lehmann(x, y, confidence):
    d = np.sort(np.subtract.outer(np.array(x, float), np.array(y, float)).ravel())
    n, m = len(x), len(y)
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    k = int(np.floor(n * m / 2 - z * np.sqrt(n * m * (n + m + 1) / 12)))
    return np.median(d), d[k - 1], d[n * m - k]


for name, x, y in [("depression", DEPRESSION_X, DEPRESSION_Y), ("ties", TIES_X, TIES_Y), ("wide", WIDE_X, WIDE_Y)]:
    r = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    est, lo, hi = hodges_lehmann(x, y, 0.98)
    print(f"{name}: u={r.statistic!r} p={r.pvalue!r} shift={est!r} ci98=({lo!r}, {hi!r})")
for p in [1e-12, 1e-4, 0.01, 0.025, 0.3, 0.5, 0.9, 0.975, 0.999999]:
    print(f"ppf({p!r}) = {stats.norm.ppf(p)!r}")
for z in [-8.0, -1.96, 0.0, 1.0, 6.5]:
    print(f"cdf({z!r}) = {stats.norm.cdf(z)!r}  sf = {stats.norm.sf(z)!r}")
