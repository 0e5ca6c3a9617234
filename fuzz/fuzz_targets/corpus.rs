#![no_main]
burnlab::libfuzzer_target!("corpus");
