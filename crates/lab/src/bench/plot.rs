//! The SVG plots every benchmark writes next to its Markdown: a grouped bar
//! chart (success by cell and variant, with intervals; rates with their
//! range), a strip plot (each trial's or pod's time as a dot, per row), and
//! panels of lines over time (the soak's samples). Plain SVG text, so that
//! a document shows it and no plotting library or font is needed.

use std::fmt::Write as _;

/// One bar: a value with an optional interval, both in the chart's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// The value.
    pub value: f64,
    /// The interval around it, if any.
    pub interval: Option<(f64, f64)>,
}

const COLOURS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];
const WIDTH: f64 = 760.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="20" font-size="14" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
}

fn legend(out: &mut String, series: &[String], y: f64) {
    let mut x = LEFT;
    for (i, name) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
            y - 9.0,
            x + 14.0,
            y,
            escape(name)
        );
        x += 24.0 + 7.0 * name.len() as f64;
    }
}

/// A grouped bar chart: one group per category, one bar per series, values
/// from 0 to `y_max` in `unit`. Missing bars are left out.
pub fn bars(
    title: &str,
    unit: &str,
    y_max: f64,
    categories: &[String],
    series: &[(String, Vec<Option<Bar>>)],
) -> String {
    let plot_height = 220.0;
    let label_room = 110.0;
    let height = TOP + plot_height + label_room + 30.0;
    let mut out = String::new();
    header(&mut out, height, title);
    let width = WIDTH - LEFT - RIGHT;
    let y = |v: f64| TOP + plot_height * (1.0 - (v / y_max).clamp(0.0, 1.0));
    for tick in 0..=4 {
        let v = y_max * f64::from(tick) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{v:.0}{unit}</text>"##,
            LEFT + width,
            LEFT - 4.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    let group = width / categories.len().max(1) as f64;
    let bar = (group * 0.8) / series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let x0 = LEFT + group * c as f64 + group * 0.1;
        for (s, (_, values)) in series.iter().enumerate() {
            let Some(Some(value)) = values.get(c) else {
                continue;
            };
            let x = x0 + bar * s as f64;
            let colour = COLOURS[s % COLOURS.len()];
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"#,
                y(value.value),
                bar * 0.9,
                y(0.0) - y(value.value)
            );
            if let Some((low, high)) = value.interval {
                let mid = x + bar * 0.45;
                let _ = write!(
                    out,
                    r#"<line x1="{mid:.1}" x2="{mid:.1}" y1="{:.1}" y2="{:.1}" stroke="black"/>"#,
                    y(low),
                    y(high)
                );
            }
        }
        let lx = x0 + group * 0.4;
        let ly = TOP + plot_height + 8.0;
        let _ = write!(
            out,
            r#"<text x="{lx:.1}" y="{ly:.1}" transform="rotate(35 {lx:.1} {ly:.1})">{}</text>"#,
            escape(category)
        );
    }
    let names: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
    legend(&mut out, &names, height - 10.0);
    out.push_str("</svg>\n");
    out
}

/// A strip plot: one row per label, each value a dot on a shared axis from
/// 0 to `x_max` in `unit`.
pub fn strip(title: &str, unit: &str, x_max: f64, rows: &[(String, Vec<f64>)]) -> String {
    let label_width = 230.0;
    let row_height = 22.0;
    let height = TOP + row_height * rows.len() as f64 + 40.0;
    let mut out = String::new();
    header(&mut out, height, title);
    let left = label_width;
    let width = WIDTH - left - RIGHT;
    let x = |v: f64| left + width * (v / x_max).clamp(0.0, 1.0);
    let bottom = TOP + row_height * rows.len() as f64;
    for tick in 0..=5 {
        let v = x_max * f64::from(tick) / 5.0;
        let _ = write!(
            out,
            r##"<line x1="{x}" x2="{x}" y1="{TOP}" y2="{bottom}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{v:.1}{unit}</text>"##,
            bottom + 14.0,
            x = x(v)
        );
    }
    for (r, (label, values)) in rows.iter().enumerate() {
        let cy = TOP + row_height * (r as f64 + 0.5);
        let colour = COLOURS[r % COLOURS.len()];
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            cy + 4.0,
            escape(label)
        );
        for v in values {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{cy:.1}" r="3" fill="{colour}" fill-opacity="0.6"/>"#,
                x(*v)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// The axis end for `rows`: the largest value (at least 1), rounded up.
pub fn ceiling(rows: &[(String, Vec<f64>)]) -> f64 {
    rows.iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(1.0, f64::max)
        .ceil()
}

/// One line of a [`Panel`]: its name and its values, one per x.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The name, written at the right.
    pub name: &'static str,
    /// The values.
    pub values: Vec<f64>,
    /// Drawn dashed.
    pub dashed: bool,
}

/// A panel of [`lines`]: its title and its lines, on an axis of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The title, above it.
    pub title: &'static str,
    /// The lines.
    pub lines: Vec<Line>,
}

/// Panels of lines over a shared x axis from 0 to the last of `x` (at
/// least 1), labelled in `x_unit`; each panel's y axis runs from 0 to its
/// largest value and a sixth more.
pub fn lines(title: &str, x: &[f64], x_unit: &str, panels: &[Panel]) -> String {
    let (panel_height, gap) = (150.0, 40.0);
    let height = TOP + panels.len() as f64 * (panel_height + gap);
    let x_max = x.last().copied().unwrap_or(1.0).max(1.0);
    let mut out = String::new();
    header(&mut out, height, title);
    for (p, panel) in panels.iter().enumerate() {
        let y0 = TOP + p as f64 * (panel_height + gap) + 20.0;
        let (left, right) = (LEFT, WIDTH - 140.0);
        let y_max = panel
            .lines
            .iter()
            .flat_map(|line| line.values.iter().copied())
            .fold(1.0, f64::max)
            * 1.15;
        let sx = |m: f64| left + (right - left) * m / x_max;
        let sy = |v: f64| y0 + panel_height - panel_height * v / y_max;
        let bottom = y0 + panel_height;
        let _ = write!(
            out,
            r##"<text x="{left}" y="{}">{}</text><line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#999"/><line x1="{left}" x2="{left}" y1="{y0}" y2="{bottom}" stroke="#999"/><text x="{}" y="{}" text-anchor="end">{y_max:.0}</text><text x="{}" y="{bottom}" text-anchor="end">0</text><text x="{right}" y="{}" text-anchor="end">{x_max:.0}{x_unit}</text>"##,
            y0 - 6.0,
            escape(panel.title),
            left - 4.0,
            y0 + 10.0,
            left - 4.0,
            bottom + 14.0,
        );
        for (i, line) in panel.lines.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let dash = if line.dashed {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let points: Vec<String> = x
                .iter()
                .zip(&line.values)
                .map(|(m, v)| format!("{:.1},{:.1}", sx(*m), sy(*v)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{}"/><text x="{}" y="{}" fill="{colour}">{}</text>"#,
                points.join(" "),
                right + 8.0,
                y0 + 14.0 + 14.0 * i as f64,
                escape(line.name)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_well_formed_svg_with_every_label() {
        let chart = bars(
            "success <by> pairing",
            "%",
            100.0,
            &["a / b".into(), "c / d".into()],
            &[
                (
                    "birthday".into(),
                    vec![
                        Some(Bar {
                            value: 100.0,
                            interval: Some((89.0, 100.0)),
                        }),
                        None,
                    ],
                ),
                (
                    "stock".into(),
                    vec![
                        Some(Bar {
                            value: 0.0,
                            interval: None,
                        }),
                        Some(Bar {
                            value: 50.0,
                            interval: None,
                        }),
                    ],
                ),
            ],
        );
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert!(chart.contains("success &lt;by&gt; pairing"));
        assert_eq!(chart.matches("<rect x=").count(), 3 + 2, "bars and legend");
        let rows = [("x".into(), vec![1.0, 2.0, 30.0])];
        let dots = strip("time", " s", ceiling(&rows), &rows);
        assert_eq!(dots.matches("<circle").count(), 3);
        assert!(dots.contains(">30.0 s<"), "{dots}");
        let line = |name, dashed| Line {
            name,
            values: vec![1.0, 3.0],
            dashed,
        };
        let panels = lines(
            "soak",
            &[0.0, 2.0],
            " min",
            &[Panel {
                title: "fds",
                lines: vec![line("relay", false), line("relay UDP", true)],
            }],
        );
        assert_eq!(panels.matches("<polyline").count(), 2);
        assert_eq!(panels.matches("stroke-dasharray").count(), 1);
        assert!(panels.contains(">2 min<"), "{panels}");
    }
}
