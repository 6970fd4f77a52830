//! SVG charts of compression-ratio studies (feature `plot`), drawn with `plotters`' SVG
//! backend.
//!
//! [`ratio_chart`] draws two panels from a study's [`Totals`]: the average header bytes per
//! packet before and after compression for each rule (with the rule's packet count), and the
//! distribution of packet sizes, IPv6 before and SCHC after.

use plotters::prelude::*;

use crate::ratio::Totals;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart: {0}")]
pub struct PlotError(String);

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

const BEFORE: RGBColor = RGBColor(0x9e, 0x9e, 0x9e);
const AFTER: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const SCHC: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const IPV6: RGBColor = RGBColor(0xbd, 0xbd, 0xbd);

/// The chart as an SVG document, 1000 by 440 pixels, titled `title` with the totals below.
pub fn ratio_chart(totals: &Totals, title: &str) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(err)?;
        let pct = |out: f64, inp: f64| {
            if inp > 0.0 {
                100.0 * (1.0 - out / inp)
            } else {
                0.0
            }
        };
        let line = format!(
            "{} packets: headers {} B -> {:.0} B ({:.1}x, saves {:.1} %); packets {} B -> {} B ({:.1}x, saves {:.1} %)",
            totals.compressed + totals.uncompressed,
            totals.header_bytes_in,
            totals.header_bytes_out(),
            totals.header_ratio(),
            pct(totals.header_bytes_out(), totals.header_bytes_in as f64),
            totals.bytes_in,
            totals.bytes_out,
            totals.total_ratio(),
            pct(totals.bytes_out as f64, totals.bytes_in as f64),
        );
        let root = root.titled(&line, ("sans-serif", 13)).map_err(err)?;
        let (left, right) = root.split_horizontally(480);
        rules_panel(&left, totals)?;
        sizes_panel(&right, totals)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn rules_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    totals: &Totals,
) -> Result<(), PlotError> {
    let rules: Vec<(String, f64, f64, u64)> = totals
        .per_rule
        .iter()
        .filter(|(_, r)| r.packets > 0)
        .map(|(id, r)| {
            let n = r.packets as f64;
            (
                id.to_string(),
                r.header_bytes_in as f64 / n,
                r.header_bits_out as f64 / 8.0 / n,
                r.packets,
            )
        })
        .collect();
    let n = rules.len().max(1);
    let ymax = rules.iter().map(|r| r.1.max(r.2)).fold(1.0f64, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption("Header bytes per packet, by rule", ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
        .map_err(err)?;
    let labels: Vec<String> = rules.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * n + 2)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("rule (value/length)")
        .y_desc("bytes")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, r) in rules.iter().enumerate() {
        let x = i as f64;
        chart
            .draw_series([
                Rectangle::new([(x + 0.12, 0.0), (x + 0.5, r.1)], BEFORE.filled()),
                Rectangle::new([(x + 0.5, 0.0), (x + 0.88, r.2)], AFTER.filled()),
            ])
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                format!("{}", r.3),
                (x + 0.2, r.1 + ymax * 0.02),
                ("sans-serif", 11),
            )])
            .map_err(err)?;
    }
    chart
        .draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], BEFORE.filled())])
        .map_err(err)?
        .label("before (IPv6/UDP/CoAP headers the rule covers)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], BEFORE.filled()));
    chart
        .draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], AFTER.filled())])
        .map_err(err)?
        .label("after (rule ID + residue); bar labels: packets")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], AFTER.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn sizes_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    totals: &Totals,
) -> Result<(), PlotError> {
    let max_size = totals
        .ipv6_sizes
        .keys()
        .chain(totals.schc_sizes.keys())
        .copied()
        .max()
        .unwrap_or(1);
    // Bins of 1 byte up to 160 bytes, wider beyond.
    let bin = (max_size / 120).max(1);
    let nbins = max_size / bin + 1;
    let binned = |m: &std::collections::BTreeMap<usize, u64>| {
        let mut v = vec![0u64; nbins];
        for (&s, &c) in m {
            if let Some(slot) = v.get_mut(s / bin) {
                *slot += c;
            }
        }
        v
    };
    let schc = binned(&totals.schc_sizes);
    let ipv6 = binned(&totals.ipv6_sizes);
    let ymax = schc.iter().chain(ipv6.iter()).copied().max().unwrap_or(1) as f64 * 1.25;
    let xmax = (nbins * bin) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("Packet sizes", ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax.max(1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("bytes")
        .y_desc("packets")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    let bars = |v: &[u64], color: RGBColor| {
        v.iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let x = (i * bin) as f64;
                Rectangle::new([(x, 0.0), (x + bin as f64 * 0.9, c as f64)], color.filled())
            })
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(bars(&ipv6, IPV6))
        .map_err(err)?
        .label("IPv6 packet")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], IPV6.filled()));
    chart
        .draw_series(bars(&schc, SCHC))
        .map_err(err)?
        .label("SCHC packet")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], SCHC.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}
