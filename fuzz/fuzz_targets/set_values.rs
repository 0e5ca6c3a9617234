#![no_main]
burnlab::libfuzzer_target!("set_values");
