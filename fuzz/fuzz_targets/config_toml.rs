#![no_main]
burnlab::libfuzzer_target!("config_toml");
