//! The reference model: a small MLP with fixed pseudo-random weights, and KServe v2 tensors.
//!
//! 4 inputs → 16 hidden (ReLU) → 3 outputs (softmax), real matrix arithmetic, batch
//! dimension honoured. Weights come from a fixed-seed generator, so a known input always
//! gives the same output on every machine.

use serde::{Deserialize, Serialize};

pub const INPUTS: usize = 4;
const HIDDEN: usize = 16;
pub const OUTPUTS: usize = 3;

#[derive(Debug)]
pub struct Mlp {
    w1: Vec<f32>, // HIDDEN × INPUTS
    b1: Vec<f32>,
    w2: Vec<f32>, // OUTPUTS × HIDDEN
    b2: Vec<f32>,
}

impl Default for Mlp {
    fn default() -> Self {
        // A 64-bit LCG (Knuth's MMIX constants): fixed, portable weights in [-1, 1).
        let mut state: u64 = 0x005e_ed0f_9e7f_a7e5;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let mut take = |n: usize| (0..n).map(|_| next()).collect::<Vec<f32>>();
        Self {
            w1: take(HIDDEN * INPUTS),
            b1: take(HIDDEN),
            w2: take(OUTPUTS * HIDDEN),
            b2: take(OUTPUTS),
        }
    }
}

impl Mlp {
    /// Class probabilities for each row of a `batch × INPUTS` matrix.
    pub fn forward(&self, batch: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch.len() / INPUTS * OUTPUTS);
        for row in batch.chunks_exact(INPUTS) {
            let hidden: Vec<f32> = (0..HIDDEN)
                .map(|h| {
                    let z: f32 = self.w1[h * INPUTS..(h + 1) * INPUTS]
                        .iter()
                        .zip(row)
                        .map(|(w, x)| w * x)
                        .sum();
                    (z + self.b1[h]).max(0.0)
                })
                .collect();
            let logits: Vec<f32> = (0..OUTPUTS)
                .map(|o| {
                    self.w2[o * HIDDEN..(o + 1) * HIDDEN]
                        .iter()
                        .zip(&hidden)
                        .map(|(w, x)| w * x)
                        .sum::<f32>()
                        + self.b2[o]
                })
                .collect();
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f32 = exp.iter().sum();
            out.extend(exp.iter().map(|e| e / total));
        }
        out
    }
}

/// A KServe v2 inference request.
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    pub id: Option<String>,
    pub inputs: Vec<InputTensor>,
}

#[derive(Debug, Deserialize)]
pub struct InputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct InferResponse {
    pub model_name: String,
    pub id: Option<String>,
    pub outputs: Vec<OutputTensor>,
}

#[derive(Debug, Serialize)]
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: &'static str,
    pub data: Vec<f32>,
}

/// Checks the tensor and returns the batch as `f32`, or a message for a 400.
pub fn decode(request: &InferRequest) -> Result<(usize, Vec<f32>), String> {
    let [input] = request.inputs.as_slice() else {
        return Err(format!(
            "expected exactly 1 input tensor, got {}",
            request.inputs.len()
        ));
    };
    let batch = match input.shape.as_slice() {
        [b, w] if *w == INPUTS as i64 && *b > 0 => {
            usize::try_from(*b).map_err(|_| "bad batch size".to_owned())?
        }
        other => {
            return Err(format!(
                "input `{}` must have shape [batch, {INPUTS}], got {other:?}",
                input.name
            ));
        }
    };
    let values = flatten(&input.data);
    let data: Vec<f32> = match input.datatype.as_str() {
        "FP32" => values
            .iter()
            .map(|v| v.as_f64().map(|f| f as f32))
            .collect::<Option<_>>(),
        "INT64" => values
            .iter()
            .map(|v| v.as_i64().map(|i| i as f32))
            .collect::<Option<_>>(),
        other => return Err(format!("unsupported datatype `{other}`; use FP32 or INT64")),
    }
    .ok_or_else(|| {
        format!(
            "input `{}` has values that are not {}",
            input.name, input.datatype
        )
    })?;
    if data.len() != batch * INPUTS {
        return Err(format!(
            "input `{}` has {} values; shape {:?} needs {}",
            input.name,
            data.len(),
            input.shape,
            batch * INPUTS
        ));
    }
    Ok((batch, data))
}

/// KServe allows nested or flat `data`.
fn flatten(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_input_known_output() {
        let mlp = Mlp::default();
        let out = mlp.forward(&[0.1, 0.2, 0.3, 0.4, 1.0, -1.0, 0.5, 0.0]);
        assert_eq!(out.len(), 2 * OUTPUTS);
        for row in out.chunks(OUTPUTS) {
            assert!(
                (row.iter().sum::<f32>() - 1.0).abs() < 1e-5,
                "probabilities sum to 1: {row:?}"
            );
        }
        // Fixed weights: the same input always gives the same output, rows are independent.
        assert_eq!(mlp.forward(&[0.1, 0.2, 0.3, 0.4]), out[..OUTPUTS]);
        assert_ne!(out[..OUTPUTS], out[OUTPUTS..]);
        insta::assert_debug_snapshot!("mlp_output", out);
    }

    #[test]
    fn bad_tensors_are_explained() {
        let req = |shape: &str, dtype: &str, data: &str| -> InferRequest {
            serde_json::from_str(&format!(r#"{{"inputs":[{{"name":"input","shape":{shape},"datatype":"{dtype}","data":{data}}}]}}"#)).unwrap()
        };
        assert!(decode(&req("[1,4]", "FP32", "[1,2,3,4]")).is_ok());
        assert!(decode(&req("[2,4]", "INT64", "[[1,2,3,4],[5,6,7,8]]")).is_ok());
        assert_eq!(
            decode(&req("[1,3]", "FP32", "[1,2,3]")).unwrap_err(),
            "input `input` must have shape [batch, 4], got [1, 3]"
        );
        assert_eq!(
            decode(&req("[2,4]", "FP32", "[1,2,3,4]")).unwrap_err(),
            "input `input` has 4 values; shape [2, 4] needs 8"
        );
        assert_eq!(
            decode(&req("[1,4]", "BYTES", "[1,2,3,4]")).unwrap_err(),
            "unsupported datatype `BYTES`; use FP32 or INT64"
        );
        assert_eq!(
            decode(&req("[1,4]", "INT64", "[1.5,2,3,4]")).unwrap_err(),
            "input `input` has values that are not INT64"
        );
    }
}
