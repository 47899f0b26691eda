//! Pieces of the HTML health report: text escaped for HTML, and a line chart as inline SVG (no
//! script, no external asset).

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The NOTICE a long operation prints per batch: rows done of the estimate, rate, elapsed time
/// and what is left (`total` negative or zero: unknown).
pub fn progress_line(
    operation: &str,
    target: &str,
    phase: &str,
    done: i64,
    total: i64,
    elapsed: std::time::Duration,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut line = format!("{operation} {target} ({phase}): {done}");
    if total > 0 {
        let pct = (done as f64 * 100.0 / total as f64).min(100.0);
        line.push_str(&format!(" of about {total} rows ({pct:.0}%)"));
    } else {
        line.push_str(" rows");
    }
    line.push_str(&format!(", {rate:.0} rows/s, {secs:.0} s elapsed"));
    if total > done && rate > 0.0 {
        line.push_str(&format!(
            ", about {:.0} s left",
            (total - done) as f64 / rate
        ));
    }
    line
}

/// A value for a chart label; `fine`: the axis spans less than 10, so keep two decimals.
fn short(v: f64, fine: bool) -> String {
    let a = v.abs();
    if fine && a < 1e3 {
        return format!("{v:.2}");
    }
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A line chart of `(x, y)` points (x: seconds since the epoch, in order) as an SVG element of
/// `width` × `height` pixels: title and unit, the y range and the last value, the time span.
/// Points whose y is not finite are left out; with none left it says "no data".
pub fn svg_line_chart(
    title: &str,
    unit: &str,
    points: &[(f64, f64)],
    width: u32,
    height: u32,
) -> String {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (w, h) = (f64::from(width.max(120)), f64::from(height.max(80)));
    let (left, right, top, bottom) = (48.0, 8.0, 24.0, 20.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\">\
<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fff\" stroke=\"#ccc\"/>\
<text x=\"6\" y=\"16\" font-size=\"13\" font-family=\"sans-serif\" fill=\"#222\">{t} ({u})</text>",
        t = escape_html(title),
        u = escape_html(unit)
    );
    if pts.is_empty() {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" font-family=\"sans-serif\" fill=\"#888\" text-anchor=\"middle\">no data</text></svg>",
            w / 2.0,
            h / 2.0 + 6.0
        ));
        return svg;
    }
    let (x0, x1) = (pts[0].0, pts[pts.len() - 1].0);
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
            (lo.min(*y), hi.max(*y))
        });
    // a meaningful zero: the axis starts at 0 (or below, for negative values), and a percentage
    // is drawn on 0..100, so a flat 22.8 % never looks like a fall
    y0 = y0.min(0.0);
    y1 = y1.max(0.0);
    if unit == "%" && y1 <= 100.0 {
        y1 = 100.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    let fine = y1 - y0 < 10.0;
    let sx = |x: f64| {
        if x1 > x0 {
            left + (x - x0) / (x1 - x0) * (w - left - right)
        } else {
            (left + w - right) / 2.0
        }
    };
    let sy = |y: f64| top + (1.0 - (y - y0) / (y1 - y0)) * (h - top - bottom);
    let line: Vec<String> = pts
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
        .collect();
    let last = pts[pts.len() - 1].1;
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{yb}\" stroke=\"#999\"/>\
<line x1=\"{left}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"#999\"/>\
<text x=\"{lx}\" y=\"{ty}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#555\" text-anchor=\"end\">{hi}</text>\
<text x=\"{lx}\" y=\"{yb}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#555\" text-anchor=\"end\">{lo}</text>\
<text x=\"{xr}\" y=\"16\" font-size=\"11\" font-family=\"sans-serif\" fill=\"#333\" text-anchor=\"end\">last {last}</text>\
<text x=\"{xr}\" y=\"{by}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#555\" text-anchor=\"end\">{span} min</text>\
<polyline fill=\"none\" stroke=\"#2a6fdb\" stroke-width=\"1.5\" points=\"{pl}\"/>",
        yb = h - bottom,
        xr = w - right,
        lx = left - 4.0,
        ty = top + 8.0,
        by = h - 4.0,
        hi = short(y1, fine),
        lo = short(y0, fine),
        last = short(last, fine),
        span = ((x1 - x0) / 60.0).round(),
        pl = line.join(" ")
    ));
    if pts.len() == 1 {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#2a6fdb\"/>",
            sx(pts[0].0),
            sy(pts[0].1)
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        let d = std::time::Duration::from_secs(4);
        assert_eq!(
            progress_line("rebuild_search", "public.articles", "batch", 50_000, 200_000, d),
            "rebuild_search public.articles (batch): 50000 of about 200000 rows (25%), 12500 rows/s, 4 s elapsed, about 12 s left"
        );
        assert_eq!(
            progress_line("copy", "t", "copying", 10, 0, d),
            "copy t (copying): 10 rows, 2 rows/s, 4 s elapsed"
        );
        // an estimate below the rows done: no ETA, at most 100 %
        assert_eq!(
            progress_line("copy", "t", "copying", 300, 200, d),
            "copy t (copying): 300 of about 200 rows (100%), 75 rows/s, 4 s elapsed"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn charts() {
        let s = svg_line_chart(
            "TPS <x>",
            "1/s",
            &[(0.0, 1.0), (60.0, 3.0), (120.0, f64::NAN), (180.0, 2.0)],
            300,
            120,
        );
        assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(s.ends_with("</svg>"));
        assert!(s.contains("TPS &lt;x&gt; (1/s)"));
        assert_eq!(s.matches("<polyline").count(), 1);
        // three finite points
        assert_eq!(ys(&s).len(), 3);
        assert!(s.contains("last 2.00"));
        assert!(s.contains(">3 min<"));
        let empty = svg_line_chart("x", "y", &[], 300, 120);
        assert!(empty.contains("no data") && !empty.contains("polyline"));
        let one = svg_line_chart("x", "y", &[(5.0, 7.0)], 300, 120);
        assert!(one.contains("<circle"));
    }

    /// The y pixel of each point of a chart's polyline.
    fn ys(svg: &str) -> Vec<f64> {
        let pl = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        pl.split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn charts_start_at_a_meaningful_zero() {
        // disk free going from 22.9 % to 22.8 %: a change of under a pixel, not a steep fall
        let pct = svg_line_chart("disk free", "%", &[(0.0, 22.9), (60.0, 22.8)], 300, 120);
        let y = ys(&pct);
        assert!((y[1] - y[0]).abs() < 1.0, "{y:?}");
        assert!(pct.contains(">100<") && pct.contains(">0<"), "{pct}");
        // a flat series sits at its height above zero, not at the bottom
        let flat = svg_line_chart("tps", "1/s", &[(0.0, 50.0), (60.0, 50.0)], 300, 120);
        assert!(ys(&flat)[0] < 100.0 - 1.0, "{flat}");
        // negative values keep their own minimum
        let neg = svg_line_chart("delta", "x", &[(0.0, -5.0), (60.0, 5.0)], 300, 120);
        assert!(neg.contains(">-5.00<") || neg.contains(">-5<"), "{neg}");
    }
}
