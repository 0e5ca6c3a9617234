//! One writer per run folder: a process that trains or resumes in a folder holds an exclusive
//! OS lock on its `pid` file (which holds its process id) until it exits. A second process is
//! refused, naming the holder; a lock whose process died is released by the OS, and the next
//! process takes the folder over with a note.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::PID_FILE;

/// What a run writes into a new folder before its record: the lock, the vocabulary (word2vec,
/// char-LM) and the config (with its temporary name).
const BEFORE_THE_RECORD: [&str; 5] =
    [PID_FILE, "vocab.txt", "chars.json", "config.toml", "config.partial"];

/// The held lock of a run folder; released (and the pid cleared) when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

/// Why a folder could not be locked.
#[derive(Debug)]
pub enum Refused {
    /// Another live process holds it (its pid, when the file says).
    Busy(Option<u32>),
    Failed(anyhow::Error),
}

impl RunLock {
    /// Locks `dir` (an existing folder) for this process, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        Self::try_acquire(dir).map_err(|r| match r {
            Refused::Busy(pid) => anyhow::anyhow!(
                "{} is in use: {} is training in it (lock file {}); wait for it to finish or stop it",
                dir.display(),
                pid.map_or("another burnlab process".to_string(), |p| format!("process {p}")),
                dir.join(PID_FILE).display()
            ),
            Refused::Failed(e) => e,
        })
    }

    pub(super) fn try_acquire(dir: &Path) -> std::result::Result<RunLock, Refused> {
        let path = dir.join(PID_FILE);
        let fail = |e: std::io::Error| {
            Refused::Failed(anyhow::Error::new(e).context(format!("locking {}", path.display())))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        let mut before = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let _ = file.read_to_string(&mut before);
                return Err(Refused::Busy(before.trim().parse().ok()));
            }
            Err(TryLockError::Error(e)) => return Err(fail(e)),
        }
        file.read_to_string(&mut before).map_err(fail)?;
        // A process that exits cleanly clears the file: a pid left in it is a dead holder's.
        if let Ok(pid) = before.trim().parse::<u32>()
            && pid != std::process::id()
        {
            println!(
                "note: {} was locked by process {pid}, which is no longer running; taking it over",
                dir.display()
            );
        }
        file.set_len(0).map_err(fail)?;
        file.rewind().map_err(fail)?;
        write!(file, "{}", std::process::id()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(RunLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Clear the pid, then unlock (closing the file does that too). The file stays: removing
        // it would let a process that opened it before the removal lock a file no one else sees.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The lock of a run folder to resume, taken before anything in it is read: a run still
/// starting (locked, no record yet) is refused as in use, not as "no run". A folder that never
/// held a run is refused by the record reader, without leaving a lock file in it.
pub fn lock_to_resume(dir: &Path) -> Result<RunLock> {
    if !dir.join(PID_FILE).is_file() {
        super::record::read(dir)?;
    }
    RunLock::acquire(dir)
}

/// The locked run folder of a training process: `resumed` (an existing run, already locked),
/// else a new one as [`new_run_dir`] makes it.
pub fn claim_run_dir(
    resumed: Option<(PathBuf, RunLock)>,
    explicit: Option<&Path>,
    name: &str,
) -> Result<(PathBuf, RunLock)> {
    match resumed {
        Some(held) => Ok(held),
        None => new_run_dir(explicit, name),
    }
}

/// Makes and locks a run folder: `explicit` (which must be empty), else `runs/<name>`, `-2`,
/// `-3`, … the first that is free (two processes starting together get different folders).
pub fn new_run_dir(explicit: Option<&Path>, name: &str) -> Result<(PathBuf, RunLock)> {
    new_run_dir_in(Path::new("runs"), explicit, name)
}

fn new_run_dir_in(root: &Path, explicit: Option<&Path>, name: &str) -> Result<(PathBuf, RunLock)> {
    // A folder holds a run once anything but what a run writes before its record is in it: a
    // process killed between making the folder and writing the record leaves one that a new
    // run may take (there is nothing to resume in it).
    let holds_a_run = |p: &Path| {
        std::fs::read_dir(p)
            .map(|d| {
                d.filter_map(|e| e.ok()).any(|e| {
                    let name = e.file_name();
                    let temporary = name.to_string_lossy().ends_with(".partial");
                    !temporary && !BEFORE_THE_RECORD.iter().any(|f| name == *f)
                })
            })
            .unwrap_or(true)
    };
    let claim = |dir: &Path| -> Result<Option<RunLock>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        match RunLock::try_acquire(dir) {
            // Locked, and nothing but the lock in it: ours.
            Ok(lock) if !holds_a_run(dir) => Ok(Some(lock)),
            Ok(_) | Err(Refused::Busy(_)) => Ok(None),
            Err(Refused::Failed(e)) => Err(e),
        }
    };
    if let Some(p) = explicit {
        return match claim(p)? {
            Some(lock) => Ok((p.to_path_buf(), lock)),
            None => bail!(
                "run folder {} already holds a run: pass --resume to continue it, or choose another --run-dir",
                p.display()
            ),
        };
    }
    let base = root.join(name);
    let mut dir = base.clone();
    for k in 2.. {
        let taken = dir.exists() && holds_a_run(&dir);
        if !taken && let Some(lock) = claim(&dir)? {
            return Ok((dir, lock));
        }
        dir = PathBuf::from(format!("{}-{k}", base.display()));
    }
    unreachable!("the folder numbers are unbounded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let tmp = tempfile::tempdir().expect("tmp");
        let lock = RunLock::acquire(tmp.path()).expect("first");
        let pid = std::fs::read_to_string(tmp.path().join(PID_FILE)).expect("pid");
        assert_eq!(pid, std::process::id().to_string());
        // A second open file description, as another process would have.
        let e = RunLock::acquire(tmp.path()).expect_err("second").to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())) && e.contains("in use"),
            "{e}"
        );
        drop(lock);
        assert_eq!(std::fs::read_to_string(tmp.path().join(PID_FILE)).expect("pid"), "");
        let again = RunLock::acquire(tmp.path()).expect("free again");
        drop(again);
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over() {
        let tmp = tempfile::tempdir().expect("tmp");
        // What a killed process leaves: its pid in an unlocked file.
        std::fs::write(tmp.path().join(PID_FILE), "4194304999").expect("write");
        let _lock = RunLock::acquire(tmp.path()).expect("taken over");
        let pid = std::fs::read_to_string(tmp.path().join(PID_FILE)).expect("pid");
        assert_eq!(pid, std::process::id().to_string());
    }

    #[test]
    fn new_folders_are_numbered_past_locked_or_used_ones() {
        let tmp = tempfile::tempdir().expect("tmp");
        let explicit = tmp.path().join("mine");
        let (dir, _held) = new_run_dir_in(tmp.path(), Some(&explicit), "x").expect("explicit");
        assert_eq!(dir, explicit);
        // Held by a live writer, though still empty: refused.
        let e = new_run_dir_in(tmp.path(), Some(&explicit), "x").expect_err("held").to_string();
        assert!(e.contains("already holds a run"), "{e}");
        // What a process killed before its record leaves is no run: the folder is taken again.
        let (early, lock) =
            new_run_dir_in(tmp.path(), Some(&tmp.path().join("early")), "x").expect("early");
        std::fs::write(early.join("config.toml"), "name = \"x\"").expect("write");
        std::fs::write(early.join("vocab.txt"), "a 1\n").expect("write");
        std::fs::write(early.join("run.partial"), "{\"ta").expect("write");
        drop(lock);
        let (again, _lock) = new_run_dir_in(tmp.path(), Some(&early), "x").expect("taken again");
        assert_eq!(again, early);
        // runs/x holds a run, runs/x-2 is held by another writer: the next free one is x-3.
        let root = tmp.path().join("runs");
        std::fs::create_dir_all(root.join("x")).expect("mkdir");
        std::fs::write(root.join("x/run.json"), "{}").expect("write");
        let (x2, _other) = new_run_dir_in(&root, None, "x").expect("x-2");
        assert_eq!(x2, root.join("x-2"));
        let (x3, _mine) = new_run_dir_in(&root, None, "x").expect("x-3");
        assert_eq!(x3, root.join("x-3"));
    }
}
