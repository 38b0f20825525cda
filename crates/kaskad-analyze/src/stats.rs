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
/// `n` and `m` (Kolmogorov distribution with Stephens' small-sample correction).
pub fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let en = (n as f64 * m as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
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
        // scipy.stats.kstwobign.sf(1.0) = 0.26999967
        assert!((ks_p_value(1.0 / (10_000f64).sqrt() * 0.99, 20_000, 20_000) - 0.27).abs() < 0.01);
    }

    #[test]
    fn js_distance_bounds() {
        assert_eq!(js_distance(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }
}
