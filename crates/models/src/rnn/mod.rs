//! Recurrent networks: the three cells (one file each), the layer stack that runs them over a
//! sequence, and the character language model built on it.

pub mod charlm;
pub mod gru_cell;
pub mod lstm_cell;
pub mod recurrent;
pub mod rnn_cell;
