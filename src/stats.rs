//! Robust statistics shared by the comparisons: medians, spreads, a bootstrap interval of a
//! ratio, and change points across runs (E-divisive means). Pure functions over slices: no
//! clock, no I/O, seeded randomness so the same inputs give the same answer.

use rand::{Rng, SeedableRng};

/// Per-second values needed in each run for a noise estimate.
pub const MIN_SECONDS: usize = 5;

/// Bootstrap resamples.
const RESAMPLES: usize = 2000;

/// The median; `values` is sorted in place. `NaN` for an empty slice.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The median and 1.4826 × the median absolute deviation (a robust standard deviation).
pub fn median_spread(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    let centre = median(&mut v);
    let mut deviations: Vec<f64> = values.iter().map(|x| (x - centre).abs()).collect();
    (centre, median(&mut deviations) * 1.4826)
}

/// A seed from text: the same names resample the same way, so a verdict does not change
/// from one reading of the same two files to the next.
pub fn seed_of(parts: &[&str]) -> u64 {
    let text = parts.join("\u{0}");
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_le_bytes(bytes)
}

/// The 95% percentile-bootstrap interval of median(b) / median(a); `None` when the
/// medians of `a` are mostly zero or a slice is empty.
pub fn ratio_interval(a: &[f64], b: &[f64], seed: u64) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut ratios = Vec::with_capacity(RESAMPLES);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    for _ in 0..RESAMPLES {
        for x in ra.iter_mut() {
            *x = a[rng.random_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.random_range(0..b.len())];
        }
        let (ma, mb) = (median(&mut ra), median(&mut rb));
        if ma > 0.0 {
            ratios.push(mb / ma);
        }
    }
    if ratios.len() < RESAMPLES / 2 {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_excludes_one_only_for_a_real_shift() {
        // Two noisy series around 10 ms, then one around 12 ms.
        let noisy = |centre: f64, k: u64| -> Vec<f64> {
            (0..30)
                .map(|i| centre + ((i * 7 + k * 13) % 11) as f64 * 0.2 - 1.0)
                .collect()
        };
        let (lo, hi) = ratio_interval(&noisy(10.0, 1), &noisy(10.0, 2), 7).unwrap();
        assert!(lo <= 1.0 && hi >= 1.0, "A/A: {lo}..{hi}");
        let (lo, hi) = ratio_interval(&noisy(10.0, 1), &noisy(12.0, 2), 7).unwrap();
        assert!(lo > 1.1 && hi < 1.3, "a 20% shift: {lo}..{hi}");
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let (centre, spread) = median_spread(&[10.0, 10.0, 11.0, 9.0, 100.0]);
        assert_eq!(centre, 10.0);
        assert!((spread - 1.4826).abs() < 1e-9, "{spread}");
    }
}
