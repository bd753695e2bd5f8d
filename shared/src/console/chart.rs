//! Usage as bar charts drawn on the server in SVG: no script, no external service. A chart never
//! relies on colour alone: bars are hatched, each carries its value as text, and the same figures
//! follow in a table for screen readers and for reading exact values. Heights are computed in
//! decimals, like the money they explain.

use maud::{Markup, html};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

const WIDTH: i64 = 640;
const HEIGHT: i64 = 240;
const LEFT: i64 = 56;
const RIGHT: i64 = 12;
const TOP: i64 = 24;
const BOTTOM: i64 = 44;
/// Beyond this many bars the values no longer fit above them: the table carries them.
const LABELLED_BARS: usize = 24;

/// One bar: its label on the axis (a period) and its value.
pub(crate) struct Bar {
    pub label: String,
    pub value: Decimal,
}

fn px(d: Decimal) -> i64 {
    d.round().to_i64().unwrap_or(0)
}

/// A bar chart of `bars` titled `title`, values in `unit`; `id` makes its element ids unique on
/// the page.
pub(crate) fn bar_chart(id: &str, title: &str, unit: &str, bars: &[Bar]) -> Markup {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = bars
        .iter()
        .map(|b| b.value)
        .max()
        .filter(|m| *m > Decimal::ZERO)
        .unwrap_or(Decimal::ONE);
    let n = i64::try_from(bars.len().max(1)).unwrap_or(1);
    let band = Decimal::from(plot_w) / Decimal::from(n);
    let bar_w = px(band * Decimal::new(7, 1)).max(1);
    // Axis labels for at most eight bars, evenly spread, so they never overlap.
    let every = bars.len().div_ceil(8).max(1);
    let title_id = format!("{id}-title");
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby=(title_id)
                xmlns="http://www.w3.org/2000/svg" {
                title id=(title_id) { (title) " (" (unit) ")" }
                defs {
                    pattern id={ (id) "-hatch" } width="6" height="6" patternUnits="userSpaceOnUse"
                        patternTransform="rotate(45)" {
                        rect width="6" height="6" class="bar-fill";
                        line x1="0" y1="0" x2="0" y2="6" class="bar-hatch" stroke-width="3";
                    }
                }
                line x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - RIGHT) y2=(TOP + plot_h) class="axis";
                line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) class="axis";
                text x=(LEFT - 6) y=(TOP + 4) text-anchor="end" class="tick" { (max.normalize()) }
                text x=(LEFT - 6) y=(TOP + plot_h) text-anchor="end" class="tick" { "0" }
                @for (i, bar) in bars.iter().enumerate() {
                    @let x = LEFT + px(band * Decimal::from(i as i64) + (band - Decimal::from(bar_w)) / Decimal::TWO);
                    @let h = px(bar.value / max * Decimal::from(plot_h));
                    rect x=(x) y=(TOP + plot_h - h) width=(bar_w) height=(h)
                        fill={ "url(#" (id) "-hatch)" } class="bar" {
                        title { (bar.label) ": " (bar.value.normalize()) " " (unit) }
                    }
                    @if bars.len() <= LABELLED_BARS {
                        text x=(x + bar_w / 2) y=(TOP + plot_h - h - 4) text-anchor="middle" class="value" {
                            (bar.value.normalize())
                        }
                    }
                    @if i % every == 0 {
                        text x=(x + bar_w / 2) y=(HEIGHT - BOTTOM + 16) text-anchor="middle" class="tick" {
                            (bar.label)
                        }
                    }
                }
            }
            figcaption { (title) " per period, in " (unit) }
            div.table-wrap {
                table {
                    caption.visually-hidden { (title) " per period" }
                    thead { tr { th scope="col" { "Period" } th scope="col" { "Usage (" (unit) ")" } } }
                    tbody {
                        @for bar in bars {
                            tr { td { (bar.label) } td.num { (bar.value.normalize()) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(values: &[i64]) -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Bar {
                label: format!("p{i}"),
                value: Decimal::from(*v),
            })
            .collect()
    }

    #[test]
    fn bars_are_scaled_to_the_largest_and_carry_their_values_as_text() {
        let svg = bar_chart("c", "Calls", "count", &bars(&[50, 100, 0])).into_string();
        let plot_h = HEIGHT - TOP - BOTTOM;
        assert!(svg.contains(&format!(r#"height="{plot_h}""#)), "{svg}");
        assert!(
            svg.contains(&format!(r#"height="{}""#, plot_h / 2)),
            "{svg}"
        );
        assert!(svg.contains(r#"height="0""#), "{svg}");
        for text in [">50<", ">100<", ">0<", "p1: 100 count", r#"role="img""#] {
            assert!(svg.contains(text), "{text} missing: {svg}");
        }
        assert!(svg.contains("<table>"), "the figures follow as a table");
        assert!(!svg.contains("style="), "no inline style: {svg}");
    }

    #[test]
    fn a_chart_of_nothing_or_of_zeros_draws_without_dividing_by_zero() {
        assert!(
            bar_chart("c", "Calls", "count", &[])
                .into_string()
                .contains("<svg")
        );
        assert!(
            bar_chart("c", "Calls", "count", &bars(&[0, 0]))
                .into_string()
                .contains("<svg")
        );
    }

    #[test]
    fn labels_are_text_not_markup() {
        let mut b = bars(&[1]);
        b[0].label = "<b>".into();
        let svg = bar_chart("c", "<i>", "count", &b).into_string();
        assert!(!svg.contains("<b>") && !svg.contains("<i>"), "{svg}");
    }
}
