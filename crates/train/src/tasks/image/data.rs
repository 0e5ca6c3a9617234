//! Where the images come from: CIFAR-10 (downloaded) or an image folder (`--data`).

use anyhow::Result;
use burnlab_data::{DataOptions, cifar, download::Download, load_image_data};

use crate::cli::DataArgs;

/// The CIFAR-10 download, with a mirror's URL and MD5 when `BURNLAB_CIFAR10_URL` and
/// `BURNLAB_CIFAR10_MD5` are set.
pub fn cifar_download() -> Download {
    let mut d = cifar::official_download();
    if let Ok(url) = std::env::var("BURNLAB_CIFAR10_URL") {
        d.url = url;
    }
    if let Ok(md5) = std::env::var("BURNLAB_CIFAR10_MD5") {
        d.checksum = burnlab_data::download::Checksum::Md5(md5.to_lowercase());
    }
    d
}

pub fn load_data(args: &DataArgs, opts: &DataOptions) -> Result<burnlab_data::ImageData> {
    let data = load_image_data(args.data.as_deref(), &args.cache, &cifar_download(), opts)?;
    tracing::info!(
        "data: {} ({} train, {} test images)",
        data.source,
        data.train.len(),
        data.test.len()
    );
    Ok(data)
}
