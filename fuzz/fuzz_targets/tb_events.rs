#![no_main]
burnlab::libfuzzer_target!("tb_events");
