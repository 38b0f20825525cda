//! Time-ordered splits: rows are assumed sorted by time, so a split is a pair
//! of index ranges and the test part always comes after the train part.

use std::ops::Range;

/// Time-ordered hold-out on `n` rows already in time order:
/// `(train = 0..n-h, test = n-h..n)` with `h = round(n * share)`.
///
/// Both parts get at least one row whenever `n >= 2`; with fewer rows there
/// is nothing to hold out, so everything is train and the test range is empty.
pub fn holdout(n: usize, share: f64) -> (Range<usize>, Range<usize>) {
    if n < 2 {
        return (0..n, n..n);
    }
    // A NaN share would make the cast meaningless; treat it as "smallest test".
    let share = if share.is_nan() { 0.0 } else { share };
    let h = ((n as f64) * share).round().clamp(1.0, (n - 1) as f64) as usize;
    (0..n - h, n - h..n)
}

/// Expanding-window time-series cross-validation, index-for-index the same
/// as scikit-learn's `TimeSeriesSplit(n_splits = folds)`: test blocks of
/// `n / (folds + 1)` rows at the end of the data, train = everything before.
///
/// Returns no folds when `folds == 0` or when there are too few rows for a
/// test block of at least one row (sklearn would raise instead).
pub fn time_series_folds(n: usize, folds: usize) -> Vec<(Range<usize>, Range<usize>)> {
    if folds == 0 {
        return Vec::new();
    }
    let test_size = n / (folds + 1);
    if test_size == 0 {
        return Vec::new();
    }
    // The first train block absorbs the remainder, as in sklearn.
    let first_test = n - folds * test_size;
    (0..folds)
        .map(|i| {
            let start = first_test + i * test_size;
            (0..start, start..start + test_size)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_match_sklearn_time_series_split() {
        // from sklearn.model_selection import TimeSeriesSplit; import numpy as np
        // for tr, te in TimeSeriesSplit(n_splits=3).split(np.zeros(10)): print(tr, te)
        // [0 1 2 3] [4 5] / [0 1 2 3 4 5] [6 7] / [0 1 2 3 4 5 6 7] [8 9]
        assert_eq!(
            time_series_folds(10, 3),
            vec![(0..4, 4..6), (0..6, 6..8), (0..8, 8..10)]
        );
    }

    #[test]
    fn folds_put_the_remainder_in_the_first_train_block() {
        // TimeSeriesSplit(n_splits=2) on 11 rows: test_size = 3, tests start at 5 and 8.
        assert_eq!(time_series_folds(11, 2), vec![(0..5, 5..8), (0..8, 8..11)]);
    }

    #[test]
    fn folds_degenerate_inputs_give_nothing() {
        assert!(time_series_folds(10, 0).is_empty());
        assert!(time_series_folds(3, 5).is_empty());
        assert!(time_series_folds(0, 2).is_empty());
    }

    #[test]
    fn holdout_rounds_and_keeps_both_sides_non_empty() {
        assert_eq!(holdout(10, 0.2), (0..8, 8..10));
        assert_eq!(holdout(10, 0.25), (0..7, 7..10)); // 2.5 rounds away from zero
        assert_eq!(holdout(10, 0.0), (0..9, 9..10));
        assert_eq!(holdout(10, 1.0), (0..1, 1..10));
        assert_eq!(holdout(10, f64::NAN), (0..9, 9..10));
        assert_eq!(holdout(1, 0.5), (0..1, 1..1));
        assert_eq!(holdout(0, 0.5), (0..0, 0..0));
    }
}
