//! Pictures of a run, drawn with plotters into PNG files (fonts embedded: no system font
//! libraries needed).

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform, register_font};

const FONT: &str = "sans-serif";

fn register_fonts() {
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
pub fn confusion_png(path: &Path, classes: &[String], confusion: &[Vec<usize>], title: &str) -> Result<()> {
    register_fonts();
    let k = classes.len();
    let (cell, left, top, bottom) = (58i32, 120i32, 56i32, 120i32);
    let size = ((left + k as i32 * cell + 24) as u32, (top + k as i32 * cell + bottom) as u32);
    let tmp = path.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        let err = |e| anyhow!("drawing {}: {e:?}", path.display());
        root.fill(&WHITE).map_err(err)?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        let title_style = TextStyle::from((FONT, 18).into_font().style(FontStyle::Bold)).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(title.to_string(), (size.0 as i32 / 2, 12), title_style)).map_err(err)?;
        let label = TextStyle::from((FONT, 14).into_font());
        for (i, row) in confusion.iter().enumerate() {
            let total: usize = row.iter().sum();
            let y = top + i as i32 * cell;
            let row_label = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(classes[i].clone(), (left - 8, y + cell / 2), row_label)).map_err(err)?;
            for (j, &n) in row.iter().enumerate() {
                let x = left + j as i32 * cell;
                let share = if total > 0 { n as f64 / total as f64 } else { 0.0 };
                root.draw(&Rectangle::new([(x, y), (x + cell - 1, y + cell - 1)], shade(share).filled())).map_err(err)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let count = TextStyle::from((FONT, 13).into_font()).color(&ink).pos(centre);
                root.draw(&Text::new(n.to_string(), (x + cell / 2, y + cell / 2), count)).map_err(err)?;
            }
        }
        let grid_bottom = top + k as i32 * cell;
        for (j, c) in classes.iter().enumerate() {
            let x = left + j as i32 * cell + cell / 2;
            let style = TextStyle::from((FONT, 14).into_font().transform(FontTransform::Rotate270)).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(c.clone(), (x, grid_bottom + 8), style)).map_err(err)?;
        }
        let axis = TextStyle::from((FONT, 14).into_font().style(FontStyle::Bold)).pos(Pos::new(HPos::Center, VPos::Bottom));
        root.draw(&Text::new("predicted class →", (left + k as i32 * cell / 2, size.1 as i32 - 6), axis.clone())).map_err(err)?;
        root.draw(&Text::new("true class ↓", (left / 2, top - 8), axis)).map_err(err)?;
        root.present().map_err(err)?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_png_decodes_with_cells_shaded_by_share() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("confusion.png");
        let classes = vec!["cat".to_string(), "dog".to_string(), "automobile".to_string()];
        confusion_png(&path, &classes, &[vec![9, 1, 0], vec![5, 5, 0], vec![0, 0, 10]], "test").expect("png");
        let img = image::open(&path).expect("decodes").to_rgb8();
        assert_eq!(img.dimensions(), (120 + 3 * 58 + 24, 56 + 3 * 58 + 120));
        // A cell's corner pixel (away from its text) has the cell's shade.
        let px = |i: u32, j: u32| img.get_pixel(120 + j * 58 + 3, 56 + i * 58 + 3).0;
        assert_eq!(px(2, 2), [8, 48, 107], "100% cell is darkest");
        assert_eq!(px(2, 0), [247, 251, 255], "0% cell is lightest");
        let (full, half, tenth) = (px(0, 0), px(1, 1), px(0, 1));
        assert!(full[0] < half[0] && half[0] < tenth[0], "{full:?} {half:?} {tenth:?}");
        // Labels were drawn: some dark pixels left of the grid.
        let dark = (0..120).flat_map(|x| (56..56 + 174).map(move |y| (x, y))).filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100).count();
        assert!(dark > 50, "{dark}");
        assert!(!dir.path().join("confusion.partial.png").exists());
    }
}
