//! Charts rendered on the server as SVG: horizontal bars, a treemap, the
//! R × F heatmap and histograms. Colours come from CSS classes (readable in
//! light and dark mode); every mark carries its exact figures in a
//! `<title>` (shown on hover without script) and a `data-tip` (our script's
//! tooltip). Labels are escaped.

use std::fmt::Write;

use crate::html::esc;

/// One bar: label, value (for the length), the text of its figure, the
/// tooltip, a link and a colour class.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub figure: String,
    pub tip: String,
    pub href: Option<String>,
    pub class: String,
}

/// Horizontal bars, one row each, scaled to the largest value.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let (w, row, label_w, fig_w) = (640.0, 26.0, 170.0, 110.0);
    let h = row * bars.len() as f64 + 8.0;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart bars\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let len = if max > 0.0 {
            (w - label_w - fig_w) * b.value / max
        } else {
            0.0
        };
        let open = b
            .href
            .as_ref()
            .map(|h| format!("<a href=\"{}\">", esc(h)))
            .unwrap_or_default();
        let close = if b.href.is_some() { "</a>" } else { "" };
        let _ = write!(
            s,
            "{open}<g class=\"mark\" data-tip=\"{tip}\"><title>{tip}</title>\
             <text class=\"label\" x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"{class}\" x=\"{label_w}\" y=\"{y}\" width=\"{len:.1}\" height=\"{bh}\" rx=\"2\"/>\
             <text class=\"figure\" x=\"{fx:.1}\" y=\"{ty}\">{fig}</text></g>{close}",
            tip = esc(&b.tip),
            lx = label_w - 6.0,
            ty = y + row * 0.62,
            label = esc(&b.label),
            class = esc(&b.class),
            bh = row - 6.0,
            fx = label_w + len + 5.0,
            fig = esc(&b.figure),
        );
    }
    s.push_str("</svg>");
    s
}

/// A treemap tile's input: label, weight, tooltip, link, colour class.
pub struct Tile {
    pub label: String,
    pub weight: f64,
    pub tip: String,
    pub href: Option<String>,
    pub class: String,
}

/// A squarified treemap of the tiles (weights > 0) in a 640 × 320 box.
pub fn treemap(title: &str, tiles: &[Tile]) -> String {
    let (w, h) = (640.0, 320.0);
    let mut items: Vec<&Tile> = tiles.iter().filter(|t| t.weight > 0.0).collect();
    items.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.label.cmp(&b.label)));
    let total: f64 = items.iter().map(|t| t.weight).sum();
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart treemap\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    if total <= 0.0 {
        s.push_str("</svg>");
        return s;
    }
    let scale = w * h / total;
    let areas: Vec<f64> = items.iter().map(|t| t.weight * scale).collect();
    let mut rects = Vec::new();
    squarify(&areas, (0.0, 0.0, w, h), &mut rects);
    for (t, (x, y, rw, rh)) in items.iter().zip(rects) {
        let open = t
            .href
            .as_ref()
            .map(|h| format!("<a href=\"{}\">", esc(h)))
            .unwrap_or_default();
        let close = if t.href.is_some() { "</a>" } else { "" };
        let _ = write!(
            s,
            "{open}<g class=\"mark\" data-tip=\"{tip}\"><title>{tip}</title>\
             <rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{rw:.1}\" height=\"{rh:.1}\"/>",
            tip = esc(&t.tip),
            class = esc(&t.class),
        );
        if rw > 60.0 && rh > 18.0 {
            let _ = write!(
                s,
                "<text class=\"tile\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 4.0,
                y + 14.0,
                esc(&t.label)
            );
        }
        let _ = write!(s, "</g>{close}");
    }
    s.push_str("</svg>");
    s
}

type Rect = (f64, f64, f64, f64);

/// Squarified layout (Bruls, Huizing, van Wijk) of `areas` (descending) in `r`.
fn squarify(areas: &[f64], r: Rect, out: &mut Vec<Rect>) {
    if areas.is_empty() {
        return;
    }
    let (x, y, w, h) = r;
    let side = w.min(h);
    let worst = |row: &[f64]| {
        let sum: f64 = row.iter().sum();
        let (mx, mn) = row
            .iter()
            .fold((0.0f64, f64::MAX), |(a, b), &v| (a.max(v), b.min(v)));
        f64::max(
            side * side * mx / (sum * sum),
            sum * sum / (side * side * mn),
        )
    };
    let mut n = 1;
    while n < areas.len() && worst(&areas[..n + 1]) <= worst(&areas[..n]) {
        n += 1;
    }
    let sum: f64 = areas[..n].iter().sum();
    let thick = if side > 0.0 { sum / side } else { 0.0 };
    let mut pos = 0.0;
    for a in &areas[..n] {
        let len = if thick > 0.0 { a / thick } else { 0.0 };
        if w >= h {
            out.push((x, y + pos, thick, len));
        } else {
            out.push((x + pos, y, len, thick));
        }
        pos += len;
    }
    let rest = if w >= h {
        (x + thick, y, w - thick, h)
    } else {
        (x, y + thick, w, h - thick)
    };
    squarify(&areas[n..], rest, out);
}

/// One heatmap cell: its figures and where a click goes.
pub struct Cell {
    pub value: f64,
    pub lines: [String; 2],
    pub tip: String,
    pub href: String,
}

/// The 5 × 5 R × F grid: `cells[r - 1][f - 1]`, R from 5 (top) to 1, F from
/// 1 (left) to 5; shade by value.
pub fn heatmap(title: &str, cells: &[[Cell; 5]; 5]) -> String {
    let (cw, ch, left, top) = (110.0, 70.0, 50.0, 10.0);
    let (w, h) = (left + 5.0 * cw + 10.0, top + 5.0 * ch + 40.0);
    let max = cells.iter().flatten().map(|c| c.value).fold(0.0, f64::max);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart heatmap\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for r in (1..=5).rev() {
        let y = top + ch * (5 - r) as f64;
        let _ = write!(
            s,
            "<text class=\"label\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">R{r}</text>",
            left - 8.0,
            y + ch / 2.0 + 4.0
        );
        for f in 1..=5 {
            let c = &cells[r - 1][f - 1];
            let x = left + cw * (f - 1) as f64;
            let shade = if max > 0.0 {
                0.08 + 0.85 * c.value / max
            } else {
                0.08
            };
            let strong = if shade > 0.55 { " strong" } else { "" };
            let _ = write!(
                s,
                "<a href=\"{href}\" class=\"cell\" data-r=\"{r}\" data-f=\"{f}\"><g class=\"mark\" data-tip=\"{tip}\"><title>{tip}</title>\
                 <rect class=\"heat\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cw1}\" height=\"{ch1}\" fill-opacity=\"{shade:.3}\"/>\
                 <text class=\"cellnum{strong}\" x=\"{tx:.1}\" y=\"{t1:.1}\" text-anchor=\"middle\">{l0}</text>\
                 <text class=\"cellsub{strong}\" x=\"{tx:.1}\" y=\"{t2:.1}\" text-anchor=\"middle\">{l1}</text></g></a>",
                href = esc(&c.href),
                tip = esc(&c.tip),
                cw1 = cw - 3.0,
                ch1 = ch - 3.0,
                tx = x + cw / 2.0,
                t1 = y + ch / 2.0 - 2.0,
                t2 = y + ch / 2.0 + 16.0,
                l0 = esc(&c.lines[0]),
                l1 = esc(&c.lines[1]),
            );
        }
    }
    for f in 1..=5 {
        let _ = write!(
            s,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">F{f}</text>",
            left + cw * (f - 1) as f64 + cw / 2.0,
            top + 5.0 * ch + 22.0
        );
    }
    s.push_str("</svg>");
    s
}

/// A histogram: `bins` of (label, count); `log` scales heights by ln(1 + n).
pub fn histogram(title: &str, bins: &[(String, u64)], log: bool) -> String {
    let (w, h, bottom) = (640.0, 220.0, 40.0);
    let n = bins.len().max(1) as f64;
    let bw = (w - 20.0) / n;
    let height = |v: u64| if log { (v as f64).ln_1p() } else { v as f64 };
    let max = bins.iter().map(|b| height(b.1)).fold(0.0, f64::max);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart histogram\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (i, (label, v)) in bins.iter().enumerate() {
        let bh = if max > 0.0 {
            (h - bottom - 10.0) * height(*v) / max
        } else {
            0.0
        };
        let x = 10.0 + bw * i as f64;
        let tip = format!("{label}: {} customers", crate::html::count(*v));
        let _ = write!(
            s,
            "<g class=\"mark\" data-tip=\"{tip}\"><title>{tip}</title>\
             <rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw1:.1}\" height=\"{bh:.1}\"/></g>",
            tip = esc(&tip),
            y = h - bottom - bh,
            bw1 = (bw - 1.0).max(0.5),
        );
        if i % (bins.len() / 8).max(1) == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                h - bottom + 16.0,
                esc(label)
            );
        }
    }
    let _ = write!(
        s,
        "<line class=\"axisline\" x1=\"10\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/></svg>",
        y = h - bottom,
        x2 = w - 10.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treemap_fills_the_box() {
        let mut out = Vec::new();
        squarify(
            &[6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0],
            (0.0, 0.0, 6.0, 4.0),
            &mut out,
        );
        let area: f64 = out.iter().map(|r| r.2 * r.3).sum();
        assert!((area - 24.0).abs() < 1e-9, "{area}");
        assert!(out
            .iter()
            .all(|r| r.0 + r.2 <= 6.0 + 1e-9 && r.1 + r.3 <= 4.0 + 1e-9));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = bars(
            "t",
            &[Bar {
                label: "<b>".into(),
                value: 1.0,
                figure: "1".into(),
                tip: "\"x\"".into(),
                href: None,
                class: "seg-0".into(),
            }],
        );
        assert!(svg.contains("&lt;b&gt;") && svg.contains("&quot;x&quot;"));
        assert!(!svg.contains("<b>"));
    }
}
