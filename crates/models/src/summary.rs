//! Layer tables (`burnlab summary`): output shape, trainable parameters and receptive field of
//! each layer, traced through the network the way the shapes flow.
//!
//! Receptive field: the side of the input square that can influence one output unit. A k×k
//! layer widens it by (k − 1)·j, where j, the "jump", is the product of the strides before it
//! (Araujo et al., "Computing receptive fields of CNNs", Distill 2019). Padding does not change
//! it, so it can exceed the image; after global pooling or a fully connected layer every unit
//! sees the whole image.

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    pub name: String,
    pub op: String,
    /// Output shape without the batch axis: [channels, height, width] or [features].
    pub shape: Vec<usize>,
    /// Trainable parameters of this layer (weights, biases, BatchNorm scale and shift).
    pub params: usize,
    /// Receptive field side; `None` when the unit sees the whole input.
    pub receptive_field: Option<usize>,
}

/// Traces shapes and receptive fields through a network, layer by layer.
#[derive(Clone, Debug)]
pub struct Summary {
    rows: Vec<LayerRow>,
    /// Spatial shape [channels, height, width] until the first flatten.
    chw: [usize; 3],
    features: Option<usize>,
    rf: Option<usize>,
    jump: usize,
}

impl Summary {
    pub fn new(input: [usize; 3]) -> Self {
        let mut s = Self { rows: Vec::new(), chw: input, features: None, rf: Some(1), jump: 1 };
        s.push("input", String::new(), 0);
        s
    }

    fn push(&mut self, name: &str, op: String, params: usize) {
        let shape = match self.features {
            Some(f) => vec![f],
            None => self.chw.to_vec(),
        };
        self.rows.push(LayerRow {
            name: name.to_string(),
            op,
            shape,
            params,
            receptive_field: self.rf,
        });
    }

    fn window(&mut self, kernel: usize, stride: usize, padding: usize) {
        let [_, h, w] = self.chw;
        let out = |n: usize| (n + 2 * padding).saturating_sub(kernel) / stride + 1;
        self.chw = [self.chw[0], out(h), out(w)];
        self.rf = self.rf.map(|r| r + (kernel - 1) * self.jump);
        self.jump *= stride;
    }

    /// A k×k convolution (with what follows it fused into `extra`, e.g. "bn + relu").
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        params: usize,
        extra: &str,
    ) {
        self.window(kernel, stride, padding);
        self.chw[0] = c_out;
        let extra = if extra.is_empty() { String::new() } else { format!(" + {extra}") };
        self.push(name, format!("conv{kernel}x{kernel}/{stride}{extra}"), params);
    }

    /// k×k max pooling with stride `stride`, no padding.
    pub fn max_pool(&mut self, name: &str, kernel: usize, stride: usize) {
        self.window(kernel, stride, 0);
        self.push(name, format!("maxpool{kernel}x{kernel}/{stride}"), 0);
    }

    /// k×k max pooling with stride `stride` and `padding` on each side (torchvision's stem
    /// pool: 3×3/2, padding 1).
    pub fn max_pool_padded(&mut self, name: &str, kernel: usize, stride: usize, padding: usize) {
        self.window(kernel, stride, padding);
        self.push(name, format!("maxpool{kernel}x{kernel}/{stride}"), 0);
    }

    /// A row that keeps the shape (a residual shortcut and sum, an activation).
    pub fn same(&mut self, name: &str, op: &str, params: usize) {
        self.push(name, op.to_string(), params);
    }

    /// Pool each channel to one value.
    pub fn global_pool(&mut self, name: &str, op: &str) {
        self.chw = [self.chw[0], 1, 1];
        self.rf = None;
        self.push(name, op.to_string(), 0);
    }

    /// Fully connected layer (flattens first).
    pub fn linear(&mut self, name: &str, out: usize, params: usize, extra: &str) {
        self.features = Some(out);
        self.rf = None;
        let extra = if extra.is_empty() { String::new() } else { format!(" + {extra}") };
        self.push(name, format!("linear{extra}"), params);
    }

    pub fn rows(&self) -> &[LayerRow] {
        &self.rows
    }

    pub fn into_rows(self) -> Vec<LayerRow> {
        self.rows
    }

    pub fn total_params(&self) -> usize {
        self.rows.iter().map(|r| r.params).sum()
    }
}

/// Add a Burn `Linear` layer (weights [in, out] and optional bias) to `s`.
pub fn linear(s: &mut Summary, name: &str, layer: &burn::nn::Linear, extra: &str) {
    let [_, out] = layer.weight.dims();
    let params = layer.weight.shape().num_elements()
        + layer.bias.as_ref().map_or(0, |b| b.shape().num_elements());
    s.linear(name, out, params, extra);
}

/// Add a Burn `Conv2d` (square kernel, symmetric padding) to `s`.
pub fn conv2d(
    s: &mut Summary,
    name: &str,
    layer: &burn::nn::conv::Conv2d,
    padding: usize,
    extra: &str,
) {
    let [c_out, _, k, _] = layer.weight.dims();
    let params = layer.weight.shape().num_elements()
        + layer.bias.as_ref().map_or(0, |b| b.shape().num_elements());
    s.conv(name, c_out, k, layer.stride[0], padding, params, extra);
}

/// Add a bias-free Burn `Conv2d` (square kernel, padding k/2) followed by a layer with
/// `extra_params` parameters (a BatchNorm's scale and shift) to `s`.
pub fn conv2d_params(
    s: &mut Summary,
    name: &str,
    layer: &burn::nn::conv::Conv2d,
    extra_params: usize,
    extra: &str,
) {
    let [c_out, _, k, _] = layer.weight.dims();
    let params = layer.weight.shape().num_elements() + extra_params;
    s.conv(name, c_out, k, layer.stride[0], k / 2, params, extra);
}

/// Render rows as an aligned text table with a total line.
pub fn format_table(rows: &[LayerRow]) -> String {
    let shape = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let rf = |r: Option<usize>| r.map_or("all".to_string(), |r| format!("{r}x{r}"));
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    let op_w = rows.iter().map(|r| r.op.len()).max().unwrap_or(9).max(9);
    let mut out = format!(
        "{:<name_w$}  {:<op_w$}  {:>10}  {:>11}  {:>15}\n",
        "layer", "operation", "output", "params", "receptive field"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<name_w$}  {:<op_w$}  {:>10}  {:>11}  {:>15}\n",
            r.name,
            r.op,
            shape(&r.shape),
            group_thousands(r.params),
            rf(r.receptive_field)
        ));
    }
    let total: usize = rows.iter().map(|r| r.params).sum();
    let last = rows.last().map(|r| shape(&r.shape)).unwrap_or_default();
    out.push_str(&format!(
        "total: {} trainable parameters, output {last}\n",
        group_thousands(total)
    ));
    out
}

/// 1234567 → "1,234,567".
pub fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receptive_field_arithmetic() {
        let _rng = crate::device_rng_lock();
        // Two 3x3/1 convs see 5x5; a 2x2/2 pool then doubles the jump, so a third 3x3 adds 4.
        let mut s = Summary::new([1, 8, 8]);
        s.conv("a", 4, 3, 1, 1, 40, "");
        s.conv("b", 4, 3, 1, 1, 148, "relu");
        s.max_pool("p", 2, 2);
        s.conv("c", 2, 3, 1, 0, 74, "");
        let rows = s.rows();
        assert_eq!(
            rows.iter().map(|r| r.receptive_field).collect::<Vec<_>>(),
            vec![Some(1), Some(3), Some(5), Some(6), Some(10)]
        );
        assert_eq!(rows[4].shape, vec![2, 2, 2]);
        assert_eq!(rows[2].op, "conv3x3/1 + relu");
        s.global_pool("g", "avgpool");
        s.linear("fc", 3, 9, "");
        assert_eq!(s.rows()[6].shape, vec![3]);
        assert_eq!(s.rows()[6].receptive_field, None);
        assert_eq!(s.total_params(), 40 + 148 + 74 + 9);
    }

    #[test]
    fn thousands_and_table() {
        let _rng = crate::device_rng_lock();
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(62_006), "62,006");
        assert_eq!(group_thousands(6_573_120), "6,573,120");
        let mut s = Summary::new([3, 4, 4]);
        s.linear("fc", 2, 98, "");
        let t = format_table(s.rows());
        assert!(t.ends_with("total: 98 trainable parameters, output 2\n"), "{t}");
        assert!(t.contains("3x4x4"));
    }
}
