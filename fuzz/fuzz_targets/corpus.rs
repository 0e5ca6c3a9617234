#![no_main]

use std::sync::LazyLock;

use burnlab::fuzz::{Scratch, Target, one, target};
use libfuzzer_sys::fuzz_target;

static TARGET: LazyLock<&Target> = LazyLock::new(|| target("corpus").expect("a target of burnlab::fuzz"));
static SCRATCH: LazyLock<Scratch> = LazyLock::new(|| Scratch::new("corpus").expect("scratch folder"));

fuzz_target!(|data: &[u8]| one(&TARGET, &SCRATCH, data));
