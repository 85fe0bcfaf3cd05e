//! The latency plot loadgen writes with `--plot`: one SVG with two panels, the latency
//! distribution by percentile (the HdrHistogram view: the x axis stretches toward the tail,
//! 90% → 99% → 99.9% → ...) and completions per second over the run. Hand-written SVG: a few
//! polylines do not need a plotting library in the build.

use std::fmt::Write;

use hdrhistogram::Histogram;

const PANEL_WIDTH: f64 = 560.0;
const PANEL_HEIGHT: f64 = 360.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 50.0;
const MARGIN_BOTTOM: f64 = 50.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];
/// The x axis runs to 99.999%: 5 "nines".
const NINES: f64 = 5.0;

/// A rounded axis maximum at or above `value` (1, 1.5, 2, 3, 5 or 7.5 times a power of ten).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

/// Draws one panel: frame, title, axis labels and the y grid.
fn frame(svg: &mut String, left: f64, title: &str, x_label: &str, y_label: &str, y_max: f64) {
    let (x0, y0) = (left + MARGIN_LEFT, MARGIN_TOP);
    let (width, height) = (
        PANEL_WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
        PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM,
    );
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="24" font-size="15" text-anchor="middle">{title}</text>"##,
        left + PANEL_WIDTH / 2.0
    );
    for step in 0..=5 {
        let value = y_max * f64::from(step) / 5.0;
        let y = y0 + height - height * f64::from(step) / 5.0;
        let _ = write!(
            svg,
            r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + width,
            x0 - 6.0,
            y + 4.0,
            format_number(value)
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="{x0:.1}" y="{y0:.1}" width="{width:.1}" height="{height:.1}" fill="none" stroke="#333"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{x_label}</text><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{y_label}</text>"##,
        x0 + width / 2.0,
        PANEL_HEIGHT - 12.0,
        left + 16.0,
        y0 + height / 2.0,
        left + 16.0,
        y0 + height / 2.0,
    );
}

fn format_number(value: f64) -> String {
    if value >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn polyline(svg: &mut String, points: &[(f64, f64)], color: &str) {
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="{color}" stroke-width="2" points=""##
    );
    for (x, y) in points {
        let _ = write!(svg, "{x:.1},{y:.1} ");
    }
    svg.push_str(r#""/>"#);
}

fn legend(svg: &mut String, left: f64, index: usize, name: &str, color: &str) {
    let y = MARGIN_TOP + 16.0 + 16.0 * index as f64;
    let x = left + MARGIN_LEFT + 12.0;
    let _ = write!(
        svg,
        r##"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
        x + 18.0,
        x + 24.0,
        y + 4.0,
        escape(name)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the two panels as one SVG document.
pub fn render(
    title: &str,
    latencies: &[(&str, &Histogram<u64>)],
    throughput: &[(&str, &[u64])],
) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><title>{}</title>"##,
        PANEL_WIDTH * 2.0,
        PANEL_HEIGHT,
        escape(title)
    );
    let width = PANEL_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let height = PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;

    // Left: latency by percentile.
    let y_max = nice_ceiling(
        latencies
            .iter()
            .map(|(_, histogram)| histogram.max() as f64 / 1_000.0)
            .fold(0.0, f64::max),
    );
    frame(
        &mut svg,
        0.0,
        "Latency by percentile",
        "percentile",
        "milliseconds",
        y_max,
    );
    for (nines, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let x = MARGIN_LEFT + width * nines as f64 / NINES;
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{label}</text>"##,
            MARGIN_TOP + height + 16.0
        );
    }
    for (index, (name, histogram)) in latencies.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let points: Vec<(f64, f64)> = histogram
            .iter_quantiles(5)
            .map(|step| {
                let quantile = step.quantile_iterated_to().min(1.0 - 10f64.powf(-NINES));
                let nines = -(1.0 - quantile).log10();
                let millis = step.value_iterated_to() as f64 / 1_000.0;
                (
                    MARGIN_LEFT + width * (nines / NINES).clamp(0.0, 1.0),
                    MARGIN_TOP + height - height * (millis / y_max).min(1.0),
                )
            })
            .collect();
        polyline(&mut svg, &points, color);
        legend(&mut svg, 0.0, index, name, color);
    }

    // Right: completions per second.
    let left = PANEL_WIDTH;
    let seconds = throughput
        .iter()
        .map(|(_, series)| series.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let y_max = nice_ceiling(
        throughput
            .iter()
            .flat_map(|(_, series)| series.iter())
            .copied()
            .max()
            .unwrap_or(0) as f64,
    );
    frame(
        &mut svg,
        left,
        "Throughput over the run",
        "seconds",
        "per second",
        y_max,
    );
    for step in 0..=4 {
        let x = left + MARGIN_LEFT + width * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            MARGIN_TOP + height + 16.0,
            format_number(seconds as f64 * f64::from(step) / 4.0)
        );
    }
    for (index, (name, series)) in throughput.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let points: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .map(|(second, count)| {
                (
                    left + MARGIN_LEFT + width * (second as f64 + 0.5) / seconds as f64,
                    MARGIN_TOP + height - height * (*count as f64 / y_max).min(1.0),
                )
            })
            .collect();
        polyline(&mut svg, &points, color);
        legend(&mut svg, left, index, name, color);
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round_numbers_at_or_above_the_data() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 150.0);
        assert_eq!(nice_ceiling(2_001.0), 3_000.0);
    }

    #[test]
    fn plot_draws_one_line_per_series_inside_the_panels() {
        let mut fast = super::super::latency::histogram();
        let mut slow = super::super::latency::histogram();
        for micros in 1..=10_000u64 {
            fast.record(micros).unwrap();
            slow.record(micros * 10).unwrap();
        }
        let svg = render(
            "run <1>",
            &[("POST", &fast), ("POST → CONFIRMED", &slow)],
            &[("confirmed", &[10, 20, 30][..])],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("run &lt;1&gt;"), "the title is escaped");
        assert!(svg.contains("POST → CONFIRMED"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // Every plotted point lies inside the drawing.
        let mut highest = Vec::new();
        for points in svg.split(r#"points=""#).skip(1) {
            let points = points.split('"').next().unwrap();
            let mut top = f64::MAX;
            for point in points.split_whitespace() {
                let (x, y) = point.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((0.0..=PANEL_WIDTH * 2.0).contains(&x), "{point}");
                assert!((0.0..=PANEL_HEIGHT).contains(&y), "{point}");
                top = top.min(y);
            }
            highest.push(top);
        }
        // Ten times slower reaches ten times higher (SVG y grows downward), and its maximum
        // lies in the upper half of the panel the axis was sized for.
        let bottom = PANEL_HEIGHT - MARGIN_BOTTOM;
        assert!(highest[1] < highest[0], "{highest:?}");
        let (fast_height, slow_height) = (bottom - highest[0], bottom - highest[1]);
        assert!(
            (slow_height / fast_height - 10.0).abs() < 0.5,
            "{highest:?}"
        );
        assert!(
            highest[1] < MARGIN_TOP + (bottom - MARGIN_TOP) / 2.0,
            "{highest:?}"
        );
    }
}
