//! Pictures of the playground: the plane coloured by the predicted class (paler where the net
//! is less sure), the points on top (training filled, validation hollow), a caption.

use anyhow::{Result, anyhow};
use image::RgbImage;
use plotters::prelude::*;

use super::net::Net;
use crate::insight::plot::{FONT, PALETTE, register_fonts};

/// The part of the plane a picture shows: the data's bounding box, squared and padded.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub x0: f64,
    pub y0: f64,
    pub span: f64,
}

impl View {
    pub fn around(points: &[[f64; 2]]) -> View {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in points {
            (x0, x1, y0, y1) = (x0.min(p[0]), x1.max(p[0]), y0.min(p[1]), y1.max(p[1]));
        }
        if points.is_empty() {
            (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
        }
        let span = (x1 - x0).max(y1 - y0).max(1e-9) * 1.15;
        View { x0: (x0 + x1 - span) / 2.0, y0: (y0 + y1 - span) / 2.0, span }
    }
}

/// Caption band height, pixels.
const CAPTION: u32 = 26;

/// A panel `size` pixels square (plus the caption) of `net` on the plane, with the points.
pub fn panel(
    net: &Net,
    features: &dyn Fn(&[[f64; 2]]) -> Vec<f64>,
    view: View,
    size: u32,
    points: [(&[[f64; 2]], &[u32]); 2],
    caption: &str,
) -> Result<RgbImage> {
    // The net on the centre of every pixel, one row of pixels at a time.
    let k = net.classes;
    let mut img = RgbImage::new(size, size + CAPTION);
    for px in img.pixels_mut() {
        *px = image::Rgb([255, 255, 255]);
    }
    let step = view.span / size as f64;
    for row in 0..size {
        let y = view.y0 + view.span - (row as f64 + 0.5) * step;
        let xy: Vec<[f64; 2]> = (0..size).map(|c| [view.x0 + (c as f64 + 0.5) * step, y]).collect();
        let f = features(&xy);
        let pass = net.forward(&f, xy.len(), None);
        let probs = net.probabilities(Net::logits(&pass), xy.len());
        for c in 0..size as usize {
            let p = &probs[c * k..(c + 1) * k];
            let (best, pmax) =
                p.iter().enumerate().fold((0, 0.0), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            // Sureness 0 (all classes alike) … 1 (one class certain) sets the tint's depth.
            let sure = ((pmax - 1.0 / k as f64) / (1.0 - 1.0 / k as f64)).clamp(0.0, 1.0);
            let base = PALETTE[best % PALETTE.len()];
            let depth = 0.15 + 0.45 * sure;
            let mix = |ch: u8| (255.0 + (f64::from(ch) - 255.0) * depth).round() as u8;
            img.put_pixel(
                c as u32,
                row + CAPTION,
                image::Rgb([mix(base.0), mix(base.1), mix(base.2)]),
            );
        }
    }
    register_fonts();
    let (w, h) = (size, size + CAPTION);
    {
        let mut buf = img.as_flat_samples_mut();
        let root = BitMapBackend::with_buffer(buf.as_mut_slice(), (w, h)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing the playground: {e:?}");
        let to_px = |p: &[f64; 2]| -> (i32, i32) {
            let x = (p[0] - view.x0) / view.span * f64::from(size);
            let y = (view.y0 + view.span - p[1]) / view.span * f64::from(size) + f64::from(CAPTION);
            (x.round() as i32, y.round() as i32)
        };
        for (set, (xy, labels)) in points.iter().enumerate() {
            for (p, &l) in xy.iter().zip(labels.iter()) {
                let c = PALETTE[l as usize % PALETTE.len()];
                let at = to_px(p);
                if set == 0 {
                    root.draw(&Circle::new(at, 3, c.filled())).map_err(err)?;
                    root.draw(&Circle::new(at, 3, BLACK.mix(0.6).stroke_width(1))).map_err(err)?;
                } else {
                    root.draw(&Circle::new(at, 3, c.stroke_width(2))).map_err(err)?;
                }
            }
        }
        root.draw(&Rectangle::new([(0, 0), (w as i32, CAPTION as i32)], WHITE.filled()))
            .map_err(err)?;
        root.draw(&Text::new(caption.to_string(), (6, 5), (FONT, 15).into_font().color(&BLACK)))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(img)
}

/// Panels side by side, up to `per_row` in a row, 4 pixels apart.
pub fn tile(panels: &[RgbImage], per_row: usize) -> RgbImage {
    let (pw, ph) = panels.first().map_or((1, 1), |p| (p.width(), p.height()));
    let cols = panels.len().clamp(1, per_row.max(1)) as u32;
    let rows = panels.len().div_ceil(cols as usize).max(1) as u32;
    let gap = 4;
    let mut out = RgbImage::from_pixel(
        cols * pw + (cols - 1) * gap,
        rows * ph + (rows - 1) * gap,
        image::Rgb([255, 255, 255]),
    );
    for (i, p) in panels.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(&mut out, p, i64::from(c * (pw + gap)), i64::from(r * (ph + gap)));
    }
    out
}
