#![no_main]
burnlab::libfuzzer_target!("image_folder");
