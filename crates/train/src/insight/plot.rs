//! Pictures of a run, drawn with plotters into PNG files (fonts embedded: no system font
//! libraries needed).

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform, register_font};

pub(crate) const FONT: &str = "sans-serif";

pub(crate) fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Both cannot fail for the bundled, valid TTF files; a failure would only lose labels.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Light-to-dark blue for a share in [0, 1].
fn shade(share: f64) -> RGBColor {
    let s = share.clamp(0.0, 1.0);
    let mix = |light: f64, dark: f64| (light + (dark - light) * s).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

/// Write the confusion matrix (`confusion[true][predicted]`) as a heat map: each cell shaded by
/// its share of the true class's images, with the count written in it. The file appears
/// complete or not at all.
pub fn confusion_png(
    path: &Path,
    classes: &[String],
    confusion: &[Vec<usize>],
    title: &str,
) -> Result<()> {
    confusion_picture(path, classes, confusion, title, false)
}

/// The confusion heat map as a PNG and, with `svg`, also as an SVG beside it.
pub fn confusion_picture(
    path: &Path,
    classes: &[String],
    confusion: &[Vec<usize>],
    title: &str,
    svg: bool,
) -> Result<()> {
    register_fonts();
    let size = confusion_size(classes.len());
    let tmp = path.with_extension("partial.png");
    draw_confusion(BitMapBackend::new(&tmp, size).into_drawing_area(), classes, confusion, title)
        .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if svg {
        let path = path.with_extension("svg");
        let mut text = String::new();
        draw_confusion(
            SVGBackend::with_string(&mut text, size).into_drawing_area(),
            classes,
            confusion,
            title,
        )
        .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        crate::run::write_atomic(&path, text.as_bytes())?;
    }
    Ok(())
}

const CELL: i32 = 58;
const LEFT: i32 = 120;
const TOP: i32 = 56;
const BOTTOM: i32 = 120;

fn confusion_size(k: usize) -> (u32, u32) {
    ((LEFT + k as i32 * CELL + 24) as u32, (TOP + k as i32 * CELL + BOTTOM) as u32)
}

fn draw_confusion<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    classes: &[String],
    confusion: &[Vec<usize>],
    title: &str,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
    let k = classes.len();
    let (cell, left, top) = (CELL, LEFT, TOP);
    let size = confusion_size(k);
    root.fill(&WHITE).map_err(err)?;
    let centre = Pos::new(HPos::Center, VPos::Center);
    let title_style = TextStyle::from((FONT, 18).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(title.to_string(), (size.0 as i32 / 2, 12), title_style)).map_err(err)?;
    let label = TextStyle::from((FONT, 14).into_font());
    for (i, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        let y = top + i as i32 * cell;
        let row_label = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(classes[i].clone(), (left - 8, y + cell / 2), row_label))
            .map_err(err)?;
        for (j, &n) in row.iter().enumerate() {
            let x = left + j as i32 * cell;
            let share = if total > 0 { n as f64 / total as f64 } else { 0.0 };
            root.draw(&Rectangle::new(
                [(x, y), (x + cell - 1, y + cell - 1)],
                shade(share).filled(),
            ))
            .map_err(err)?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            let count = TextStyle::from((FONT, 13).into_font()).color(&ink).pos(centre);
            root.draw(&Text::new(n.to_string(), (x + cell / 2, y + cell / 2), count))
                .map_err(err)?;
        }
    }
    let grid_bottom = top + k as i32 * cell;
    for (j, c) in classes.iter().enumerate() {
        let x = left + j as i32 * cell + cell / 2;
        let style = TextStyle::from((FONT, 14).into_font().transform(FontTransform::Rotate270))
            .pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(c.clone(), (x, grid_bottom + 8), style)).map_err(err)?;
    }
    let axis = TextStyle::from((FONT, 14).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    root.draw(&Text::new(
        "predicted class →",
        (left + k as i32 * cell / 2, size.1 as i32 - 6),
        axis.clone(),
    ))
    .map_err(err)?;
    root.draw(&Text::new("true class ↓", (left / 2, top - 8), axis)).map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Colours of runs in overlaid charts (matplotlib's tab10).
pub(crate) const PALETTE: [RGBColor; 10] = [
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

/// One line of a chart: `color` indexes the palette, `dashed` marks validation curves.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub color: usize,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

pub const CHART_SIZE: (u32, u32) = (900, 540);

/// A line chart as `<stem>.png` and `<stem>.svg`: several series with a legend, points marked
/// when every series is short (a few epochs).
pub fn line_chart(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<()> {
    chart_files(stem, title, x_desc, y_desc, series, None)
}

/// A line chart over categories (a sweep's values of one key): series x values are indices
/// into `labels`, which label the x axis.
pub fn category_chart(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    labels: &[String],
    series: &[Series],
) -> Result<()> {
    chart_files(stem, title, x_desc, y_desc, series, Some(labels))
}

fn chart_files(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    labels: Option<&[String]>,
) -> Result<()> {
    register_fonts();
    let png = stem.with_extension("png");
    let tmp = stem.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&tmp, CHART_SIZE).into_drawing_area();
        draw_lines(root, title, x_desc, y_desc, series, labels)
            .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
    }
    std::fs::rename(&tmp, &png).with_context(|| format!("writing {}", png.display()))?;
    let svg = stem.with_extension("svg");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, CHART_SIZE).into_drawing_area();
        draw_lines(root, title, x_desc, y_desc, series, labels)
            .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
    }
    crate::run::write_atomic(&svg, text.as_bytes())
}

/// A tick label without float noise: 0.0001 → "1e-4", 2500000 → "2.5e6", 0.25 → "0.25".
fn tick(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into(); // and never "-0"
    }
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    labels: Option<&[String]>,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
    root.fill(&WHITE).map_err(err)?;
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let pts: Vec<(f64, f64)> =
        series.iter().flat_map(|s| s.points.iter().copied().filter(finite)).collect();
    let (mut x0, mut x1) =
        pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) =
        pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if pts.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if let Some(l) = labels {
        // Half a category of margin each side, so that the end labels show whole.
        (x0, x1) = (-0.5, l.len() as f64 - 0.5);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    } else {
        let pad = 0.05 * (y1 - y0);
        // A category chart's legend (a line per combination of the other keys) gets room of
        // its own above the data, which spans the whole width.
        let legend_room = match labels {
            Some(_) => (y1 - y0) * (0.08 * series.len() as f64).min(0.9),
            None => 0.0,
        };
        (y0, y1) = (y0 - pad, y1 + pad + legend_room);
    }
    let whole_x = !pts.is_empty() && pts.iter().all(|p| p.0.fract() == 0.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let x_fmt = |x: &f64| match labels {
        Some(l) if (x - x.round()).abs() < 1e-6 && x.round() >= 0.0 => {
            l.get(x.round() as usize).cloned().unwrap_or_default()
        }
        Some(_) => String::new(),
        None if whole_x => format!("{x:.0}"),
        None => tick(*x),
    };
    let y_fmt = |y: &f64| tick(*y);
    let mut mesh = chart.configure_mesh();
    // A few epochs: one tick per epoch, never "1.5".
    if let Some(l) = labels {
        mesh.x_labels(2 * l.len() + 1);
    } else if whole_x && x1 - x0 <= 20.0 {
        mesh.x_labels((x1 - x0) as usize + 1);
    }
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let short = series.iter().all(|s| s.points.len() <= 30);
    for s in series {
        let style = PALETTE[s.color % PALETTE.len()].stroke_width(2);
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(finite).collect();
        let anno = if s.dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 8, 5, style)).map_err(err)?
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style)).map_err(err)?
        };
        // A dashed line in the legend is two strokes with a gap.
        let gap = if s.dashed { 5 } else { 0 };
        anno.label(s.label.clone()).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (8, 0)], style)
                + PathElement::new(vec![(8 + gap, 0), (20, 0)], style)
        });
        if short {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))
                .map_err(err)?;
        }
    }
    // The legend goes where the curves are not: lower right when they end high (accuracy
    // rising), else upper right (a falling loss).
    let right: Vec<f64> =
        pts.iter().filter(|p| p.0 >= x0 + 0.75 * (x1 - x0)).map(|p| p.1).collect();
    let ends_high = labels.is_none()
        && !right.is_empty()
        && right.iter().sum::<f64>() / right.len() as f64 > y0 + 0.6 * (y1 - y0);
    let corner =
        if ends_high { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperRight };
    if series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT, 14))
            .position(corner)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// A labelled scatter plot (`<stem>.png` and `.svg`): the 2-D map of word vectors.
pub fn word_map(stem: &Path, title: &str, points: &[(String, f64, f64)]) -> Result<()> {
    register_fonts();
    let size = (1000u32, 800u32);
    let draw = |root: DrawingArea<_, plotters::coord::Shift>| -> Result<(), String> {
        draw_words(root, title, points)
    };
    let png = stem.with_extension("png");
    let tmp = stem.with_extension("partial.png");
    draw(BitMapBackend::new(&tmp, size).into_drawing_area())
        .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
    std::fs::rename(&tmp, &png).with_context(|| format!("writing {}", png.display()))?;
    let svg = stem.with_extension("svg");
    let mut text = String::new();
    draw_words(SVGBackend::with_string(&mut text, size).into_drawing_area(), title, points)
        .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
    crate::run::write_atomic(&svg, text.as_bytes())
}

fn draw_words<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    points: &[(String, f64, f64)],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.2), b.max(p.2)));
    let (px, py) = (((x1 - x0) * 0.06).max(1e-6), ((y1 - y0) * 0.06).max(1e-6));
    let (x0, x1, y0, y1) = if points.is_empty() {
        (-1.0, 1.0, -1.0, 1.0)
    } else {
        (x0 - px, x1 + px, y0 - py, y1 + py)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .x_desc("principal component 1")
        .y_desc("principal component 2")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(err)?;
    let dot = PALETTE[0];
    chart
        .draw_series(points.iter().map(|(w, x, y)| {
            EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 3, dot.filled())
                + Text::new(w.clone(), (5, -7), (FONT, 13).into_font())
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One picture of a grid: planar CHW bytes, a caption, and whether the prediction was right.
pub struct Tile<'a> {
    pub chw: &'a [u8],
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub caption: String,
    pub correct: bool,
}

/// Images in a grid, each enlarged `scale` times with a green (right) or red (wrong) frame and
/// a caption under it.
pub fn image_grid(
    tiles: &[Tile],
    cols: usize,
    scale: usize,
    title: &str,
) -> Result<image::RgbImage> {
    register_fonts();
    let cols = cols.min(tiles.len()).max(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let (tw, th) =
        tiles.first().map_or((32 * scale, 32 * scale), |t| (t.width * scale, t.height * scale));
    let (pad, caption, top) = (10usize, 34usize, 34usize);
    let (cw, ch) = (tw.max(110) + pad, th + caption + pad);
    let (w, h) = (cols * cw + pad, top + rows * ch);
    let mut buf = vec![255u8; w * h * 3];
    for (i, t) in tiles.iter().enumerate() {
        let (x0, y0) = (pad + (i % cols) * cw + (cw - pad - tw) / 2, top + (i / cols) * ch);
        let frame: [u8; 3] = if t.correct { [44, 160, 44] } else { [214, 39, 40] };
        for y in y0.saturating_sub(3)..(y0 + t.height * scale + 3).min(h) {
            for x in x0.saturating_sub(3)..(x0 + t.width * scale + 3).min(w) {
                buf[(y * w + x) * 3..][..3].copy_from_slice(&frame);
            }
        }
        let plane = t.height * t.width;
        for y in 0..t.height * scale {
            for x in 0..t.width * scale {
                let src = (y / scale) * t.width + x / scale;
                let px = &mut buf[((y0 + y) * w + x0 + x) * 3..][..3];
                for (c, v) in px.iter_mut().enumerate() {
                    // Grey images repeat their one channel.
                    *v = t
                        .chw
                        .get(if t.channels >= 3 { c * plane + src } else { src })
                        .copied()
                        .unwrap_or(0);
                }
            }
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
        let err = |e| anyhow!("drawing an image grid: {e:?}");
        let title_style = TextStyle::from((FONT, 16).into_font().style(FontStyle::Bold))
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(title.to_string(), (w as i32 / 2, 8), title_style)).map_err(err)?;
        for (i, t) in tiles.iter().enumerate() {
            let cx = pad + (i % cols) * cw + (cw - pad) / 2;
            let y = top + (i / cols) * ch + th + 6;
            let ink = if t.correct { RGBColor(20, 110, 20) } else { RGBColor(180, 20, 20) };
            let style = TextStyle::from((FONT, 12).into_font())
                .color(&ink)
                .pos(Pos::new(HPos::Center, VPos::Top));
            for (k, line) in t.caption.lines().take(2).enumerate() {
                root.draw(&Text::new(
                    line.to_string(),
                    (cx as i32, (y + 13 * k) as i32),
                    style.clone(),
                ))
                .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    image::RgbImage::from_raw(w as u32, h as u32, buf)
        .ok_or_else(|| anyhow!("image grid buffer has the wrong size"))
}

/// PNG bytes of an image.
pub fn png_bytes(img: &image::RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).context("encoding a PNG")?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_have_no_float_noise() {
        assert_eq!(tick(0.0001), "1e-4");
        assert_eq!(tick(0.005), "0.005");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(2.5e6), "2.5e6");
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-1e-17), "0");
        assert_eq!(tick(1.2345), "1.2345");
    }

    #[test]
    fn confusion_png_decodes_with_cells_shaded_by_share() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("confusion.png");
        let classes = vec!["cat".to_string(), "dog".to_string(), "automobile".to_string()];
        confusion_png(&path, &classes, &[vec![9, 1, 0], vec![5, 5, 0], vec![0, 0, 10]], "test")
            .expect("png");
        let img = image::open(&path).expect("decodes").to_rgb8();
        assert_eq!(img.dimensions(), (120 + 3 * 58 + 24, 56 + 3 * 58 + 120));
        // A cell's corner pixel (away from its text) has the cell's shade.
        let px = |i: u32, j: u32| img.get_pixel(120 + j * 58 + 3, 56 + i * 58 + 3).0;
        assert_eq!(px(2, 2), [8, 48, 107], "100% cell is darkest");
        assert_eq!(px(2, 0), [247, 251, 255], "0% cell is lightest");
        let (full, half, tenth) = (px(0, 0), px(1, 1), px(0, 1));
        assert!(full[0] < half[0] && half[0] < tenth[0], "{full:?} {half:?} {tenth:?}");
        // Labels were drawn: some dark pixels left of the grid.
        let dark = (0..120)
            .flat_map(|x| (56..56 + 174).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100)
            .count();
        assert!(dark > 50, "{dark}");
        assert!(!dir.path().join("confusion.partial.png").exists());
    }
}
