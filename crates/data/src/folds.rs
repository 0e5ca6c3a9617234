//! Stratified k-fold cross-validation splits (scikit-learn's `StratifiedKFold(shuffle=True)`):
//! each fold holds every class in proportion, and the folds partition the set exactly.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::{DataError, ImageSet, Result};

/// The fold (0-based) of each item: per class, its members in seeded random order are dealt to
/// the folds in turn, the deal going on from class to class, so that every fold's count of each
/// class and its total are within one of the others'.
pub fn stratified_folds(labels: &[u32], folds: usize, seed: u64) -> Vec<usize> {
    assert!(folds >= 1, "at least one fold");
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        members[l as usize].push(i);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0; labels.len()];
    let mut next = 0;
    for m in &mut members {
        m.shuffle(&mut rng);
        for &i in m.iter() {
            fold_of[i] = next;
            next = (next + 1) % folds;
        }
    }
    fold_of
}

impl ImageSet {
    /// Fold `fold` (1-based) of `folds` stratified folds: (the other folds to train on, this
    /// fold to validate on). The same `seed` gives every fold of one cross-validation the same
    /// partition.
    pub fn fold_split(&self, folds: usize, fold: usize, seed: u64) -> Result<(ImageSet, ImageSet)> {
        if folds < 2 || fold == 0 || fold > folds {
            return Err(DataError::Invalid(format!(
                "fold {fold} of {folds}: cross-validation needs at least 2 folds, numbered from 1"
            )));
        }
        if self.len() < folds {
            return Err(DataError::Invalid(format!(
                "{folds} folds of {} training images: fewer images than folds",
                self.len()
            )));
        }
        let fold_of = stratified_folds(&self.labels, folds, seed);
        let (valid, train): (Vec<usize>, Vec<usize>) =
            (0..self.len()).partition(|&i| fold_of[i] == fold - 1);
        // As `split_validation`: validation in a seeded shuffle (its first batch mixes classes).
        let mut valid = valid;
        valid.shuffle(&mut StdRng::seed_from_u64(seed ^ fold as u64));
        Ok((self.subset(&train), self.subset(&valid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 classes of 10, 7 and 4 items.
    fn labels() -> Vec<u32> {
        let mut l = vec![0u32; 10];
        l.extend([1; 7]);
        l.extend([2; 4]);
        // Interleave, as a real set would be.
        l.sort_by_key(|&x| (x * 7919) % 5);
        l
    }

    #[test]
    fn folds_partition_the_set_and_are_stratified() {
        let labels = labels();
        let k = 3;
        let fold_of = stratified_folds(&labels, k, 11);
        assert_eq!(fold_of.len(), labels.len());
        assert!(fold_of.iter().all(|&f| f < k));
        // counts[fold][class]
        let mut counts = vec![[0usize; 3]; k];
        for (i, &f) in fold_of.iter().enumerate() {
            counts[f][labels[i] as usize] += 1;
        }
        // Class sizes 10, 7, 4 dealt over 3 folds continuing the deal: class 0 → 4,3,3;
        // class 1 starts at fold 1 → 2,3,2; class 2 starts at fold 2 → 1,1,2.
        assert_eq!(counts, vec![[4, 2, 1], [3, 3, 1], [3, 2, 2]]);
        let totals: Vec<usize> = counts.iter().map(|c| c.iter().sum()).collect();
        assert_eq!(totals, [7, 7, 7]);
        // The same seed, the same folds; another seed, another deal.
        assert_eq!(stratified_folds(&labels, k, 11), fold_of);
        assert_ne!(stratified_folds(&labels, k, 12), fold_of);
    }

    fn set(labels: Vec<u32>) -> ImageSet {
        // Each 1×1×1 image's pixel is its index: which images a split holds is readable.
        ImageSet {
            images: (0..labels.len() as u8).collect(),
            labels,
            classes: vec!["a".into(), "b".into(), "c".into()],
            channels: 1,
            height: 1,
            width: 1,
            own_sizes: None,
            lazy: None,
        }
    }

    #[test]
    fn the_validation_folds_cover_every_image_once() {
        let s = set(labels());
        let mut seen = Vec::new();
        for fold in 1..=3 {
            let (train, valid) = s.fold_split(3, fold, 5).expect("split");
            assert_eq!(train.len() + valid.len(), s.len());
            let t: Vec<u8> = train.images.clone();
            assert!(valid.images.iter().all(|p| !t.contains(p)), "fold {fold} overlaps");
            // Labels travel with their images.
            for (i, &p) in valid.images.iter().enumerate() {
                assert_eq!(valid.labels[i], s.labels[p as usize]);
            }
            seen.extend(valid.images);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..s.len() as u8).collect::<Vec<_>>());
    }

    #[test]
    fn bad_folds_are_errors() {
        let s = set(labels());
        for (folds, fold) in [(1, 1), (3, 0), (3, 4), (50, 1)] {
            let e = s.fold_split(folds, fold, 0).expect_err("refused").to_string();
            assert!(e.contains("fold"), "{e}");
        }
    }
}
