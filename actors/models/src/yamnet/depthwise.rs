//! YAMNet's own candle CPU ops: a direct 3×3 depthwise convolution and a fused bias + ReLU.
//!
//! candle's `conv2d` with `groups = C` splits the input into C single-channel convolutions and
//! concatenates them, which for YAMNet's up to 1024 channels costs far more than the arithmetic.
//! [`Depthwise3x3`] does the same sum in one pass over contiguous planes; [`BiasRelu`] replaces
//! two passes and two new tensors after every conv with one pass in place.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape};

/// 3×3 depthwise convolution with explicit zero padding (no bias, no activation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depthwise3x3 {
    pub stride: usize,
    /// Zero padding (top, left, bottom, right).
    pub pad: (usize, usize, usize, usize),
}

impl CustomOp2 for Depthwise3x3 {
    fn name(&self) -> &'static str {
        "depthwise3x3"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(input), CpuStorage::F32(kernel)) = (s1, s2) else {
            candle_core::bail!("depthwise3x3: only f32 is supported");
        };
        let (Some((i0, i1)), Some((k0, k1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("depthwise3x3: inputs must be contiguous");
        };
        let (n, c, h, w) = l1.shape().dims4()?;
        let (kc, one, kh, kw) = l2.shape().dims4()?;
        if kc != c || one != 1 || kh != 3 || kw != 3 {
            candle_core::bail!(
                "depthwise3x3: kernel {:?} does not fit input {:?}",
                l2.shape(),
                l1.shape()
            );
        }
        let (input, kernel) = (&input[i0..i1], &kernel[k0..k1]);
        let (pt, pl, pb, pr) = self.pad;
        let (ph, pw) = (h + pt + pb, w + pl + pr);
        if ph < 3 || pw < 3 || self.stride == 0 {
            candle_core::bail!("depthwise3x3: input {:?} too small", l1.shape());
        }
        let s = self.stride;
        let (ho, wo) = ((ph - 3) / s + 1, (pw - 3) / s + 1);

        let mut out = vec![0.0f32; n * c * ho * wo];
        // One zero-padded plane, reused: the inner loops then need no bounds checks.
        let mut padded = vec![0.0f32; ph * pw];
        for (plane, (src, dst)) in input
            .chunks_exact(h * w)
            .zip(out.chunks_exact_mut(ho * wo))
            .enumerate()
        {
            for (y, row) in src.chunks_exact(w).enumerate() {
                let start = (y + pt) * pw + pl;
                padded[start..start + w].copy_from_slice(row);
            }
            let k = &kernel[(plane % c) * 9..(plane % c) * 9 + 9];
            for (oy, out_row) in dst.chunks_exact_mut(wo).enumerate() {
                // Same summation order as the reference: taps (ky, kx) in row-major order.
                for ky in 0..3 {
                    let in_row = &padded[(oy * s + ky) * pw..(oy * s + ky + 1) * pw];
                    for kx in 0..3 {
                        let wk = k[ky * 3 + kx];
                        for (ox, o) in out_row.iter_mut().enumerate() {
                            *o += wk * in_row[ox * s + kx];
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}

/// Adds a per-channel bias and applies ReLU in place, in one pass over `[N, C, H, W]`: what
/// `broadcast_add(bias)?.relu()?` does with two passes and two new tensors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BiasRelu;

impl candle_core::InplaceOp2 for BiasRelu {
    fn name(&self) -> &'static str {
        "bias_relu"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(x), CpuStorage::F32(bias)) = (s1, s2) else {
            candle_core::bail!("bias_relu: only f32 is supported");
        };
        let (Some((x0, x1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("bias_relu: inputs must be contiguous");
        };
        let (_, c, h, w) = l1.shape().dims4()?;
        let bias = &bias[b0..b1];
        if bias.len() != c {
            candle_core::bail!("bias_relu: {} biases for {c} channels", bias.len());
        }
        for (plane, values) in x[x0..x1].chunks_exact_mut(h * w).enumerate() {
            let b = bias[plane % c];
            for v in values {
                *v = (*v + b).max(0.0);
            }
        }
        Ok(())
    }
}
