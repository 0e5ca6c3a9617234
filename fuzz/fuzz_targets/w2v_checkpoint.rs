#![no_main]
burnlab::libfuzzer_target!("w2v_checkpoint");
