//! Plots of a training history (loss and accuracy per epoch) and of evaluation curves
//! (ROC, precision-recall, reliability), written as PNG or SVG by file extension.
//!
//! Text is drawn with a font compiled into this crate (a subset of DejaVu Sans, see
//! `assets/README.md`), so plotting needs no system fonts and looks the same everywhere.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

use crate::history::{History, MetricNames};
use crate::probability::Calibration;
use crate::ranking::{PrCurve, RocCurve};
use crate::{Error, Result};

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Size of the history figure (two panels side by side), in pixels.
const HISTORY_SIZE: (u32, u32) = (1200, 480);
/// Size of a curve figure, in pixels.
const CURVE_SIZE: (u32, u32) = (640, 600);

/// Tableau 10, a palette that stays distinct for colour-blind readers.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GRID: RGBColor = RGBColor(200, 200, 200);

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

#[derive(Clone, Copy)]
enum Format {
    Png,
    Svg,
}

fn format_of(path: &Path) -> Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(Error::UnsupportedPlotFormat {
            path: path.to_path_buf(),
        }),
    }
}

fn ensure_font(path: &Path) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Plot {
            path: path.to_path_buf(),
            message: "the embedded font could not be loaded".into(),
        })
    }
}

/// Something that draws itself on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

fn render(figure: &impl Figure, path: &Path, size: (u32, u32)) -> Result<()> {
    let format = format_of(path)?;
    ensure_font(path)?;
    let plot_error = |e: Box<dyn std::error::Error>| Error::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(Error::Io {
                path: parent.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the plot's directory does not exist",
                ),
            });
        }
    }
    // Drawn at a temporary path and renamed over `path` (df-io's one writer), so a
    // reader never sees half a plot.
    df_io::replace_via_path(path, |tmp: &Path| -> Result<()> {
        match format {
            Format::Png => {
                // Drawn in memory, then encoded here: a failed write (a full disk) is an
                // I/O error naming the plot, not the backend's nested debug text.
                let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
                {
                    let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
                    figure.draw(&root).map_err(plot_error)?;
                    root.present().map_err(|e| plot_error(e.into()))?;
                }
                let image = image::RgbImage::from_raw(size.0, size.1, pixels).ok_or_else(|| {
                    plot_error("the drawing has another size than the image".into())
                })?;
                image
                    .save_with_format(tmp, image::ImageFormat::Png)
                    .map_err(|e| match e {
                        image::ImageError::IoError(source) => Error::Io {
                            path: path.to_path_buf(),
                            source,
                        },
                        other => plot_error(other.into()),
                    })
            }
            Format::Svg => {
                let root = SVGBackend::new(tmp, size).into_drawing_area();
                figure.draw(&root).map_err(plot_error)?;
                root.present().map_err(|e| plot_error(e.into()))
            }
        }
    })
}

/// `lo..hi` of the finite values, padded by 5 % (and widened when flat).
fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })?;
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.05 * hi.abs().max(1.0)
    };
    Some((lo - pad, hi + pad))
}

/// Splits a series into runs of finite points, so a NaN epoch breaks the line.
fn finite_runs(points: &[(usize, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for &(epoch, value) in points {
        if value.is_finite() {
            if let Some(run) = runs.last_mut() {
                run.push((epoch as f64, value));
            }
        } else if runs.last().is_some_and(|r| !r.is_empty()) {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

struct HistoryFigure<'a> {
    history: &'a History,
    names: &'a MetricNames,
    title: Option<&'a str>,
}

impl HistoryFigure<'_> {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        y_desc: &str,
        series: [(&str, &str); 2],
        clamp_unit: bool,
        legend: SeriesLabelPosition,
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let data: Vec<(&str, Vec<(usize, f64)>)> = series
            .iter()
            .map(|&(name, label)| (label, self.history.get(name)))
            .filter(|(_, points)| !points.is_empty())
            .collect();
        let epochs = || {
            data.iter()
                .flat_map(|(_, p)| p.iter().map(|&(e, _)| e as f64))
        };
        let x_lo = epochs().fold(f64::INFINITY, f64::min);
        let x_hi = epochs().fold(f64::NEG_INFINITY, f64::max);
        // Half an epoch of margin, so the first and last markers are not cut.
        let (x_lo, x_hi) = if x_hi > x_lo {
            (x_lo - 0.5, x_hi + 0.5)
        } else {
            (x_lo - 1.0, x_lo + 1.0)
        };
        let (mut y_lo, mut y_hi) =
            padded_range(data.iter().flat_map(|(_, p)| p.iter().map(|&(_, v)| v)))
                .unwrap_or((0.0, 1.0));
        if clamp_unit {
            y_lo = y_lo.max(0.0);
            y_hi = y_hi.min(1.0).max(y_lo + 0.01);
        }
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID.mix(0.8))
            .x_label_formatter(&|x: &f64| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .draw()?;
        for (i, (label, points)) in data.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let style = color.stroke_width(2);
            let mut first = true;
            for run in finite_runs(points) {
                let series = chart.draw_series(LineSeries::new(run.clone(), style))?;
                if first {
                    series
                        .label(*label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                    first = false;
                }
                chart.draw_series(run.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
        }
        if !data.is_empty() {
            chart
                .configure_series_labels()
                .position(legend)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.5))
                .label_font((FONT, 15))
                .draw()?;
        }
        Ok(())
    }
}

impl Figure for HistoryFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = match self.title {
            Some(title) => root.titled(title, (FONT, 24))?,
            None => root.clone(),
        };
        let n = &self.names;
        let has_accuracy = !self.history.get(&n.accuracy).is_empty()
            || !self.history.get(&n.val_accuracy).is_empty();
        let loss_series = [
            (n.loss.as_str(), "training"),
            (n.val_loss.as_str(), "validation"),
        ];
        let accuracy_series = [
            (n.accuracy.as_str(), "training"),
            (n.val_accuracy.as_str(), "validation"),
        ];
        if has_accuracy {
            let panels = root.split_evenly((1, 2));
            // Losses fall and accuracies rise: put each legend where the curves end up.
            let upper = SeriesLabelPosition::UpperRight;
            let lower = SeriesLabelPosition::LowerRight;
            self.panel(&panels[0], "Loss", "loss", loss_series, false, upper)?;
            self.panel(
                &panels[1],
                "Accuracy",
                "accuracy",
                accuracy_series,
                true,
                lower,
            )?;
        } else {
            let upper = SeriesLabelPosition::UpperRight;
            self.panel(&root, "Loss", "loss", loss_series, false, upper)?;
        }
        Ok(())
    }
}

/// Plots loss and accuracy per epoch, training and validation, from a history with Keras'
/// metric names (`loss`, `val_loss`, `accuracy`, `val_accuracy`); PNG or SVG by the
/// extension of `path`.
///
/// Two panels side by side (loss, accuracy; the accuracy panel is left out when the
/// history has no accuracy), one line per curve with a marker per epoch; a NaN epoch
/// breaks the line.
///
/// # Errors
/// [`Error::UnsupportedPlotFormat`]; [`Error::MissingMetric`] when the history has
/// neither loss nor validation loss; [`Error::Io`] when the directory does not exist;
/// [`Error::Plot`] when drawing or writing fails.
pub fn plot_history(history: &History, path: impl AsRef<Path>) -> Result<()> {
    plot_history_with(history, path, &MetricNames::default(), None)
}

/// [`plot_history`] with other metric names and an optional title above the panels.
///
/// # Errors
/// As [`plot_history`].
pub fn plot_history_with(
    history: &History,
    path: impl AsRef<Path>,
    names: &MetricNames,
    title: Option<&str>,
) -> Result<()> {
    let path = path.as_ref();
    format_of(path)?;
    if history.get(&names.loss).is_empty() && history.get(&names.val_loss).is_empty() {
        return Err(Error::MissingMetric {
            metric: format!("{} or {}", names.loss, names.val_loss),
            needed: 1,
            available: 0,
            present: history.metric_names().join(", "),
        });
    }
    let figure = HistoryFigure {
        history,
        names,
        title,
    };
    render(&figure, path, HISTORY_SIZE)
}

/// A square unit chart with a diagonal reference line and one line per labelled curve.
struct CurveFigure<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    /// From (0, 0) to (1, 1) for ROC and reliability; none for PR.
    diagonal: bool,
    legend: SeriesLabelPosition,
    curves: Vec<(String, Vec<(f64, f64)>)>,
    markers: bool,
}

impl Figure for CurveFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.caption, (FONT, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID.mix(0.8))
            .draw()?;
        if self.diagonal {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?;
        }
        for (i, (label, points)) in self.curves.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let style = color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            if self.markers {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .label_font((FONT, 15))
            .draw()?;
        Ok(())
    }
}

struct HistoriesFigure<'a> {
    histories: &'a [(&'a str, &'a History)],
    names: MetricNames,
}

impl Figure for HistoriesFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let rows = root.split_evenly((self.histories.len(), 1));
        for (area, (name, history)) in rows.iter().zip(self.histories) {
            HistoryFigure {
                history,
                names: &self.names,
                title: Some(name),
            }
            .draw(area)?;
        }
        Ok(())
    }
}

/// Plots several histories one above the other, each as [`plot_history`] draws it (loss
/// and accuracy side by side) under its name: the comparison's curves at a glance.
///
/// # Errors
/// As [`plot_history`], for any of the histories; [`Error::MissingMetric`] for an empty
/// list.
pub fn plot_histories(histories: &[(&str, &History)], path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    format_of(path)?;
    let names = MetricNames::default();
    if histories.is_empty() {
        return Err(Error::MissingMetric {
            metric: "history".into(),
            needed: 1,
            available: 0,
            present: String::new(),
        });
    }
    for (_, history) in histories {
        if history.get(&names.loss).is_empty() && history.get(&names.val_loss).is_empty() {
            return Err(Error::MissingMetric {
                metric: format!("{} or {}", names.loss, names.val_loss),
                needed: 1,
                available: 0,
                present: history.metric_names().join(", "),
            });
        }
    }
    let rows = u32::try_from(histories.len()).unwrap_or(u32::MAX);
    let size = (HISTORY_SIZE.0, HISTORY_SIZE.1.saturating_mul(rows));
    render(&HistoriesFigure { histories, names }, path, size)
}

fn check_curves<T>(curves: &[T], path: &Path) -> Result<()> {
    format_of(path)?;
    if curves.is_empty() {
        return Err(crate::error::invalid_argument(
            "curves",
            "[]",
            "at least one curve to plot",
        ));
    }
    Ok(())
}

/// Plots ROC curves (one per labelled curve, the legend giving each AUC) with the chance
/// diagonal; PNG or SVG by the extension of `path`.
///
/// # Errors
/// [`Error::UnsupportedPlotFormat`]; [`Error::InvalidArgument`] for no curve;
/// [`Error::Io`] when the directory does not exist; [`Error::Plot`].
pub fn plot_roc(curves: &[(&str, &RocCurve)], path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    check_curves(curves, path)?;
    let figure = CurveFigure {
        caption: "ROC curve",
        x_desc: "false positive rate (real flagged as fake)",
        y_desc: "true positive rate (fakes detected)",
        diagonal: true,
        legend: SeriesLabelPosition::LowerRight,
        curves: curves
            .iter()
            .map(|(label, c)| {
                let points = c.fpr.iter().copied().zip(c.tpr.iter().copied()).collect();
                (format!("{label} (AUC {:.3})", c.auc()), points)
            })
            .collect(),
        markers: false,
    };
    render(&figure, path, CURVE_SIZE)
}

/// Plots precision-recall curves as steps (as scikit-learn draws them: precision holds
/// until the next recall), the legend giving each average precision; PNG or SVG by the
/// extension of `path`.
///
/// # Errors
/// As [`plot_roc`].
pub fn plot_pr(curves: &[(&str, &PrCurve)], path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    check_curves(curves, path)?;
    let figure = CurveFigure {
        caption: "Precision-recall curve",
        x_desc: "recall (fakes detected)",
        y_desc: "precision (flagged that are fake)",
        diagonal: false,
        legend: SeriesLabelPosition::LowerLeft,
        curves: curves
            .iter()
            .map(|(label, c)| {
                let mut points = Vec::with_capacity(2 * c.len());
                for i in 0..c.len() {
                    points.push((c.recall[i], c.precision[i]));
                    if let Some(&next_recall) = c.recall.get(i + 1) {
                        points.push((next_recall, c.precision[i]));
                    }
                }
                (format!("{label} (AP {:.3})", c.average_precision()), points)
            })
            .collect(),
        markers: false,
    };
    render(&figure, path, CURVE_SIZE)
}

/// Plots a reliability diagram: the share of fakes against the mean score of each
/// non-empty calibration bin, with the diagonal of perfect calibration; the legend gives
/// the ECE. PNG or SVG by the extension of `path`.
///
/// # Errors
/// [`Error::UnsupportedPlotFormat`]; [`Error::Io`] when the directory does not exist;
/// [`Error::Plot`].
pub fn plot_calibration(calibration: &Calibration, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    format_of(path)?;
    let points = calibration
        .bins
        .iter()
        .filter_map(|b| Some((b.mean_score?, b.fraction_fake?)))
        .collect();
    let figure = CurveFigure {
        caption: "Reliability diagram",
        x_desc: "mean predicted p(fake) in bin",
        y_desc: "share of fakes in bin",
        diagonal: true,
        legend: SeriesLabelPosition::UpperLeft,
        curves: vec![(
            format!(
                "{} bins (ECE {:.3})",
                calibration.bins.len(),
                calibration.ece
            ),
            points,
        )],
        markers: true,
    };
    render(&figure, path, CURVE_SIZE)
}
