#![no_main]
burnlab::libfuzzer_target!("word_vectors");
