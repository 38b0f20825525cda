//! Turning the values of a time column into sortable keys.

/// A sortable key for a time value: numbers as they are; `2018-03-15`,
/// `2018-03-15T10:00:00`, `2018/03/15`, `2018-03` and `Mar-2018` / `Mar 2018`
/// as days since year 0 (approximate calendar, exact order).
pub fn time_key(value: &str) -> Option<f64> {
    let v = value.trim();
    if let Ok(n) = v.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let day_number = |y: i64, m: i64, d: i64| -> Option<f64> {
        ((1..=12).contains(&m) && (1..=31).contains(&d))
            .then_some((y * 372 + (m - 1) * 31 + (d - 1)) as f64)
    };
    let date_part = v.split(['T', ' ']).next().unwrap_or(v);
    let parts: Vec<&str> = date_part.split(['-', '/']).collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 => day_number(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?),
        [y, m] if y.len() == 4 && m.chars().all(|c| c.is_ascii_digit()) => {
            day_number(y.parse().ok()?, m.parse().ok()?, 1)
        }
        _ => {
            let (month, year) = v.split_once(['-', ' ', '/'])?;
            let m = month_number(month)?;
            day_number(year.trim().parse().ok()?, m, 1)
        }
    }
}

fn month_number(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.trim().to_ascii_lowercase();
    let prefix = lower.get(..3)?;
    MONTHS
        .iter()
        .position(|m| *m == prefix)
        .map(|i| i as i64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_the_formats_lenders_use() {
        assert!(time_key("Jan-2018") < time_key("Mar-2018"));
        assert!(time_key("Dec-2017") < time_key("Jan-2018"));
        assert!(time_key("2018-01-31") < time_key("2018-02-01"));
        assert_eq!(time_key("2018-02"), time_key("Feb-2018"));
        assert_eq!(time_key("2018-02-01T10:00:00"), time_key("2018/02/01"));
        assert_eq!(time_key("17"), Some(17.0));
        assert_eq!(time_key("soon"), None);
        assert_eq!(time_key("2018-13-01"), None);
    }
}
