use rand::Rng;
use serde::{Deserialize, Serialize};

/// torchvision's `RandomCrop(size, padding=p)` (zero padding) followed by
/// `RandomHorizontalFlip(0.5)`, on planar CHW `u8` images, and optionally `ColorJitter` and
/// Cutout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Augment {
    /// Zero padding on each side before the random crop; 0 disables cropping.
    pub crop_padding: usize,
    pub hflip: bool,
    /// Side of the Cutout square (DeVries & Taylor 2017); 0 disables it.
    #[serde(default)]
    pub cutout: usize,
    /// torchvision's `RandomResizedCrop(size)` first (a random area of 8–100% and aspect ratio
    /// of 3/4–4/3, resized to the output size), for images kept at their own sizes.
    #[serde(default)]
    pub random_resized: bool,
    /// torchvision's `ColorJitter(j, j, j)`: brightness, contrast and saturation each scaled by
    /// a factor drawn from [max(0, 1 − j), 1 + j], in a random order; 0 disables it.
    #[serde(default)]
    pub color_jitter: f32,
}

/// Rows `y0..y1` and columns `x0..x1` of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub y0: usize,
    pub y1: usize,
    pub x0: usize,
    pub x1: usize,
}

impl Augment {
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0
            && !self.hflip
            && self.cutout == 0
            && !self.random_resized
            && self.color_jitter == 0.0
    }

    /// Write the augmented `src` into `dst` (same shape). Padding pixels are 0, as in torchvision.
    /// Returns the Cutout square, which the caller blanks *after* standardisation (to the
    /// mean, i.e. 0), as the reference implementation does; it is centred anywhere in the image
    /// and clipped at the borders.
    pub fn apply(
        &self,
        src: &[u8],
        dst: &mut [u8],
        channels: usize,
        height: usize,
        width: usize,
        rng: &mut impl Rng,
    ) -> Option<Rect> {
        let p = self.crop_padding as isize;
        let (dy, dx) = if p > 0 {
            (
                rng.random_range(-p as i64..=p as i64) as isize,
                rng.random_range(-p as i64..=p as i64) as isize,
            )
        } else {
            (0, 0)
        };
        let flip = self.hflip && rng.random_bool(0.5);
        self.apply_with(src, dst, channels, height, width, dy, dx, flip);
        if self.color_jitter > 0.0 && channels == 3 {
            let j = self.color_jitter;
            let mut order = [0usize, 1, 2];
            rand::seq::SliceRandom::shuffle(&mut order[..], rng);
            let factors: Vec<f32> =
                (0..3).map(|_| rng.random_range((1.0 - j).max(0.0)..=1.0 + j)).collect();
            let ops = order.map(|o| (o, factors[o]));
            color_jitter(dst, height * width, &ops);
        }
        (self.cutout > 0).then(|| {
            let (cy, cx) = (rng.random_range(0..height), rng.random_range(0..width));
            let half = self.cutout / 2;
            Rect {
                y0: cy.saturating_sub(half),
                y1: (cy + self.cutout - half).min(height),
                x0: cx.saturating_sub(half),
                x1: (cx + self.cutout - half).min(width),
            }
        })
    }

    /// Deterministic core: output (y, x) reads input (y + dy, x' + dx) where x' is x mirrored
    /// when `flip`; out-of-range reads are 0.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_with(
        &self,
        src: &[u8],
        dst: &mut [u8],
        channels: usize,
        height: usize,
        width: usize,
        dy: isize,
        dx: isize,
        flip: bool,
    ) {
        let plane = height * width;
        for c in 0..channels {
            let s = &src[c * plane..(c + 1) * plane];
            let d = &mut dst[c * plane..(c + 1) * plane];
            for y in 0..height {
                let sy = y as isize + dy;
                let row = &mut d[y * width..(y + 1) * width];
                if sy < 0 || sy >= height as isize {
                    row.fill(0);
                    continue;
                }
                let srow = &s[sy as usize * width..(sy as usize + 1) * width];
                for (x, out) in row.iter_mut().enumerate() {
                    let xx = if flip { width - 1 - x } else { x };
                    let sx = xx as isize + dx;
                    *out = if sx < 0 || sx >= width as isize { 0 } else { srow[sx as usize] };
                }
            }
        }
    }
}

/// Brightness (0), contrast (1) and saturation (2) adjustments of a planar RGB image, in the
/// given order with their factors, as torchvision's functional ones: brightness scales; contrast
/// blends with the mean grey level; saturation blends each pixel with its grey (ITU-R 601).
pub fn color_jitter(img: &mut [u8], plane: usize, ops: &[(usize, f32)]) {
    let mut x: Vec<f32> = img.iter().map(|&v| v as f32).collect();
    let grey = |x: &[f32], i: usize| 0.299 * x[i] + 0.587 * x[plane + i] + 0.114 * x[2 * plane + i];
    let clamp = |v: f32| v.clamp(0.0, 255.0);
    for &(op, f) in ops {
        match op {
            0 => x.iter_mut().for_each(|v| *v = clamp(*v * f)),
            1 => {
                let mean = (0..plane).map(|i| grey(&x, i)).sum::<f32>() / plane.max(1) as f32;
                x.iter_mut().for_each(|v| *v = clamp(mean + (*v - mean) * f));
            }
            _ => {
                for i in 0..plane {
                    let g = grey(&x, i);
                    for c in 0..3 {
                        let v = &mut x[c * plane + i];
                        *v = clamp(g + (*v - g) * f);
                    }
                }
            }
        }
    }
    for (o, v) in img.iter_mut().zip(x) {
        *o = v.round() as u8;
    }
}

/// The centre `oh` × `ow` of a planar `c` × `h` × `w` image (torchvision's `CenterCrop`: the
/// offset rounds as `int(round((h - oh) / 2))`); an image smaller than that is zero-padded
/// around its centre.
pub fn center_crop(src: &[u8], c: usize, h: usize, w: usize, oh: usize, ow: usize) -> Vec<u8> {
    let offset = |n: usize, o: usize| ((n as f64 - o as f64) / 2.0).round_ties_even() as isize;
    let (dy, dx) = (offset(h, oh), offset(w, ow));
    let mut out = vec![0u8; c * oh * ow];
    for ch in 0..c {
        for y in 0..oh {
            let sy = y as isize + dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for x in 0..ow {
                let sx = x as isize + dx;
                if sx >= 0 && sx < w as isize {
                    out[(ch * oh + y) * ow + x] = src[(ch * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
    out
}

/// torchvision's `RandomResizedCrop.get_params` with its default scale (0.08, 1) and ratio
/// (3/4, 4/3): ten tries at a random area and log-uniform aspect ratio that fit, else the
/// centre crop of the whole image at the nearest allowed ratio.
pub fn random_resized_rect(h: usize, w: usize, rng: &mut impl Rng) -> Rect {
    let area = (h * w) as f64;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..=1.0);
        let ratio = rng.random_range(lo..=hi).exp();
        let cw = (target * ratio).sqrt().round() as usize;
        let ch = (target / ratio).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let y0 = rng.random_range(0..=h - ch);
            let x0 = rng.random_range(0..=w - cw);
            return Rect { y0, y1: y0 + ch, x0, x1: x0 + cw };
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < 0.75 {
        (w, ((w as f64 / 0.75).round() as usize).min(h))
    } else if in_ratio > 4.0 / 3.0 {
        (((h as f64 * 4.0 / 3.0).round() as usize).min(w), h)
    } else {
        (w, h)
    };
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    Rect { y0, y1: y0 + ch, x0, x1: x0 + cw }
}

/// Bilinear resize of the `rect` of a planar `c` × `h` × `w` image to `oh` × `ow` (half-pixel
/// centres, as `F.interpolate(..., mode="bilinear", align_corners=False)`).
pub fn resize_rect(
    src: &[u8],
    (c, h, w): (usize, usize, usize),
    rect: Rect,
    (oh, ow): (usize, usize),
) -> Vec<u8> {
    let (rh, rw) = (rect.y1 - rect.y0, rect.x1 - rect.x0);
    let taps = |out: usize, len: usize, start: usize| -> Vec<(usize, usize, f32)> {
        let scale = len as f32 / out as f32;
        (0..out)
            .map(|o| {
                let p = ((o as f32 + 0.5) * scale - 0.5).clamp(0.0, (len - 1) as f32);
                let i0 = p.floor() as usize;
                let i1 = (i0 + 1).min(len - 1);
                (start + i0, start + i1, p - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (taps(oh, rh, rect.y0), taps(ow, rw, rect.x0));
    let mut out = vec![0u8; c * oh * ow];
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
            let (r0, r1) = (&plane[y0 * w..(y0 + 1) * w], &plane[y1 * w..(y1 + 1) * w]);
            for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
                let top = r0[x0] as f32 * (1.0 - fx) + r0[x1] as f32 * fx;
                let bottom = r1[x0] as f32 * (1.0 - fx) + r1[x1] as f32 * fx;
                out[(ch * oh + y) * ow + x] = (top * (1.0 - fy) + bottom * fy).round() as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn img() -> Vec<u8> {
        (1..=2 * 3 * 3).map(|v| v as u8).collect() // 2 channels, 3x3
    }

    #[test]
    fn shift_pads_with_zero() {
        let a = Augment { crop_padding: 1, ..Augment::default() };
        let mut out = vec![9u8; 18];
        a.apply_with(&img(), &mut out, 2, 3, 3, 1, -1, false);
        // Channel 0 input rows: [1 2 3] [4 5 6] [7 8 9]; out(y,x) = in(y+1, x-1).
        assert_eq!(&out[..9], &[0, 4, 5, 0, 7, 8, 0, 0, 0]);
        assert_eq!(&out[9..], &[0, 13, 14, 0, 16, 17, 0, 0, 0]);
    }

    #[test]
    fn flip_mirrors_rows() {
        let a = Augment { hflip: true, ..Augment::default() };
        let mut out = vec![0u8; 18];
        a.apply_with(&img(), &mut out, 2, 3, 3, 0, 0, true);
        assert_eq!(&out[..9], &[3, 2, 1, 6, 5, 4, 9, 8, 7]);
    }

    #[test]
    fn identity_and_seeded() {
        let a = Augment { crop_padding: 4, hflip: true, ..Augment::default() };
        let src: Vec<u8> = (0..3 * 32 * 32).map(|v| (v % 251) as u8).collect();
        let mut o1 = vec![0u8; src.len()];
        let mut o2 = vec![0u8; src.len()];
        a.apply(&src, &mut o1, 3, 32, 32, &mut rand::rngs::StdRng::seed_from_u64(3));
        a.apply(&src, &mut o2, 3, 32, 32, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!(o1, o2);
        let none = Augment::default();
        assert!(none.is_identity());
        none.apply(&src, &mut o1, 3, 32, 32, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!(o1, src);
    }

    #[test]
    fn cutout_square_is_clipped_and_sized() {
        let a = Augment { cutout: 8, ..Augment::default() };
        assert!(!a.is_identity());
        let src = vec![7u8; 32 * 32];
        let mut dst = vec![0u8; src.len()];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut clipped = 0;
        for _ in 0..500 {
            let r = a.apply(&src, &mut dst, 1, 32, 32, &mut rng).expect("cutout on");
            assert_eq!(dst, src, "cutout leaves the pixels to the caller");
            assert!(r.y0 < r.y1 && r.y1 <= 32 && r.x0 < r.x1 && r.x1 <= 32);
            assert!(r.y1 - r.y0 <= 8 && r.x1 - r.x0 <= 8);
            if r.y1 - r.y0 < 8 || r.x1 - r.x0 < 8 {
                clipped += 1;
            }
        }
        // Centres within 4 pixels of a border (~47% of them) clip the square.
        assert!((150..350).contains(&clipped), "{clipped}");
        assert_eq!(Augment::default().apply(&src, &mut dst, 1, 32, 32, &mut rng), None);
    }

    /// An image whose pixel (y, x) holds `y * 16 + x` in channel 0 and 255 minus that in
    /// channel 1: crops can be read off their values.
    fn coords(h: usize, w: usize) -> Vec<u8> {
        let c0: Vec<u8> = (0..h * w).map(|i| ((i / w) * 16 + i % w) as u8).collect();
        let c1: Vec<u8> = c0.iter().map(|v| 255 - v).collect();
        [c0, c1].concat()
    }

    #[test]
    fn color_jitter_known_answers() {
        // One pixel (R, G, B) = (100, 150, 200): grey 0.299·100 + 0.587·150 + 0.114·200 = 140.75.
        let px = [100u8, 150, 200];
        let mut a = px;
        color_jitter(&mut a, 1, &[(0, 1.5)]);
        assert_eq!(a, [150, 225, 255], "brightness scales and clips");
        let mut b = px;
        color_jitter(&mut b, 1, &[(2, 0.0)]);
        assert_eq!(b, [141, 141, 141], "saturation 0 is the grey");
        let mut c = px;
        color_jitter(&mut c, 1, &[(1, 0.0)]);
        assert_eq!(c, [141, 141, 141], "contrast 0 is the mean grey");
        let mut d = px;
        color_jitter(&mut d, 1, &[(0, 1.0), (1, 1.0), (2, 1.0)]);
        assert_eq!(d, px, "factors of 1 change nothing");
        // Off by default: no draw, so runs without it are unchanged.
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (src, mut dst) = (vec![7u8; 12], vec![0u8; 12]);
        let on = Augment { color_jitter: 0.4, ..Augment::default() };
        on.apply(&src, &mut dst, 3, 2, 2, &mut rng);
        assert!(dst.iter().all(|&v| v == dst[0]), "a grey image stays grey: {dst:?}");
    }

    #[test]
    fn center_crop_takes_the_middle_as_torchvision_rounds_it() {
        // 6 × 8 → 4 × 4: rows 1..5, columns 2..6.
        let out = center_crop(&coords(6, 8), 2, 6, 8, 4, 4);
        assert_eq!(&out[..4], &[18, 19, 20, 21]);
        assert_eq!(out[15], 4 * 16 + 5);
        assert_eq!(out[16], 255 - 18, "channel 1 cropped alike");
        // 5 × 5 → 2 × 2: round(1.5) = 2 (ties to even, as Python's round).
        assert_eq!(center_crop(&coords(5, 5), 2, 5, 5, 2, 2)[0], 2 * 16 + 2);
    }

    #[test]
    fn resizing_a_rect_to_its_own_size_copies_it_and_halving_averages() {
        let img = coords(6, 8);
        let rect = Rect { y0: 1, y1: 4, x0: 2, x1: 7 };
        let same = resize_rect(&img, (2, 6, 8), rect, (3, 5));
        assert_eq!(&same[..5], &[18, 19, 20, 21, 22]);
        assert_eq!(same[14], 3 * 16 + 6);
        // 2 × 2 → 1 × 1 samples the centre: the mean of the four.
        let one = resize_rect(&img, (2, 6, 8), Rect { y0: 0, y1: 2, x0: 0, x1: 2 }, (1, 1));
        assert_eq!(one[0], ((0.0 + 1.0 + 16.0 + 17.0) / 4.0f32).round() as u8);
    }

    #[test]
    fn random_resized_rects_fit_and_follow_torchvisions_ranges() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let (h, w) = (256, 341);
        for _ in 0..500 {
            let r = random_resized_rect(h, w, &mut rng);
            assert!(r.y1 <= h && r.x1 <= w && r.y0 < r.y1 && r.x0 < r.x1, "{r:?}");
            let (ch, cw) = ((r.y1 - r.y0) as f64, (r.x1 - r.x0) as f64);
            let area = ch * cw / (h * w) as f64;
            assert!((0.07..=1.0).contains(&area), "{area}");
            assert!((0.74..=1.36).contains(&(cw / ch)), "{}", cw / ch);
        }
        // Too thin for any try: the centre at the nearest allowed ratio.
        let r = random_resized_rect(100, 10, &mut rng);
        assert_eq!((r.x0, r.x1, r.y1 - r.y0), (0, 10, 13));
    }
}
