//! Video frames as plain pixel buffers, so that the core never depends on OpenCV.

use std::sync::Arc;

use thiserror::Error;

/// Why a pixel buffer cannot be a frame.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {width}x{height} is empty")]
    Empty { width: u32, height: u32 },
    #[error("frame {width}x{height} needs {expected} bytes of BGR, got {actual}")]
    WrongLength {
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
}

/// An 8-bit BGR image, row-major, 3 bytes per pixel, no row padding.
///
/// The pixels are shared (`Arc`) because one frame travels to several consumers
/// (features, sync buffer, snapshot) and must not be copied for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    bgr: Arc<[u8]>,
}

impl Frame {
    /// Wraps a BGR buffer, checking that its length matches the size.
    pub fn new(width: u32, height: u32, bgr: Vec<u8>) -> Result<Self, FrameError> {
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        let expected = width as usize * height as usize * 3;
        if bgr.len() != expected {
            return Err(FrameError::WrongLength {
                width,
                height,
                expected,
                actual: bgr.len(),
            });
        }
        Ok(Self {
            width,
            height,
            bgr: bgr.into(),
        })
    }

    /// A frame of one colour, given as (blue, green, red).
    pub fn filled(width: u32, height: u32, bgr: [u8; 3]) -> Result<Self, FrameError> {
        let pixels = width as usize * height as usize;
        Self::new(width, height, bgr.repeat(pixels))
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The BGR bytes, `width * height * 3` of them.
    pub fn bgr(&self) -> &[u8] {
        &self.bgr
    }

    /// The luma plane (ITU-R BT.601 weights, as OpenCV's `COLOR_BGR2GRAY`).
    pub fn to_gray(&self) -> GrayImage {
        let data = self
            .bgr
            .chunks_exact(3)
            .map(|p| {
                let (b, g, r) = (p[0] as u32, p[1] as u32, p[2] as u32);
                // Fixed-point 0.114 B + 0.587 G + 0.299 R, rounded.
                ((b * 1868 + g * 9617 + r * 4899 + 8192) >> 14) as u8
            })
            .collect();
        GrayImage {
            width: self.width,
            height: self.height,
            data,
        }
    }
}

/// An 8-bit single-channel image, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_buffer_of_the_wrong_length() {
        assert_eq!(
            Frame::new(2, 2, vec![0; 11]),
            Err(FrameError::WrongLength {
                width: 2,
                height: 2,
                expected: 12,
                actual: 11
            })
        );
        assert!(matches!(
            Frame::new(0, 5, vec![]),
            Err(FrameError::Empty { .. })
        ));
    }

    #[test]
    fn gray_uses_bt601_weights() {
        let white = Frame::filled(4, 3, [255, 255, 255]).unwrap().to_gray();
        assert!(white.data.iter().all(|&v| v == 255));
        let red = Frame::filled(1, 1, [0, 0, 255]).unwrap().to_gray();
        assert_eq!(red.data, vec![76]); // 0.299 * 255
        let blue = Frame::filled(1, 1, [255, 0, 0]).unwrap().to_gray();
        assert_eq!(blue.data, vec![29]); // 0.114 * 255
    }
}
