#![no_main]
burnlab::libfuzzer_target!("run_record");
