//! Process settings made once at start-up.

/// Restores SIGPIPE's default action. Rust's runtime ignores SIGPIPE, so a write to a closed
/// pipe returns an error that `println!` turns into a panic (`burnlab devices | head` exited
/// with a panic); with the default, the process ends quietly there, as Unix tools do. The
/// binary calls it for commands that only print (not for training, which must never die in the
/// middle of writing a checkpoint because a pager closed).
pub fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_DFL touches no memory of the program and
    // is safe at any time; no handler of ours is replaced (the training commands, which install
    // SIGINT/SIGTERM handlers, do not call this).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Sets the environment variable `key` to `value` (unless it is set already) while this process
/// has a single thread, so that no other thread can be reading or writing the environment (what
/// makes `std::env::set_var` unsafe). Returns whether it is set now. Only on Linux, where the
/// thread count can be read (`/proc/self/status`); elsewhere it sets nothing.
pub fn default_env_var(key: &str, value: &str) -> bool {
    if std::env::var_os(key).is_some() {
        return true;
    }
    if !single_threaded() {
        return false;
    }
    // SAFETY: this is the process's only thread (checked just above, and only this thread could
    // start another), so no other thread reads or writes the environment concurrently.
    unsafe { std::env::set_var(key, value) };
    true
}

fn single_threaded() -> bool {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim() == "1"))
            })
            .unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_var_set_already_is_kept_and_a_threaded_process_sets_none() {
        // The test harness runs tests on threads: never single-threaded here.
        assert!(!single_threaded());
        assert!(!default_env_var("BURNLAB_TEST_UNSET_VAR", "x"));
        assert!(std::env::var_os("BURNLAB_TEST_UNSET_VAR").is_none());
        assert!(default_env_var("PATH", "x"), "PATH is set already");
        assert_ne!(std::env::var("PATH").ok().as_deref(), Some("x"));
    }
}
