//! A graceful stop on SIGINT (Ctrl-C off a terminal) and SIGTERM (what `kill`, schedulers and
//! systemd send): the first signal asks the training loop to stop after its current step (the
//! run is then recorded as interrupted, with the command that resumes it, and the process exits
//! with 128 + the signal: 130 or 143); a second signal exits at once with that code.
//!
//! On a terminal the dashboard reads Ctrl-C as a key (raw mode) and stops the same way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

type Hook = Box<dyn Fn() + Send>;

/// What to run on the first signal, by registration id.
static HOOKS: Mutex<Vec<(u64, Hook)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Handles SIGINT and SIGTERM from now on (call once, early in `main`).
#[cfg(unix)]
pub fn install() -> std::io::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use signal_hook::consts::{SIGINT, SIGTERM};

    let seen = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it: the second
        // signal exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&seen))?;
        signal_hook::flag::register(sig, Arc::clone(&seen))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                eprintln!(
                    "\n{name}: stopping after the current step (send it again to exit at once)"
                );
                stop_all();
            }
        }
    })?;
    Ok(())
}

#[cfg(not(unix))]
pub fn install() -> std::io::Result<()> {
    Ok(())
}

fn stop_all() {
    let hooks = HOOKS.lock().unwrap_or_else(|p| p.into_inner());
    for (_, hook) in hooks.iter() {
        hook();
    }
}

/// The signal that asked this process to stop, if one did.
pub fn received() -> Option<i32> {
    Some(RECEIVED.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// The exit status a stopped process ends with: 128 + the signal.
pub fn exit_code() -> Option<u8> {
    received().and_then(|s| u8::try_from(128 + s).ok())
}

/// Runs `stop` on the first signal while the returned guard lives (at once, if a signal has
/// already come).
#[must_use = "the hook is removed when the guard is dropped"]
pub fn on_stop(stop: impl Fn() + Send + 'static) -> OnStop {
    if received().is_some() {
        stop();
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    HOOKS.lock().unwrap_or_else(|p| p.into_inner()).push((id, Box::new(stop)));
    OnStop(id)
}

/// Removes its hook when dropped.
pub struct OnStop(u64);

impl Drop for OnStop {
    fn drop(&mut self) {
        HOOKS.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn hooks_run_while_registered() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let guard = on_stop(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        stop_all();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        drop(guard);
        stop_all();
        assert_eq!(hits.load(Ordering::SeqCst), 1, "a dropped guard's hook no longer runs");
    }
}
