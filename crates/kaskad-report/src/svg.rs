//! Hand-written inline SVG line charts.
//!
//! The report must open on an air-gapped validator's machine, so charts are
//! plain SVG markup generated here: no script, no external asset. Native
//! `<title>` elements give per-point tooltips without JavaScript.

use crate::html::escape;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 270.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 70.0;
/// Above this many x labels only every k-th is written, so they never overlap.
const MAX_X_LABELS: usize = 12;
/// Muted, colour-blind-friendly hues (Okabe–Ito) that also survive greyscale print.
const PALETTE: [&str; 4] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7"];

/// One line of a chart; non-finite values are gaps (e.g. a batch without a
/// quality check), not zeros.
pub(crate) struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

pub(crate) struct LineChart<'a> {
    /// Accessible name of the chart and axis title of y.
    pub y_label: &'a str,
    pub x_labels: Vec<String>,
    pub series: Vec<Series<'a>>,
}

/// Renders the chart, or `None` when there is not a single finite point to draw.
pub(crate) fn line_chart(chart: &LineChart) -> Option<String> {
    let finite = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return None;
    }
    let axis = Axis::new(lo, hi);
    let n = chart.x_labels.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // A single point sits in the middle instead of on the y axis.
    let x_at = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y_at = |v: f64| TOP + plot_h * (axis.hi - v) / (axis.hi - axis.lo);

    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        escape(chart.y_label)
    );
    for tick in axis.ticks() {
        let y = y_at(tick);
        svg.push_str(&format!(
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            axis.label(tick)
        ));
    }
    let bottom = TOP + plot_h;
    svg.push_str(&format!(
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#555"/><line x1="{LEFT}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#555"/>"##,
        WIDTH - RIGHT
    ));
    svg.push_str(&format!(
        r#"<text class="tick" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(chart.y_label)
    ));
    let every = chart.x_labels.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, label) in chart.x_labels.iter().enumerate().step_by(every) {
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            x_at(i),
            bottom + 16.0,
            escape(&shorten(label))
        ));
    }
    for (k, series) in chart.series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let mut path = String::new();
        let mut pen_down = false;
        let mut markers = String::new();
        for (i, &v) in series.values.iter().enumerate().take(n) {
            if !v.is_finite() {
                pen_down = false;
                continue;
            }
            let (x, y) = (x_at(i), y_at(v));
            path.push_str(&format!(
                "{}{x:.1} {y:.1} ",
                if pen_down { 'L' } else { 'M' }
            ));
            pen_down = true;
            let label = chart.x_labels.get(i).map_or("", String::as_str);
            markers.push_str(&format!(
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"><title>{}: {} = {}</title></circle>"#,
                escape(label),
                escape(series.name),
                axis.value_label(v)
            ));
        }
        if !path.is_empty() {
            svg.push_str(&format!(
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                path.trim_end()
            ));
        }
        svg.push_str(&markers);
        // Legend entries run left to right under the x labels.
        let lx = LEFT + 150.0 * k as f64;
        let ly = HEIGHT - 14.0;
        svg.push_str(&format!(
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="{ly:.1}" class="legend">{}</text>"#,
            ly - 6.0,
            lx + 18.0,
            escape(&shorten(series.name))
        ));
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Long batch labels (file names) would collide; the table has the full text.
fn shorten(label: &str) -> String {
    const MAX: usize = 18;
    if label.chars().count() <= MAX {
        label.to_string()
    } else {
        let head: String = label.chars().take(MAX - 1).collect();
        format!("{head}…")
    }
}

/// A y axis rounded outward to "nice" 1/2/5 steps so tick labels are short.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    decimals: usize,
}

impl Axis {
    fn new(mut lo: f64, mut hi: f64) -> Axis {
        let non_negative = lo >= 0.0;
        if hi - lo < 1e-12 {
            let pad = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
            lo -= pad;
            hi += pad;
        }
        let raw = (hi - lo) / 4.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = match raw / magnitude {
            r if r <= 1.0 => magnitude,
            r if r <= 2.0 => 2.0 * magnitude,
            r if r <= 5.0 => 5.0 * magnitude,
            _ => 10.0 * magnitude,
        };
        let mut lo = (lo / step).floor() * step;
        // Shares and PSI cannot be negative; an axis dipping below 0 would mislead.
        if non_negative {
            lo = lo.max(0.0);
        }
        let hi = (hi / step).ceil() * step;
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        Axis {
            lo,
            hi,
            step,
            decimals,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let count = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=count)
            .map(|i| self.lo + self.step * i as f64)
            .collect()
    }

    fn label(&self, v: f64) -> String {
        format!("{v:.*}", self.decimals)
    }

    /// Tooltips show more precision than tick labels.
    fn value_label(&self, v: f64) -> String {
        format!("{v:.*}", self.decimals + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: Vec<f64>) -> LineChart<'static> {
        LineChart {
            y_label: "AUC",
            x_labels: (1..=values.len()).map(|i| format!("v{i}")).collect(),
            series: vec![Series {
                name: "AUC",
                values,
            }],
        }
    }

    #[test]
    fn draws_axes_series_and_legend() {
        let svg = line_chart(&chart(vec![0.71, 0.74, 0.73])).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(r#"<path d="M"#));
        assert!(svg.contains(">v2<") && svg.contains("class=\"legend\">AUC<"));
    }

    #[test]
    fn gaps_break_the_line_and_nothing_finite_gives_none() {
        let svg = line_chart(&chart(vec![0.1, f64::NAN, 0.3])).unwrap();
        assert_eq!(svg.matches('M').count(), 2);
        assert!(line_chart(&chart(vec![f64::NAN])).is_none());
        assert!(line_chart(&chart(vec![])).is_none());
    }

    #[test]
    fn flat_zero_series_gets_a_non_negative_axis() {
        let axis = Axis::new(0.0, 0.0);
        assert_eq!((axis.lo, axis.hi), (0.0, 1.0));
        let svg = line_chart(&chart(vec![0.0])).unwrap();
        assert!(!svg.contains(">-"));
    }

    #[test]
    fn axis_rounds_to_nice_steps() {
        let axis = Axis::new(0.712, 0.768);
        assert!((axis.step - 0.02).abs() < 1e-12);
        assert_eq!(axis.label(axis.lo), "0.70");
        assert_eq!(axis.label(axis.hi), "0.78");
    }
}
