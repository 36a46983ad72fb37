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

/// A change in a series' distribution, found by [`change_points`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangePoint {
    /// The first value after the change.
    pub index: usize,
    /// The permutation test's p-value: the share of shuffles of the segment that looked at
    /// least as divided (1 - confidence).
    pub p_value: f64,
}

/// Change points of a series by E-divisive means (Matteson and James 2014, as Apache Otava
/// and MongoDB's performance CI use it): the split of a segment that maximises the energy
/// distance between its two sides is kept when a permutation test (`permutations`
/// shuffles) finds it significant at `alpha`; then each side is split in turn. Each side of
/// a split holds at least 2 values, except that the last value may stand alone (tonight's
/// run may be the first after a change). Nonparametric: steps and drifts, any distribution.
pub fn change_points(
    values: &[f64],
    alpha: f64,
    permutations: usize,
    seed: u64,
) -> Vec<ChangePoint> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut found = Vec::new();
    let mut segments = vec![(0, values.len())];
    while let Some((start, end)) = segments.pop() {
        let segment = &values[start..end];
        let last = end == values.len();
        let Some((split, q)) = best_split(segment, last) else {
            continue;
        };
        let mut shuffled = segment.to_vec();
        let mut as_divided = 0;
        for _ in 0..permutations {
            shuffle(&mut shuffled, &mut rng);
            if best_split(&shuffled, last).is_some_and(|(_, qp)| qp >= q) {
                as_divided += 1;
            }
        }
        let p_value = (as_divided + 1) as f64 / (permutations + 1) as f64;
        if p_value > alpha {
            continue;
        }
        found.push(ChangePoint {
            index: start + split,
            p_value,
        });
        segments.push((start, start + split));
        segments.push((start + split, end));
    }
    found.sort_by_key(|c| c.index);
    found
}

fn shuffle(values: &mut [f64], rng: &mut rand::rngs::SmallRng) {
    for i in (1..values.len()).rev() {
        let j = rng.random_range(0..=i);
        values.swap(i, j);
    }
}

/// The split `τ` of `z` maximising Q(τ) = m·k/n · (2/(m·k)·Σ|x−y| − Σ|x−x'|/(m(m−1)) −
/// Σ|y−y'|/(k(k−1))), with `m = τ` values before and `k = n − τ` after (a side of one value
/// has no within term); `None` when no split is allowed.
fn best_split(z: &[f64], last_may_stand_alone: bool) -> Option<(usize, f64)> {
    let n = z.len();
    // prefix[i][j]: Σ |z_a − z_b| over a < i, b < j.
    let mut prefix = vec![vec![0.0; n + 1]; n + 1];
    for i in 0..n {
        for j in 0..n {
            prefix[i + 1][j + 1] =
                (z[i] - z[j]).abs() + prefix[i][j + 1] + prefix[i + 1][j] - prefix[i][j];
        }
    }
    let sum = |a: usize, b: usize, c: usize, d: usize| {
        prefix[b][d] - prefix[a][d] - prefix[b][c] + prefix[a][c]
    };
    let min_right = if last_may_stand_alone { 1 } else { 2 };
    let mut best: Option<(usize, f64)> = None;
    for tau in 2..=n.saturating_sub(min_right) {
        let (m, k) = (tau as f64, (n - tau) as f64);
        let cross = sum(0, tau, tau, n);
        let left = sum(0, tau, 0, tau);
        let right = sum(tau, n, tau, n);
        let within = |s: f64, c: f64| if c > 1.0 { s / (c * (c - 1.0)) } else { 0.0 };
        let e = 2.0 * cross / (m * k) - within(left, m) - within(right, k);
        let q = m * k / n as f64 * e;
        if best.is_none_or(|(_, b)| q > b) {
            best = Some((tau, q));
        }
    }
    best
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

    /// A 10% step at night 20 of 30 and a 1%-a-night drift, with noise of about 2%.
    #[test]
    fn a_step_and_a_drift_are_found_where_they_begin() {
        let noise = |i: usize| ((i * 7919) % 13) as f64 / 13.0 * 4.0 - 2.0;
        let step: Vec<f64> = (0..30)
            .map(|i| if i < 20 { 100.0 } else { 110.0 } + noise(i))
            .collect();
        let found = change_points(&step, 0.05, 199, 1);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].index, 20);
        assert!(found[0].p_value < 0.01);
        let flat: Vec<f64> = (0..30).map(|i| 100.0 + noise(i)).collect();
        assert!(change_points(&flat, 0.05, 199, 1).is_empty());
        let drift: Vec<f64> = (0..30)
            .map(|i| 100.0 * (1.01f64).powi(i as i32) + noise(i))
            .collect();
        assert!(!change_points(&drift, 0.05, 199, 1).is_empty());
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
