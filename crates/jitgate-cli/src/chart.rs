//! The approval-load chart: an SVG bar chart, one series of bars per reviewer group, one group
//! of bars per day. Written by hand: a chart library needs a font engine to lay out its labels,
//! and this one only needs rectangles and text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const COLOURS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Requests needing each group's approval, per day, as an SVG document.
pub fn approval_load(load: &BTreeMap<String, BTreeMap<String, u64>>) -> String {
    let days: BTreeSet<&String> = load.values().flat_map(BTreeMap::keys).collect();
    let groups: Vec<&String> = load.keys().collect();
    let max = load
        .values()
        .flat_map(BTreeMap::values)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let (left, top, plot_h, bar_w, gap) = (60.0, 40.0, 300.0, 12.0, 16.0);
    let day_w = bar_w * groups.len().max(1) as f64 + gap;
    let width = left + day_w * days.len().max(1) as f64 + 220.0;
    let height = top + plot_h + 90.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="20" font-size="14">Approval load: requests needing each group, per day</text>"#
    );
    for tick in 0..=4 {
        let value = max as f64 * f64::from(tick) / 4.0;
        let y = top + plot_h - plot_h * f64::from(tick) / 4.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            width - 210.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{value:.0}</text>"#,
            left - 6.0,
            y + 4.0
        );
    }
    for (d, day) in days.iter().enumerate() {
        let x0 = left + day_w * d as f64 + gap / 2.0;
        for (g, group) in groups.iter().enumerate() {
            let n = load[*group].get(*day).copied().unwrap_or(0);
            let h = plot_h * n as f64 / max as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar_w}" height="{h:.1}" fill="{}"><title>{}: {n} on {}</title></rect>"#,
                x0 + bar_w * g as f64,
                top + plot_h - h,
                COLOURS[g % COLOURS.len()],
                escape(group),
                escape(day)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" transform="rotate(45 {:.1} {:.1})">{}</text>"#,
            x0,
            top + plot_h + 14.0,
            x0,
            top + plot_h + 14.0,
            escape(day)
        );
    }
    for (g, group) in groups.iter().enumerate() {
        let y = top + 14.0 * g as f64;
        let x = width - 200.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/>"#,
            y - 9.0,
            COLOURS[g % COLOURS.len()]
        );
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{y:.1}">{}</text>"#, x + 14.0, escape(group));
    }
    svg.push_str("</svg>\n");
    svg
}
