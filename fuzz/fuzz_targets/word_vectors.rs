#![no_main]

use std::sync::LazyLock;

use burnlab::fuzz::{Scratch, Target, one, target};
use libfuzzer_sys::fuzz_target;

static TARGET: LazyLock<&Target> = LazyLock::new(|| target("word_vectors").expect("a target of burnlab::fuzz"));
static SCRATCH: LazyLock<Scratch> = LazyLock::new(|| Scratch::new("word_vectors").expect("scratch folder"));

fuzz_target!(|data: &[u8]| one(&TARGET, &SCRATCH, data));
