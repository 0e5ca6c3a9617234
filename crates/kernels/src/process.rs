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
