#![no_main]
burnlab::libfuzzer_target!("cifar_meta");
