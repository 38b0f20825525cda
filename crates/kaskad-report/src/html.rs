//! HTML building blocks: escaping, number formatting and tables.
//!
//! Every string that came from a user or a data file (source paths, column
//! names, findings, run details) passes through [`escape`] before it reaches
//! the page; cells handed to [`table`] are already-safe HTML.

/// Escapes text for use in HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Placeholder for values that do not exist (no quality check, NaN metric).
pub(crate) const NONE: &str = "—";

/// Fixed-decimal number, or a dash for NaN/infinity.
pub(crate) fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        NONE.to_string()
    }
}

pub(crate) fn opt_num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| NONE.to_string(), |v| num(v, decimals))
}

/// A share in [0, 1] shown as a percentage.
pub(crate) fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.2} %", share * 100.0)
    } else {
        NONE.to_string()
    }
}

/// Bytes as mebibytes, the unit memory limits are usually set in.
pub(crate) fn mib(bytes: u64) -> String {
    if bytes == 0 {
        NONE.to_string()
    } else {
        format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// Green/red status marker; the word carries the meaning, the colour helps.
pub(crate) fn status(ok: bool) -> &'static str {
    if ok {
        r#"<span class="ok">ok</span>"#
    } else {
        r#"<span class="fail">failed</span>"#
    }
}

/// A column header; numeric columns are right-aligned so digits line up.
pub(crate) struct Col {
    name: &'static str,
    numeric: bool,
}

pub(crate) const fn text(name: &'static str) -> Col {
    Col {
        name,
        numeric: false,
    }
}

pub(crate) const fn number(name: &'static str) -> Col {
    Col {
        name,
        numeric: true,
    }
}

/// Renders a table; each row must have one already-escaped cell per column.
pub(crate) fn table(cols: &[Col], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for col in cols {
        out.push_str(&format!("<th{}>{}</th>", class(col), escape(col.name)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (col, cell) in cols.iter().zip(row) {
            out.push_str(&format!("<td{}>{cell}</td>", class(col)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

fn class(col: &Col) -> &'static str {
    if col.numeric { r#" class="num""# } else { "" }
}

/// Items as a compact list inside a cell, or a dash when there are none.
pub(crate) fn list(items: &[String]) -> String {
    if items.is_empty() {
        return NONE.to_string();
    }
    let mut out = String::from(r#"<ul class="cell">"#);
    for item in items {
        out.push_str(&format!("<li>{item}</li>"));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn numbers_format_and_dash_non_finite() {
        assert_eq!(num(0.123456, 4), "0.1235");
        assert_eq!(num(f64::NAN, 4), NONE);
        assert_eq!(opt_num(None, 2), NONE);
        assert_eq!(percent(0.0125), "1.25 %");
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5");
        assert_eq!(mib(0), NONE);
    }

    #[test]
    fn table_aligns_numbers_and_pads_nothing() {
        let html = table(&[text("a"), number("b")], &[vec!["x".into(), "1".into()]]);
        assert_eq!(
            html,
            r#"<table><thead><tr><th>a</th><th class="num">b</th></tr></thead><tbody><tr><td>x</td><td class="num">1</td></tr></tbody></table>"#
        );
        assert_eq!(list(&[]), NONE);
    }
}
