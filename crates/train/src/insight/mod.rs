//! What a run left behind, made readable: TensorBoard event files (writer, reader and the
//! burn-train logger that feeds them), plots, the `report` command and the `runs` table.

pub mod plot;
pub mod report;
pub mod runs;
pub mod tb;
pub mod tb_logger;
