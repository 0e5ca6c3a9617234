#![no_main]
burnlab::libfuzzer_target!("vocab");
