//! One folder per task burnlab trains: its config, training, and what one does with the result
//! (eval and predict, sample, or word queries).

pub mod charlm;
pub mod image;
pub mod playground;
pub mod word2vec;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{charlm, word2vec};
    use crate::config::{Arch, load_image};

    /// Every config in `configs/` loads as its task's experiment (here, above the tasks, so that
    /// `config` need not know them).
    #[test]
    fn shipped_configs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("configs/") {
            let path = entry.expect("entry").path();
            let stem =
                path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if stem.starts_with("word2vec") {
                word2vec::W2vExperiment::load(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            } else if stem.starts_with("charlm") {
                charlm::CharLmExperiment::load(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            } else if path.extension().is_some_and(|e| e == "toml") {
                let exp =
                    load_image(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                names.push((exp.name.clone(), exp.model.arch));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let archs: Vec<Arch> = names.iter().map(|n| n.1).collect();
        assert_eq!(
            archs,
            vec![
                Arch::Lenet5,
                Arch::Mlp,
                Arch::ImagenetResnet,
                Arch::Resnet,
                Arch::Resnet9,
                Arch::Mlp
            ],
            "{names:?}"
        );
    }
}
