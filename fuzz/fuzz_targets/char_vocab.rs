#![no_main]
burnlab::libfuzzer_target!("char_vocab");
