//! The statistics drift needs: PSI, Jensen–Shannon distance, and the
//! p-values of the Kolmogorov–Smirnov and chi-square tests.

/// Shares below this are raised to it so that empty bins give a large but
/// finite PSI instead of infinity.
const SHARE_FLOOR: f64 = 1e-4;

/// Population stability index of `actual` shares against `expected` shares.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(SHARE_FLOOR), a.max(SHARE_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Jensen–Shannon distance (base 2, between 0 and 1).
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let divergence: f64 = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| {
            let m = (a + b) / 2.0;
            0.5 * kl(a, m) + 0.5 * kl(b, m)
        })
        .sum();
    divergence.max(0.0).sqrt().min(1.0)
}

/// Two-sample Kolmogorov–Smirnov statistic of two sorted samples.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Asymptotic p-value of the two-sample KS statistic `d` for sample sizes
/// `n` and `m`: the Kolmogorov distribution at `d·√(nm/(n+m))`, with
/// Stephens' small-sample correction of that argument.
pub fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 || d <= 0.0 {
        return 1.0;
    }
    let en = (n as f64 * m as f64 / (n + m) as f64).sqrt();
    kolmogorov_sf((en + 0.12 + 0.11 / en) * d)
}

/// `P(K > x)` for the Kolmogorov distribution.
fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let sf = if x < 1.0 {
        // The alternating series below converges slowly for small x; the
        // theta-function form of the CDF converges in a few terms there.
        let c = -std::f64::consts::PI.powi(2) / (8.0 * x * x);
        let cdf: f64 = (1..=10)
            .map(|k| (f64::from(2 * k - 1).powi(2) * c).exp())
            .sum::<f64>()
            * (2.0 * std::f64::consts::PI).sqrt()
            / x;
        1.0 - cdf
    } else {
        2.0 * (1..=10)
            .map(|k| {
                let k = f64::from(k);
                let sign = if k % 2.0 == 1.0 { 1.0 } else { -1.0 };
                sign * (-2.0 * k * k * x * x).exp()
            })
            .sum::<f64>()
    };
    sf.clamp(0.0, 1.0)
}

/// Pearson's chi-square statistic of `observed` counts against `expected`
/// shares, and its degrees of freedom. Buckets expected fewer than five times
/// are pooled, the usual condition for the chi-square approximation to hold;
/// an expected share of zero is floored like in [`psi`] so that a value
/// never seen before weighs heavily but finitely.
pub fn chi_square_statistic(expected: &[f64], observed: &[usize]) -> (f64, usize) {
    let n: usize = observed.iter().sum();
    if n == 0 {
        return (0.0, 0);
    }
    let n = n as f64;
    let (mut stat, mut buckets) = (0.0, 0usize);
    let (mut pooled_e, mut pooled_o) = (0.0, 0.0);
    for (&e, &o) in expected.iter().zip(observed) {
        let (e, o) = (e * n, o as f64);
        if e < 5.0 {
            pooled_e += e;
            pooled_o += o;
        } else {
            stat += (o - e).powi(2) / e;
            buckets += 1;
        }
    }
    if pooled_e > 0.0 || pooled_o > 0.0 {
        let e = pooled_e.max(SHARE_FLOOR * n);
        stat += (pooled_o - e).powi(2) / e;
        buckets += 1;
    }
    (stat, buckets.saturating_sub(1))
}

/// The `q` quantile (0..=1) of sorted values, interpolating linearly
/// between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(last);
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Survival function of the chi-square distribution: `P(X ≥ x)` with `df`
/// degrees of freedom, as the regularized upper incomplete gamma `Q(df/2, x/2)`.
pub fn chi_square_p_value(x: f64, df: usize) -> f64 {
    if df == 0 || x <= 0.0 {
        return 1.0;
    }
    upper_gamma_regularized(df as f64 / 2.0, x / 2.0).clamp(0.0, 1.0)
}

fn upper_gamma_regularized(a: f64, x: f64) -> f64 {
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series for the lower function P, then Q = 1 - P.
        let (mut sum, mut term, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * log_prefix.exp()
    } else {
        // Continued fraction for Q (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -f64::from(i) * (f64::from(i) - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        log_prefix.exp() * h
    }
}

/// Lanczos approximation of `ln Γ(x)` for `x > 0`.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 6] = [
        76.180_091_729_471_46,
        -86.505_320_329_416_77,
        24.014_098_240_830_91,
        -1.231_739_572_450_155,
        0.001_208_650_973_866_179,
        -0.000_005_395_239_384_953,
    ];
    let tmp = x + 5.5 - (x + 0.5) * (x + 5.5).ln();
    let mut series = 1.000_000_000_190_015;
    for (i, g) in G.iter().enumerate() {
        series += g / (x + 1.0 + i as f64);
    }
    -tmp + (2.506_628_274_631_000_5 * series / x).ln()
}

/// PSI of a score distribution against a reference one (e.g. training
/// scores against the newest rows' scores), over `bins` quantile bins of
/// the reference: the stability of what a model outputs.
pub fn score_psi(reference: &[f64], current: &[f64], bins: usize) -> f64 {
    let mut sorted: Vec<f64> = reference
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..bins)
        .filter_map(|k| quantile(&sorted, k as f64 / bins as f64))
        .collect();
    edges.dedup();
    let shares = |values: &[f64]| {
        let mut counts = vec![0usize; edges.len() + 1];
        let mut total = 0;
        for v in values.iter().filter(|v| v.is_finite()) {
            counts[edges.partition_point(|e| e < v)] += 1;
            total += 1;
        }
        counts
            .into_iter()
            .map(|c| c as f64 / total.max(1) as f64)
            .collect::<Vec<f64>>()
    };
    psi(&shares(reference), &shares(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_shares_and_large_for_a_shift() {
        let e = [0.25, 0.25, 0.25, 0.25];
        assert!(psi(&e, &e).abs() < 1e-12);
        assert!(psi(&e, &[0.05, 0.15, 0.3, 0.5]) > 0.25);
        assert!(psi(&e, &[0.0, 0.0, 0.5, 0.5]).is_finite());
    }

    #[test]
    fn chi_square_matches_tables() {
        assert!((chi_square_p_value(3.841, 1) - 0.05).abs() < 1e-3);
        assert!((chi_square_p_value(9.488, 4) - 0.05).abs() < 1e-3);
        assert!((chi_square_p_value(2.0, 2) - (-1.0f64).exp()).abs() < 1e-9);
        assert!((chi_square_p_value(40.0, 30) - 0.1045).abs() < 1e-3);
    }

    #[test]
    fn ks_statistic_and_p_value() {
        let a: Vec<f64> = (0..50).map(f64::from).collect();
        let shifted: Vec<f64> = (25..75).map(f64::from).collect();
        assert_eq!(ks_statistic(&a, &a), 0.0);
        assert!((ks_statistic(&a, &shifted) - 0.5).abs() < 1e-12);
        let p = ks_p_value(0.5, 50, 50);
        assert!(p < 1e-4 && p > 1e-7, "{p}");
        assert_eq!(ks_p_value(0.0, 50, 50), 1.0);
        assert!(ks_p_value(0.01, 50, 50) > 0.999);
    }

    #[test]
    fn kolmogorov_matches_scipy_on_both_branches() {
        // scipy.stats.kstwobign.sf
        assert!((kolmogorov_sf(1.0) - 0.269_999_67).abs() < 1e-6);
        assert!((kolmogorov_sf(0.5) - 0.963_945_2).abs() < 1e-6);
        assert!((kolmogorov_sf(1.36) - 0.049_4).abs() < 1e-3);
        assert!((kolmogorov_sf(0.999_999) - kolmogorov_sf(1.000_001)).abs() < 1e-5);
    }

    #[test]
    fn chi_square_statistic_pools_rare_buckets() {
        let e = [0.5, 0.5];
        assert_eq!(chi_square_statistic(&e, &[50, 50]), (0.0, 1));
        let (stat, df) = chi_square_statistic(&e, &[60, 40]);
        assert!((stat - 4.0).abs() < 1e-12);
        assert_eq!(df, 1);
        // The last two buckets expect 1 each: pooled into one bucket.
        let (_, df) = chi_square_statistic(&[0.49, 0.49, 0.01, 0.01], &[49, 49, 1, 1]);
        assert_eq!(df, 2);
        // A category the reference never saw: floored, large but finite.
        let (stat, _) = chi_square_statistic(&[0.5, 0.5, 0.0], &[40, 40, 20]);
        assert!(stat.is_finite() && stat > 100.0);
    }

    #[test]
    fn score_psi_is_zero_for_the_same_scores_and_grows_with_a_shift() {
        let scores: Vec<f64> = (0..1_000).map(|i| f64::from(i) / 1_000.0).collect();
        assert!(score_psi(&scores, &scores, 10).abs() < 1e-12);
        let shifted: Vec<f64> = scores.iter().map(|s| (s + 0.3).min(1.0)).collect();
        assert!(score_psi(&scores, &shifted, 10) > 0.25);
    }

    #[test]
    fn quantile_interpolates() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn js_distance_bounds() {
        assert_eq!(js_distance(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }
}
