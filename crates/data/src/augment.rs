use rand::Rng;
use serde::{Deserialize, Serialize};

/// torchvision's `RandomCrop(size, padding=p)` (zero padding) followed by
/// `RandomHorizontalFlip(0.5)`, on planar CHW `u8` images, and optionally Cutout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Augment {
    /// Zero padding on each side before the random crop; 0 disables cropping.
    pub crop_padding: usize,
    pub hflip: bool,
    /// Side of the Cutout square (DeVries & Taylor 2017); 0 disables it.
    #[serde(default)]
    pub cutout: usize,
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
        self.crop_padding == 0 && !self.hflip && self.cutout == 0
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn img() -> Vec<u8> {
        (1..=2 * 3 * 3).map(|v| v as u8).collect() // 2 channels, 3x3
    }

    #[test]
    fn shift_pads_with_zero() {
        let a = Augment { crop_padding: 1, hflip: false, cutout: 0 };
        let mut out = vec![9u8; 18];
        a.apply_with(&img(), &mut out, 2, 3, 3, 1, -1, false);
        // Channel 0 input rows: [1 2 3] [4 5 6] [7 8 9]; out(y,x) = in(y+1, x-1).
        assert_eq!(&out[..9], &[0, 4, 5, 0, 7, 8, 0, 0, 0]);
        assert_eq!(&out[9..], &[0, 13, 14, 0, 16, 17, 0, 0, 0]);
    }

    #[test]
    fn flip_mirrors_rows() {
        let a = Augment { crop_padding: 0, hflip: true, cutout: 0 };
        let mut out = vec![0u8; 18];
        a.apply_with(&img(), &mut out, 2, 3, 3, 0, 0, true);
        assert_eq!(&out[..9], &[3, 2, 1, 6, 5, 4, 9, 8, 7]);
    }

    #[test]
    fn identity_and_seeded() {
        let a = Augment { crop_padding: 4, hflip: true, cutout: 0 };
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
}
