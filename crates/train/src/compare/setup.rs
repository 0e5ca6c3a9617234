//! What every point of a sweep or fold of a cross-validation trains: a `burnlab train <task>`
//! command line, checked as the child process will check it before anything trains.

use anyhow::{Result, anyhow, bail};
use clap::Parser;

use crate::cli::{Cli, Command, TrainTask};
use crate::tasks::image::model::DEFAULT_MLP_CONFIG;
use crate::tasks::image::train::{cnn_args, load_experiment};
use crate::tasks::{charlm, word2vec};

/// `burnlab train <task> <args…>` as the user gave it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Setup {
    pub task: String,
    pub args: Vec<String>,
}

/// What a checked command line trains.
pub struct Checked {
    /// The experiment's `name` (the parent folder's default name).
    pub name: String,
    /// The task's kind, as the run record names it.
    pub kind: Kind,
    /// `seed`.
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Image,
    Charlm,
    Word2vec,
}

/// Flags a child gets from its parent; the user's own would clash with them.
const PARENT_FLAGS: [&str; 2] = ["--run-dir", "--resume"];

impl Setup {
    pub fn new(task: &str, args: Vec<String>) -> Result<Setup> {
        if let Some(f) =
            args.iter().find(|a| PARENT_FLAGS.contains(&a.split('=').next().unwrap_or(a)))
        {
            bail!(
                "{f} is set for each run by the sweep or cross-validation itself (use --out for the parent folder)"
            );
        }
        Ok(Setup { task: task.to_string(), args })
    }

    /// The child's arguments (after the program name) with `sets` last, so that they win.
    pub fn argv(&self, sets: &[(String, String)]) -> Vec<String> {
        let mut argv = vec!["train".to_string(), self.task.clone()];
        argv.extend(self.args.iter().cloned());
        for (k, v) in sets {
            argv.push("--set".into());
            argv.push(format!("{k}={v}"));
        }
        argv
    }

    /// Parses and loads the config the child would train with `sets`: a bad flag, an unknown
    /// key, a value of the wrong type or one the config rejects is an error here.
    pub fn check(&self, sets: &[(String, String)]) -> Result<Checked> {
        let argv = std::iter::once("burnlab".to_string()).chain(self.argv(sets));
        let cli = Cli::try_parse_from(argv).map_err(|e| {
            let text = e.render().to_string();
            anyhow!("`burnlab train {}` arguments: {}", self.task, text.trim())
        })?;
        let Command::Train(task) = cli.command else {
            bail!("not a train command");
        };
        Ok(match task {
            TrainTask::Mlp(args) => {
                let exp = load_experiment(&args, DEFAULT_MLP_CONFIG)?;
                Checked { name: exp.name, kind: Kind::Image, seed: exp.seed }
            }
            TrainTask::Cnn(args) => {
                let (args, default_config) = cnn_args(args);
                let exp = load_experiment(&args, default_config)?;
                Checked { name: exp.name, kind: Kind::Image, seed: exp.seed }
            }
            TrainTask::Rnn(args) => {
                let exp = charlm::load_experiment(&args)?;
                Checked { name: exp.name, kind: Kind::Charlm, seed: exp.seed }
            }
            TrainTask::Word2vec(args) => {
                let exp = word2vec::load_experiment(&args)?;
                Checked { name: exp.name, kind: Kind::Word2vec, seed: exp.seed }
            }
        })
    }

    /// Whether the user's arguments set `key` (by `--set key=…`).
    pub fn sets_key(&self, key: &str) -> bool {
        self.args
            .windows(2)
            .any(|w| w[0] == "--set" && w[1].split('=').next().map(str::trim) == Some(key))
            || self
                .args
                .iter()
                .any(|a| a.strip_prefix("--set=").is_some_and(|s| s.starts_with(key)))
    }

    /// Whether the user's arguments hold `flag` (`--threads` or `--threads=…`).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    }
}

/// Takes `--name VALUE` / `--name=VALUE` (each occurrence) and bare `switches` out of `args`:
/// the sweep's and cross-validation's own flags may come anywhere among the training flags.
pub fn take_flags(
    args: &mut Vec<String>,
    valued: &[&str],
    switches: &[&str],
) -> Result<Vec<(String, String)>> {
    let mut taken = Vec::new();
    let mut rest = Vec::new();
    let mut it = std::mem::take(args).into_iter();
    while let Some(a) = it.next() {
        if let Some((name, value)) = a.split_once('=')
            && valued.contains(&name)
        {
            taken.push((name.to_string(), value.to_string()));
        } else if valued.contains(&a.as_str()) {
            let value = it.next().ok_or_else(|| anyhow!("{a} needs a value"))?;
            taken.push((a, value));
        } else if switches.contains(&a.as_str()) {
            taken.push((a, String::new()));
        } else {
            rest.push(a);
        }
    }
    *args = rest;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn own_flags_are_taken_from_anywhere() {
        let mut args =
            strings(&["--epochs", "2", "--grid", "a=1,2", "--final", "--jobs=2", "--lr", "0.1"]);
        let taken = take_flags(&mut args, &["--grid", "--jobs"], &["--final"]).expect("flags");
        assert_eq!(args, strings(&["--epochs", "2", "--lr", "0.1"]));
        let t: Vec<(&str, &str)> = taken.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(t, [("--grid", "a=1,2"), ("--final", ""), ("--jobs", "2")]);
        let mut args = strings(&["--grid"]);
        assert!(take_flags(&mut args, &["--grid"], &[]).is_err());
    }

    #[test]
    fn the_child_command_line_ends_with_the_points_sets() {
        let s = Setup::new("mlp", strings(&["--epochs", "1"])).expect("setup");
        let argv = s.argv(&[("optim.lr".into(), "0.1".into())]);
        assert_eq!(argv, strings(&["train", "mlp", "--epochs", "1", "--set", "optim.lr=0.1"]));
        assert!(Setup::new("mlp", strings(&["--run-dir", "x"])).is_err());
    }

    #[test]
    fn checks_refuse_what_the_child_would() {
        let s = Setup::new("mlp", strings(&["--epochs", "1"])).expect("setup");
        let ok = s.check(&[("model.hidden".into(), "[16]".into())]).expect("valid");
        assert_eq!((ok.kind, ok.name.as_str()), (Kind::Image, "mlp-cifar10"));
        for (k, v, want) in [
            ("model.hiden", "[16]", "unknown field `hiden`"),
            ("optim.lr", "fast", "invalid type"),
            ("train.epochs", "0", "train.epochs must be at least 1"),
        ] {
            let e = format!("{:#}", s.check(&[(k.into(), v.into())]).err().expect(k));
            assert!(e.contains(want), "{k}={v}: {e}");
        }
        let bad = Setup::new("mlp", strings(&["--epoch", "1"])).expect("setup");
        let e = format!("{:#}", bad.check(&[]).err().expect("bad flag"));
        assert!(e.contains("--epoch"), "{e}");
        let w = Setup::new("word2vec", vec![]).expect("w2v").check(&[]).expect("w2v");
        assert_eq!(w.kind, Kind::Word2vec);
        let r =
            Setup::new("rnn", vec![]).expect("rnn").check(&[("model.cell".into(), "gru".into())]);
        assert_eq!(r.expect("rnn").kind, Kind::Charlm);
    }
}
