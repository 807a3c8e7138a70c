//! How well one feature alone separates the classes, and the near-duplicate search.

use std::collections::HashMap;

/// The area under the ROC curve of `scores` for the positive class (`positive[i]`), ties
/// counted half (the Mann–Whitney statistic over both class sizes); `None` when a class
/// is empty. NaN scores are ranked below every number.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(scores[a]).total_cmp(&key(scores[b])));
    // Ranks from 1, tied values sharing their mean rank.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && key(scores[order[j + 1]]) == key(scores[order[i]]) {
            j += 1;
        }
        let mean_rank = (i + j + 2) as f64 / 2.0;
        rank_sum_pos += mean_rank * order[i..=j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// The AUC the best one-threshold rule on `scores` reaches: the AUC or one minus it.
pub fn separability(scores: &[f64], positive: &[bool]) -> Option<f64> {
    auc(scores, positive).map(|a| a.max(1.0 - a))
}

/// The AUC the best rule on a categorical feature reaches: each category scored by its
/// share of positives (a rule can put any category on either side, so this is the best
/// ordering of the categories).
pub fn categorical_separability(values: &[String], positive: &[bool]) -> Option<f64> {
    let mut counts: HashMap<&str, (f64, f64)> = HashMap::new();
    for (v, &p) in values.iter().zip(positive) {
        let c = counts.entry(v.as_str()).or_default();
        if p {
            c.0 += 1.0;
        }
        c.1 += 1.0;
    }
    let scores: Vec<f64> = values
        .iter()
        .map(|v| counts[v.as_str()].0 / counts[v.as_str()].1)
        .collect();
    auc(&scores, positive)
}

/// Hamming distance of two 64-bit hashes.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Every pair `(i, j)`, `i < j`, of `hashes` within `max_bits` of each other, for which
/// `keep(i, j)` holds. Pigeonhole banding: two hashes within `max_bits` agree exactly on
/// at least one of `max_bits + 1` disjoint bands, so only hashes sharing a band are
/// compared, and no pair is missed.
pub fn near_pairs(
    hashes: &[u64],
    max_bits: u32,
    mut keep: impl FnMut(usize, usize) -> bool,
) -> Vec<(usize, usize)> {
    let bands = (max_bits + 1).min(64) as usize;
    let mut found = std::collections::BTreeSet::new();
    for band in 0..bands {
        let lo = 64 * band / bands;
        let hi = 64 * (band + 1) / bands;
        let mask = if hi - lo == 64 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, &h) in hashes.iter().enumerate() {
            buckets.entry(h & mask).or_default().push(i);
        }
        for members in buckets.values() {
            for (a, &i) in members.iter().enumerate() {
                for &j in &members[a + 1..] {
                    if hamming(hashes[i], hashes[j]) <= max_bits && keep(i, j) {
                        found.insert((i.min(j), i.max(j)));
                    }
                }
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUC by its definition: the probability that a random positive scores above a
    /// random negative, ties half.
    fn auc_by_pairs(scores: &[f64], positive: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &p) in positive.iter().enumerate() {
            for (j, &q) in positive.iter().enumerate() {
                if p && !q {
                    pairs += 1.0;
                    let (a, b) = (scores[i], scores[j]);
                    let (a, b) = (
                        if a.is_nan() { f64::NEG_INFINITY } else { a },
                        if b.is_nan() { f64::NEG_INFINITY } else { b },
                    );
                    wins += if a > b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn auc_equals_the_pairwise_definition_with_ties_and_missing_values() {
        let mut state = 12345u64;
        for trial in 0..50 {
            let n = 5 + trial;
            let mut scores = Vec::new();
            let mut positive = Vec::new();
            for k in 0..n {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = (state >> 60) as f64; // 16 values: many ties
                scores.push(if k % 7 == 3 { f64::NAN } else { v });
                positive.push((state >> 20) & 1 == 1 || k == 0);
            }
            positive[1] = false;
            let got = auc(&scores, &positive).expect("both classes");
            let want = auc_by_pairs(&scores, &positive);
            assert!((got - want).abs() < 1e-12, "trial {trial}: {got} vs {want}");
        }
        assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);
    }

    #[test]
    fn categories_that_split_the_classes_separate_them() {
        let values: Vec<String> = ["a", "a", "b", "b", "c", "c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let positive = [true, true, false, false, true, true];
        assert_eq!(categorical_separability(&values, &positive), Some(1.0));
        let mixed = [true, false, true, false, true, false];
        assert_eq!(categorical_separability(&values, &mixed), Some(0.5));
    }

    #[test]
    fn near_pairs_finds_every_pair_a_full_comparison_finds() {
        let mut state = 99u64;
        let mut hashes = Vec::new();
        for _ in 0..300 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            hashes.push(state);
        }
        // Plant near copies at 1..=6 bits.
        for k in 0..60 {
            let flip = (0..(k % 7)).fold(0u64, |m, b| m | 1 << ((b * 11 + k) % 64));
            hashes.push(hashes[k] ^ flip);
        }
        for max_bits in [0, 3, 4, 6] {
            let mut brute = Vec::new();
            for i in 0..hashes.len() {
                for j in i + 1..hashes.len() {
                    if hamming(hashes[i], hashes[j]) <= max_bits {
                        brute.push((i, j));
                    }
                }
            }
            assert!(!brute.is_empty());
            assert_eq!(
                near_pairs(&hashes, max_bits, |_, _| true),
                brute,
                "max_bits {max_bits}"
            );
        }
    }
}
