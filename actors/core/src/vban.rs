//! VBAN (VB-Audio's network audio protocol): parsing of one UDP packet, and loss tracking from
//! the frame counter. Pure: bytes in, numbers out; the socket lives in `cav-actors`.
//!
//! A VBAN packet is a 28-byte little-endian header followed by the payload:
//!
//! ```text
//!  0..4   "VBAN"
//!  4      sub-protocol (bits 5–7: 0x00 audio, 0x20 serial, 0x40 text, 0x60 service)
//!         | sample-rate index (bits 0–4, into SAMPLE_RATES)
//!  5      samples per frame − 1      (1..=256 samples per channel)
//!  6      channels − 1               (1..=256 channels)
//!  7      codec (bits 4–7: 0x00 PCM) | data type (bits 0–2, see SampleFormat)
//!  8..24  stream name, ASCII, NUL-padded
//!  24..28 frame counter, u32
//!  28..   interleaved samples, little-endian
//! ```
//!
//! [`parse`] never panics, whatever the bytes: everything a sender can get wrong is a
//! [`VbanError`]. Packets of the other sub-protocols (serial/MIDI, text commands, service pings)
//! are legitimate VBAN, but not audio: they come back as [`VbanError::NotAudio`] so that a
//! receiver can tell them apart from garbage.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// Length of the header in bytes.
pub const HEADER_LEN: usize = 28;
/// The port VBAN uses unless told otherwise.
pub const DEFAULT_PORT: u16 = 6980;
/// The largest packet the specification allows (header + 1436 bytes of payload). Receivers
/// should still read bigger datagrams whole, so that an oversized one is reported rather than
/// silently cut.
pub const MAX_PACKET_LEN: usize = 1464;
/// Longest stream name, in bytes.
pub const STREAM_NAME_LEN: usize = 16;
/// Sample rates by their index in byte 4.
pub const SAMPLE_RATES: [u32; 21] = [
    6000, 12000, 24000, 48000, 96000, 192000, 384000, 8000, 16000, 32000, 64000, 128000, 256000,
    512000, 11025, 22050, 44100, 88200, 176400, 352800, 705600,
];

const MAGIC: &[u8; 4] = b"VBAN";

/// The sub-protocol in the top three bits of byte 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubProtocol {
    Audio,
    /// Serial data, e.g. MIDI.
    Serial,
    /// Text commands (Voicemeeter remote control).
    Text,
    /// Service packets: identification pings, chat, real-time parameter dumps.
    Service,
    /// 0x80..=0xE0: reserved or user-defined; the value is the raw top bits.
    Other(u8),
}

impl SubProtocol {
    pub fn from_byte(byte4: u8) -> Self {
        match byte4 & 0xE0 {
            0x00 => Self::Audio,
            0x20 => Self::Serial,
            0x40 => Self::Text,
            0x60 => Self::Service,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for SubProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Audio => f.write_str("audio"),
            Self::Serial => f.write_str("serial"),
            Self::Text => f.write_str("text"),
            Self::Service => f.write_str("service"),
            Self::Other(v) => write!(f, "sub-protocol 0x{v:02x}"),
        }
    }
}

/// The data type in the low three bits of byte 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleFormat {
    /// `VBAN_DATATYPE_BYTE8`: 8-bit unsigned, 128 is silence (the specification's "0 to 255";
    /// PipeWire's VBAN module reads it as `U8` too).
    U8,
    I16,
    /// 24-bit signed, three bytes little-endian.
    I24,
    I32,
    F32,
    F64,
    /// `VBAN_DATATYPE_12BITS`: defined by the specification but used by no known sender;
    /// not supported.
    Bits12,
    /// `VBAN_DATATYPE_10BITS`: likewise not supported.
    Bits10,
}

impl SampleFormat {
    pub fn from_byte(byte7: u8) -> Self {
        match byte7 & 0x07 {
            0 => Self::U8,
            1 => Self::I16,
            2 => Self::I24,
            3 => Self::I32,
            4 => Self::F32,
            5 => Self::F64,
            6 => Self::Bits12,
            _ => Self::Bits10,
        }
    }

    /// Bytes per sample, for the formats this parser decodes.
    pub fn bytes(self) -> Option<usize> {
        match self {
            Self::U8 => Some(1),
            Self::I16 => Some(2),
            Self::I24 => Some(3),
            Self::I32 | Self::F32 => Some(4),
            Self::F64 => Some(8),
            Self::Bits12 | Self::Bits10 => None,
        }
    }

    /// A short name for logs and the API: `uint8`, `int16`, …, `float64`.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I16 => "int16",
            Self::I24 => "int24",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::F64 => "float64",
            Self::Bits12 => "12-bit",
            Self::Bits10 => "10-bit",
        }
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a datagram is not a usable VBAN audio packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VbanError {
    #[error("{len} bytes is too short for a VBAN header ({HEADER_LEN} bytes)")]
    TooShort { len: usize },
    #[error("not a VBAN packet (no \"VBAN\" magic)")]
    BadMagic,
    /// A valid VBAN packet of another sub-protocol (serial, text, service).
    #[error("VBAN {sub_protocol} packet, not audio")]
    NotAudio { sub_protocol: SubProtocol },
    #[error("sample-rate index {index} is not in the VBAN table (0..=20)")]
    BadSampleRate { index: u8 },
    #[error("VBAN codec 0x{codec:02x} is not supported (only PCM, 0x00)")]
    UnsupportedCodec { codec: u8 },
    #[error("VBAN sample format {format} is not supported")]
    UnsupportedFormat { format: SampleFormat },
    #[error("payload is {actual} bytes but the header announces {expected} (truncated or padded)")]
    PayloadLength { expected: usize, actual: usize },
}

/// One parsed audio packet, borrowing its payload from the datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct VbanPacket<'a> {
    /// The index in byte 4 (see [`SAMPLE_RATES`]).
    pub sample_rate_index: u8,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Samples per channel in this packet, 1..=256.
    pub samples_per_frame: usize,
    /// 1..=256.
    pub channels: usize,
    pub format: SampleFormat,
    /// The stream name up to its first NUL; bytes that are not UTF-8 read as U+FFFD.
    pub stream_name: Cow<'a, str>,
    pub frame_counter: u32,
    /// The interleaved samples, exactly `samples_per_frame · channels · bytes` long.
    pub payload: &'a [u8],
}

/// Parses one datagram as a VBAN audio packet (PCM only). Never panics.
pub fn parse(packet: &[u8]) -> Result<VbanPacket<'_>, VbanError> {
    let header = header(packet)?;
    let sub_protocol = SubProtocol::from_byte(header[4]);
    if sub_protocol != SubProtocol::Audio {
        return Err(VbanError::NotAudio { sub_protocol });
    }
    let index = header[4] & 0x1F;
    let sample_rate = *SAMPLE_RATES
        .get(usize::from(index))
        .ok_or(VbanError::BadSampleRate { index })?;
    let codec = header[7] & 0xF0;
    if codec != 0x00 {
        return Err(VbanError::UnsupportedCodec { codec });
    }
    let format = SampleFormat::from_byte(header[7]);
    let bytes = format
        .bytes()
        .ok_or(VbanError::UnsupportedFormat { format })?;
    let samples_per_frame = usize::from(header[5]) + 1;
    let channels = usize::from(header[6]) + 1;
    let expected = samples_per_frame * channels * bytes;
    let payload = &packet[HEADER_LEN..];
    if payload.len() != expected {
        return Err(VbanError::PayloadLength {
            expected,
            actual: payload.len(),
        });
    }
    Ok(VbanPacket {
        sample_rate_index: index,
        sample_rate,
        samples_per_frame,
        channels,
        format,
        stream_name: name_of(header),
        frame_counter: u32::from_le_bytes([header[24], header[25], header[26], header[27]]),
        payload,
    })
}

/// The stream name of anything with a VBAN header (audio or not, valid or not), so that a
/// receiver can attribute a bad packet to its stream. `None` without a header.
pub fn stream_name(packet: &[u8]) -> Option<Cow<'_, str>> {
    header(packet).ok().map(name_of)
}

/// The sub-protocol of anything with a VBAN header.
pub fn sub_protocol(packet: &[u8]) -> Option<SubProtocol> {
    header(packet).ok().map(|h| SubProtocol::from_byte(h[4]))
}

/// The first 28 bytes, once the length and the magic are right.
fn header(packet: &[u8]) -> Result<&[u8; HEADER_LEN], VbanError> {
    let header: &[u8; HEADER_LEN] = packet
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(VbanError::TooShort { len: packet.len() })?;
    if &header[..4] != MAGIC {
        return Err(VbanError::BadMagic);
    }
    Ok(header)
}

fn name_of(header: &[u8; HEADER_LEN]) -> Cow<'_, str> {
    let raw = &header[8..8 + STREAM_NAME_LEN];
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end])
}

impl VbanPacket<'_> {
    /// Samples per channel (the number of sample frames) in this packet.
    pub fn frames(&self) -> usize {
        self.samples_per_frame
    }

    /// The samples, interleaved, as `f32` in [-1, 1]: integers are divided by 2^(bits−1)
    /// (unsigned 8-bit is centred on 128 first), floats pass as they are, except that NaN and
    /// infinities become 0 (one bad value would otherwise spread through the resampler's FFT).
    pub fn samples_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.samples_per_frame * self.channels);
        self.decode_into(&mut out);
        out
    }

    /// Like [`samples_f32`](Self::samples_f32), appending to `out`.
    pub fn decode_into(&self, out: &mut Vec<f32>) {
        let p = self.payload;
        let finite = |x: f32| if x.is_finite() { x } else { 0.0 };
        match self.format {
            SampleFormat::U8 => out.extend(p.iter().map(|&b| (f32::from(b) - 128.0) / 128.0)),
            SampleFormat::I16 => out.extend(
                p.chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0),
            ),
            SampleFormat::I24 => out.extend(p.chunks_exact(3).map(|b| {
                // Sign-extend by placing the 24 bits at the top of an i32, then shifting back.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                v as f32 / 8_388_608.0
            })),
            SampleFormat::I32 => out.extend(p.chunks_exact(4).map(|b| {
                (f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) / 2_147_483_648.0) as f32
            })),
            SampleFormat::F32 => out.extend(
                p.chunks_exact(4)
                    .map(|b| finite(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
            SampleFormat::F64 => out.extend(p.chunks_exact(8).map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                finite(f64::from_le_bytes(a) as f32)
            })),
            // `parse` refuses these; nothing to decode.
            SampleFormat::Bits12 | SampleFormat::Bits10 => {}
        }
    }
}

/// What one frame counter says about the packets in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameStep {
    /// The first packet of the stream (or the first after [`FrameCounter::reset`]).
    First,
    /// The next packet, as expected.
    Next,
    /// `lost` packets went missing between the previous one and this one.
    Lost { lost: u32 },
    /// The same counter again (a duplicated datagram): drop it.
    Duplicate,
    /// A packet from shortly before the previous one (reordered on the way): drop it, its
    /// place has already been filled.
    Late,
    /// The counter jumped back (the sender restarted) or far ahead: a new timeline starts here,
    /// nothing is counted as lost.
    Restart,
}

/// Tracks one stream's frame counter: counts lost packets, understands the wrap at
/// `u32::MAX`, and tells a sender restart from loss.
///
/// A jump of more than `max_gap` packets forward, or of more than [`FrameCounter::LATE_WINDOW`]
/// back, is a restart rather than billions of lost packets.
#[derive(Clone, Debug)]
pub struct FrameCounter {
    last: Option<u32>,
    max_gap: u32,
    lost: u64,
    restarts: u64,
    duplicates: u64,
    late: u64,
}

impl Default for FrameCounter {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_GAP)
    }
}

impl FrameCounter {
    /// A gap of up to this many packets is loss (at 48 kHz and 256 samples a packet, ~5.5 s).
    pub const DEFAULT_MAX_GAP: u32 = 1024;
    /// A counter up to this many packets behind the last one is a reordered packet.
    pub const LATE_WINDOW: u32 = 32;

    pub fn new(max_gap: u32) -> Self {
        Self {
            last: None,
            max_gap: max_gap.max(1),
            lost: 0,
            restarts: 0,
            duplicates: 0,
            late: 0,
        }
    }

    /// Takes the next packet's counter.
    pub fn observe(&mut self, counter: u32) -> FrameStep {
        let Some(last) = self.last else {
            self.last = Some(counter);
            return FrameStep::First;
        };
        // Wrapping distance, so that u32::MAX → 0 is simply the next packet.
        let ahead = counter.wrapping_sub(last);
        let behind = last.wrapping_sub(counter);
        let step = if ahead == 1 {
            FrameStep::Next
        } else if ahead == 0 {
            self.duplicates += 1;
            return FrameStep::Duplicate;
        } else if behind <= Self::LATE_WINDOW {
            self.late += 1;
            return FrameStep::Late;
        } else if ahead - 1 <= self.max_gap {
            self.lost += u64::from(ahead - 1);
            FrameStep::Lost { lost: ahead - 1 }
        } else {
            self.restarts += 1;
            FrameStep::Restart
        };
        self.last = Some(counter);
        step
    }

    /// Forgets the last counter: the next packet is [`FrameStep::First`]. Totals are kept.
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// The last counter accepted.
    pub fn last(&self) -> Option<u32> {
        self.last
    }

    /// Packets lost in total.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn late(&self) -> u64 {
        self.late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header for an audio packet; `payload` follows it.
    fn packet(
        rate_index: u8,
        samples: usize,
        channels: usize,
        format: u8,
        name: &str,
        counter: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = b"VBAN".to_vec();
        p.push(rate_index);
        p.push((samples - 1) as u8);
        p.push((channels - 1) as u8);
        p.push(format);
        let mut n = [0u8; 16];
        n[..name.len()].copy_from_slice(name.as_bytes());
        p.extend_from_slice(&n);
        p.extend_from_slice(&counter.to_le_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_the_header_aiovban_sends() {
        // Captured from aiovban 1.1.1 (see notes/real-peers.md): 48 kHz, 256 samples, stereo,
        // INT16 PCM, "Stream1", counter 1.
        let mut p = vec![
            0x56, 0x42, 0x41, 0x4e, 0x03, 0xff, 0x01, 0x01, 0x53, 0x74, 0x72, 0x65, 0x61, 0x6d,
            0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        ];
        p.extend(std::iter::repeat_n(0u8, 1024));
        let v = parse(&p).unwrap();
        assert_eq!(v.sample_rate, 48_000);
        assert_eq!(v.sample_rate_index, 3);
        assert_eq!(v.samples_per_frame, 256);
        assert_eq!(v.frames(), 256);
        assert_eq!(v.channels, 2);
        assert_eq!(v.format, SampleFormat::I16);
        assert_eq!(v.stream_name, "Stream1");
        assert_eq!(v.frame_counter, 1);
        assert_eq!(v.samples_f32().len(), 512);
        assert_eq!(stream_name(&p).as_deref(), Some("Stream1"));
        assert_eq!(sub_protocol(&p), Some(SubProtocol::Audio));
    }

    #[test]
    fn every_sample_rate_index() {
        for (i, &rate) in SAMPLE_RATES.iter().enumerate() {
            let p = packet(i as u8, 1, 1, 1, "s", 0, &[0, 0]);
            assert_eq!(parse(&p).unwrap().sample_rate, rate);
        }
        for i in 21..32u8 {
            let p = packet(i, 1, 1, 1, "s", 0, &[0, 0]);
            assert_eq!(parse(&p), Err(VbanError::BadSampleRate { index: i }));
        }
    }

    #[test]
    fn decodes_uint8() {
        let p = packet(8, 3, 1, 0x00, "u8", 0, &[0, 128, 255]);
        assert_eq!(
            parse(&p).unwrap().samples_f32(),
            vec![-1.0, 0.0, 127.0 / 128.0]
        );
    }

    #[test]
    fn decodes_int16() {
        let mut pl = Vec::new();
        for v in [i16::MIN, -16_384, 0, 16_384, i16::MAX] {
            pl.extend_from_slice(&v.to_le_bytes());
        }
        let p = packet(3, 5, 1, 0x01, "i16", 0, &pl);
        assert_eq!(
            parse(&p).unwrap().samples_f32(),
            vec![-1.0, -0.5, 0.0, 0.5, 32_767.0 / 32_768.0]
        );
    }

    #[test]
    fn decodes_int24() {
        let mut pl = Vec::new();
        for v in [-8_388_608i32, -4_194_304, -1, 0, 4_194_304, 8_388_607] {
            pl.extend_from_slice(&v.to_le_bytes()[..3]);
        }
        let p = packet(3, 3, 2, 0x02, "i24", 0, &pl);
        let s = parse(&p).unwrap().samples_f32();
        assert_eq!(
            s,
            vec![
                -1.0,
                -0.5,
                -1.0 / 8_388_608.0,
                0.0,
                0.5,
                8_388_607.0 / 8_388_608.0
            ]
        );
    }

    #[test]
    fn decodes_int32() {
        let mut pl = Vec::new();
        for v in [i32::MIN, -1_073_741_824, 0, 1_073_741_824] {
            pl.extend_from_slice(&v.to_le_bytes());
        }
        let p = packet(3, 4, 1, 0x03, "i32", 0, &pl);
        assert_eq!(parse(&p).unwrap().samples_f32(), vec![-1.0, -0.5, 0.0, 0.5]);
    }

    #[test]
    fn decodes_float32_and_zeroes_non_finite_values() {
        let mut pl = Vec::new();
        for v in [
            0.25f32,
            -0.75,
            1.5,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            pl.extend_from_slice(&v.to_le_bytes());
        }
        let p = packet(16, 3, 2, 0x04, "f32", 7, &pl);
        let v = parse(&p).unwrap();
        assert_eq!(v.sample_rate, 44_100);
        assert_eq!(v.frame_counter, 7);
        assert_eq!(v.samples_f32(), vec![0.25, -0.75, 1.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn decodes_float64() {
        let mut pl = Vec::new();
        for v in [0.125f64, -1.0, f64::NAN, 1e300] {
            pl.extend_from_slice(&v.to_le_bytes());
        }
        let p = packet(3, 4, 1, 0x05, "f64", 0, &pl);
        // 1e300 becomes +inf as f32, and so 0.
        assert_eq!(
            parse(&p).unwrap().samples_f32(),
            vec![0.125, -1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn refuses_10_and_12_bit_formats_and_other_codecs() {
        let p = packet(3, 1, 1, 0x06, "x", 0, &[0; 4]);
        assert_eq!(
            parse(&p),
            Err(VbanError::UnsupportedFormat {
                format: SampleFormat::Bits12
            })
        );
        let p = packet(3, 1, 1, 0x07, "x", 0, &[0; 2]);
        assert_eq!(
            parse(&p),
            Err(VbanError::UnsupportedFormat {
                format: SampleFormat::Bits10
            })
        );
        for codec in [0x10u8, 0x20, 0xF0] {
            let p = packet(3, 1, 1, codec | 0x01, "x", 0, &[0; 2]);
            assert_eq!(parse(&p), Err(VbanError::UnsupportedCodec { codec }));
        }
    }

    #[test]
    fn reports_other_sub_protocols_as_not_audio() {
        for (bits, sp) in [
            (0x20u8, SubProtocol::Serial),
            (0x40, SubProtocol::Text),
            (0x60, SubProtocol::Service),
            (0xE0, SubProtocol::Other(0xE0)),
        ] {
            let p = packet(bits, 1, 1, 0, "Command1", 0, b"Strip[0].Mute=1");
            assert_eq!(parse(&p), Err(VbanError::NotAudio { sub_protocol: sp }));
            assert_eq!(stream_name(&p).as_deref(), Some("Command1"));
            assert_eq!(sub_protocol(&p), Some(sp));
        }
    }

    #[test]
    fn refuses_short_foreign_and_truncated_packets() {
        assert_eq!(parse(&[]), Err(VbanError::TooShort { len: 0 }));
        assert_eq!(parse(b"VBAN"), Err(VbanError::TooShort { len: 4 }));
        let good = packet(3, 256, 2, 0x01, "Stream1", 0, &[0; 1024]);
        assert_eq!(parse(&good[..27]), Err(VbanError::TooShort { len: 27 }));
        let mut foreign = good.clone();
        foreign[0] = b'X';
        assert_eq!(parse(&foreign), Err(VbanError::BadMagic));
        assert_eq!(stream_name(&foreign), None);
        assert_eq!(
            parse(&good[..good.len() - 1]),
            Err(VbanError::PayloadLength {
                expected: 1024,
                actual: 1023
            })
        );
        let mut padded = good.clone();
        padded.push(0);
        assert_eq!(
            parse(&padded),
            Err(VbanError::PayloadLength {
                expected: 1024,
                actual: 1025
            })
        );
        // A bare header is a packet without its samples.
        assert_eq!(
            parse(&good[..HEADER_LEN]),
            Err(VbanError::PayloadLength {
                expected: 1024,
                actual: 0
            })
        );
    }

    #[test]
    fn stream_names_stop_at_nul_and_survive_non_utf8() {
        let p = packet(3, 1, 1, 1, "sixteen_chars_ok", 0, &[0, 0]);
        assert_eq!(parse(&p).unwrap().stream_name, "sixteen_chars_ok");
        let mut p = packet(3, 1, 1, 1, "ab", 0, &[0, 0]);
        p[10] = 0xFF;
        p[11] = b'c';
        assert_eq!(parse(&p).unwrap().stream_name, "ab\u{FFFD}c");
    }

    /// xorshift64*: a fixed seed makes every run test the same inputs.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Checks what a successful parse promises: consistent lengths and sane samples.
    fn check(bytes: &[u8]) -> bool {
        match parse(bytes) {
            Ok(p) => {
                let s = p.samples_f32();
                assert_eq!(s.len(), p.samples_per_frame * p.channels);
                assert!((1..=256).contains(&p.samples_per_frame));
                assert!((1..=256).contains(&p.channels));
                assert!(SAMPLE_RATES.contains(&p.sample_rate));
                if !matches!(p.format, SampleFormat::F32 | SampleFormat::F64) {
                    assert!(s.iter().all(|x| (-1.0..=1.0).contains(x)));
                }
                assert!(s.iter().all(|x| x.is_finite()));
                true
            }
            Err(_) => {
                let _ = stream_name(bytes);
                let _ = sub_protocol(bytes);
                false
            }
        }
    }

    #[test]
    fn never_panics_on_random_or_mangled_packets() {
        let mut rng = Rng(0x5EED_CAFE_F00D_0001);
        let mut parsed = 0u32;
        let mut buf = Vec::with_capacity(4096);
        // Pure noise, mostly rejected at the magic.
        for _ in 0..200_000 {
            buf.clear();
            let len = rng.below(1600);
            buf.extend((0..len).map(|_| rng.next() as u8));
            parsed += u32::from(check(&buf));
        }
        // Valid headers with random fields and random payload lengths (around the right one),
        // truncated anywhere: this reaches every branch of the parser and the decoder.
        for _ in 0..2_000_000 {
            buf.clear();
            buf.extend_from_slice(b"VBAN");
            let r = rng.next();
            // Mostly audio, sometimes another sub-protocol; any rate index.
            buf.push(if r & 7 == 0 {
                r as u8
            } else {
                (r >> 8) as u8 & 0x1F
            });
            let samples = if r & 0x100 == 0 {
                rng.below(4)
            } else {
                rng.below(256)
            };
            let channels = if r & 0x1E00 != 0 {
                rng.below(3)
            } else {
                rng.below(256)
            };
            buf.push(samples as u8);
            buf.push(channels as u8);
            buf.push(if r & 0x400 == 0 {
                (r >> 16) as u8 & 0x07
            } else {
                (r >> 16) as u8
            });
            buf.extend((0..20).map(|_| rng.next() as u8));
            let bytes = SampleFormat::from_byte(buf[7]).bytes().unwrap_or(2);
            let exact = (samples + 1) * (channels + 1) * bytes;
            let len = match rng.below(4) {
                0 => exact,
                1 => exact.saturating_sub(rng.below(16)),
                2 => exact + rng.below(16),
                _ => rng.below(exact + 1),
            };
            while buf.len() < HEADER_LEN + len {
                buf.extend_from_slice(&rng.next().to_le_bytes());
            }
            buf.truncate(HEADER_LEN + len);
            let cut = if rng.below(8) == 0 {
                rng.below(buf.len() + 1)
            } else {
                buf.len()
            };
            parsed += u32::from(check(&buf[..cut]));
        }
        // Enough valid packets got through for the decoder to have been exercised too.
        assert!(parsed > 100_000, "only {parsed} packets parsed");
    }

    #[test]
    fn counts_lost_packets() {
        let mut c = FrameCounter::default();
        assert_eq!(c.observe(10), FrameStep::First);
        assert_eq!(c.observe(11), FrameStep::Next);
        assert_eq!(c.observe(14), FrameStep::Lost { lost: 2 });
        assert_eq!(c.observe(15), FrameStep::Next);
        assert_eq!(c.lost(), 2);
        assert_eq!(c.last(), Some(15));
    }

    #[test]
    fn wraps_around_at_u32_max() {
        let mut c = FrameCounter::default();
        c.observe(u32::MAX - 1);
        assert_eq!(c.observe(u32::MAX), FrameStep::Next);
        assert_eq!(c.observe(0), FrameStep::Next);
        assert_eq!(c.observe(1), FrameStep::Next);
        // Four behind 1 through the wrap: a reordered packet, not a restart.
        assert_eq!(c.observe(u32::MAX - 2), FrameStep::Late);
        let mut c = FrameCounter::default();
        c.observe(u32::MAX);
        assert_eq!(c.observe(3), FrameStep::Lost { lost: 3 });
        assert_eq!(c.lost(), 3);
        assert_eq!(c.restarts(), 0);
    }

    #[test]
    fn a_sender_restart_is_not_billions_lost() {
        let mut c = FrameCounter::default();
        for i in 1..=5000u32 {
            c.observe(i);
        }
        // The sender restarted and counts from 0 or 1 again.
        assert_eq!(c.observe(1), FrameStep::Restart);
        assert_eq!(c.observe(2), FrameStep::Next);
        assert_eq!(c.lost(), 0);
        assert_eq!(c.restarts(), 1);
        // A jump far ahead (a sender with a random start) is a restart too.
        assert_eq!(c.observe(3_000_000_000), FrameStep::Restart);
        assert_eq!(c.observe(3_000_000_001), FrameStep::Next);
        assert_eq!(c.lost(), 0);
        assert_eq!(c.restarts(), 2);
    }

    #[test]
    fn duplicates_and_reordered_packets_are_dropped_not_counted_lost() {
        let mut c = FrameCounter::default();
        c.observe(100);
        assert_eq!(c.observe(100), FrameStep::Duplicate);
        assert_eq!(c.observe(102), FrameStep::Lost { lost: 1 });
        // 101 arrives late: its gap was already counted and filled.
        assert_eq!(c.observe(101), FrameStep::Late);
        assert_eq!(c.observe(103), FrameStep::Next);
        assert_eq!((c.lost(), c.duplicates(), c.late()), (1, 1, 1));
        c.reset();
        assert_eq!(c.observe(7), FrameStep::First);
    }

    #[test]
    fn the_largest_allowed_gap_is_loss_one_more_is_a_restart() {
        let mut c = FrameCounter::new(10);
        c.observe(0);
        assert_eq!(c.observe(11), FrameStep::Lost { lost: 10 });
        assert_eq!(c.observe(23), FrameStep::Restart);
    }
}
