//! The statistics against SciPy and NumPy on the same data sets
//! (`reference.py` prints the values used here).

use paved_judge::{hodges_lehmann, normal, rank_sum};

const DEPRESSION_X: [f64; 9] = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
// 3.14 is a measurement here, not π.
#[allow(clippy::approx_constant)]
const DEPRESSION_Y: [f64; 9] = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
const TIES_X: [f64; 10] = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0];
const TIES_Y: [f64; 11] = [2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 5.0, 7.0, 7.0, 8.0];

fn wide() -> (Vec<f64>, Vec<f64>) {
    let x = (0..200u64).map(|i| ((i * 7919) % 1013) as f64 / 10.0).collect();
    let y = (0..300u64).map(|j| ((j * 104729) % 1009) as f64 / 10.0 + 3.0).collect();
    (x, y)
}

fn close(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= relative * expected.abs().max(1e-300)
}

/// A data set and what SciPy/NumPy compute for it: U, p, shift, 98% interval.
type Case = (&'static str, Vec<f64>, Vec<f64>, f64, f64, f64, (f64, f64));

fn cases() -> Vec<Case> {
    let (wx, wy) = wide();
    vec![
        ("depression", DEPRESSION_X.to_vec(), DEPRESSION_Y.to_vec(), 58.0, 0.13291945818531892, 0.56, (-0.56, 1.2329999999999999)),
        ("ties", TIES_X.to_vec(), TIES_Y.to_vec(), 39.5, 0.2836987700365905, -1.0, (-3.0, 1.0)),
        ("wide", wx, wy, 28020.5, 0.21116021446488964, -3.3999999999999986, (-9.799999999999999, 3.0)),
    ]
}

#[test]
fn mann_whitney_matches_scipy() {
    for (name, x, y, u, p, _, _) in cases() {
        let r = rank_sum(&x, &y).expect("samples");
        assert_eq!(r.u, u, "{name}: U");
        assert!(close(r.p_value, p, 1e-9), "{name}: p {} vs SciPy {p}", r.p_value);
    }
}

#[test]
fn hodges_lehmann_matches_numpy_over_every_pair() {
    for (name, x, y, _, _, shift, interval) in cases() {
        let s = hodges_lehmann(&x, &y, 0.98).expect("samples");
        assert!(close(s.estimate, shift, 1e-12), "{name}: shift {} vs {shift}", s.estimate);
        let (lo, hi) = s.interval.expect("an interval at 98%");
        assert!(close(lo, interval.0, 1e-12) && close(hi, interval.1, 1e-12), "{name}: ({lo}, {hi}) vs {interval:?}");
    }
}

#[test]
fn normal_distribution_matches_scipy() {
    let ppf = [
        (1e-12, -7.034483825301131),
        (1e-4, -3.7190164854556804),
        (0.01, -2.3263478740408408),
        (0.025, -1.9599639845400545),
        (0.3, -0.5244005127080409),
        (0.9, 1.2815515655446004),
        (0.975, 1.959963984540054),
        (0.999999, 4.753424308817087),
    ];
    for (p, z) in ppf {
        assert!(close(normal::quantile(p), z, 1e-12), "ppf({p}) = {} vs {z}", normal::quantile(p));
    }
    assert_eq!(normal::quantile(0.5), 0.0);
    assert!(normal::quantile(-0.1).is_nan() && normal::quantile(1.0) == f64::INFINITY);
    let cdf = [
        (-8.0, 6.22096057427174e-16, 0.9999999999999993),
        (-1.96, 0.024997895148220435, 0.9750021048517795),
        (1.0, 0.8413447460685429, 0.15865525393145707),
        (6.5, 0.99999999995984, 4.016000583859088e-11),
    ];
    for (z, c, s) in cdf {
        assert!(close(normal::cdf(z), c, 1e-12) && close(normal::sf(z), s, 1e-12), "z = {z}");
    }
}

#[test]
fn degenerate_samples_give_no_evidence_rather_than_an_error() {
    assert_eq!(rank_sum(&[], &[1.0]), None);
    assert_eq!(hodges_lehmann(&[1.0], &[], 0.98), None);
    let tied = rank_sum(&[3.0; 5], &[3.0; 7]).expect("samples");
    assert_eq!((tied.p_value, tied.z), (1.0, 0.0), "all tied: no difference");
    let small = hodges_lehmann(&[1.0, 2.0], &[1.5], 0.98).expect("samples");
    assert_eq!(small.interval, None, "two against one cannot bound a 98% interval");
    assert_eq!(paved_judge::clean(&[1.0, f64::NAN, f64::INFINITY, 2.0], paved_judge::NanStrategy::Remove), [1.0, 2.0]);
    assert_eq!(paved_judge::clean(&[f64::NAN, 2.0], paved_judge::NanStrategy::Replace(0.0)), [0.0, 2.0]);
    assert_eq!(paved_judge::mean_ratio(&[2.0, 4.0], &[1.5, 1.5]), Some(2.0));
    assert_eq!(paved_judge::mean_ratio(&[2.0], &[0.0]), None);
}
