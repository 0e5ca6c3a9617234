use rand::Rng;
use serde::{Deserialize, Serialize};

/// torchvision's `RandomCrop(size, padding=p)` (zero padding) followed by
/// `RandomHorizontalFlip(0.5)`, on planar CHW `u8` images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Zero padding on each side before the random crop; 0 disables cropping.
    pub crop_padding: usize,
    pub hflip: bool,
}

impl Augment {
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.hflip
    }

    /// Write the augmented `src` into `dst` (same shape). Padding pixels are 0, as in torchvision.
    pub fn apply(&self, src: &[u8], dst: &mut [u8], channels: usize, height: usize, width: usize, rng: &mut impl Rng) {
        let p = self.crop_padding as isize;
        let (dy, dx) = if p > 0 {
            (rng.random_range(-p as i64..=p as i64) as isize, rng.random_range(-p as i64..=p as i64) as isize)
        } else {
            (0, 0)
        };
        let flip = self.hflip && rng.random_bool(0.5);
        self.apply_with(src, dst, channels, height, width, dy, dx, flip);
    }

    /// Deterministic core: output (y, x) reads input (y + dy, x' + dx) where x' is x mirrored
    /// when `flip`; out-of-range reads are 0.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_with(&self, src: &[u8], dst: &mut [u8], channels: usize, height: usize, width: usize, dy: isize, dx: isize, flip: bool) {
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
        let a = Augment { crop_padding: 1, hflip: false };
        let mut out = vec![9u8; 18];
        a.apply_with(&img(), &mut out, 2, 3, 3, 1, -1, false);
        // Channel 0 input rows: [1 2 3] [4 5 6] [7 8 9]; out(y,x) = in(y+1, x-1).
        assert_eq!(&out[..9], &[0, 4, 5, 0, 7, 8, 0, 0, 0]);
        assert_eq!(&out[9..], &[0, 13, 14, 0, 16, 17, 0, 0, 0]);
    }

    #[test]
    fn flip_mirrors_rows() {
        let a = Augment { crop_padding: 0, hflip: true };
        let mut out = vec![0u8; 18];
        a.apply_with(&img(), &mut out, 2, 3, 3, 0, 0, true);
        assert_eq!(&out[..9], &[3, 2, 1, 6, 5, 4, 9, 8, 7]);
    }

    #[test]
    fn identity_and_seeded() {
        let a = Augment { crop_padding: 4, hflip: true };
        let src: Vec<u8> = (0..3 * 32 * 32).map(|v| (v % 251) as u8).collect();
        let mut o1 = vec![0u8; src.len()];
        let mut o2 = vec![0u8; src.len()];
        a.apply(&src, &mut o1, 3, 32, 32, &mut rand::rngs::StdRng::seed_from_u64(3));
        a.apply(&src, &mut o2, 3, 32, 32, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!(o1, o2);
        let none = Augment { crop_padding: 0, hflip: false };
        assert!(none.is_identity());
        none.apply(&src, &mut o1, 3, 32, 32, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!(o1, src);
    }
}
