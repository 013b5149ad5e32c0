//! Audio decoding: symphonia demuxes and decodes, channels are averaged to mono, rubato resamples
//! to 16 kHz.
//!
//! # Timing and the AAC priming
//!
//! AAC encoders put 1024 (FFmpeg's encoder; Apple's: 2112) "priming" samples before the signal,
//! and an MP4 hides them with the track's edit list (`elst` `media_time`). Symphonia 0.5's isomp4
//! reader parses `edts` but does not apply it, and its AAC decoder does not trim either
//! (`codec_params.delay` stays `None`): decoded as is, every sound of
//! `tests/data/video/av_sync_flash_beep.mp4` comes 1024 samples at 48 kHz (21.3 ms) late, exactly
//! as with `ffmpeg -ignore_editlist 1`. This module therefore reads the edit list itself (module
//! `mp4_edits`) and applies it to the decoded samples like FFmpeg does: leading empty edits
//! become silence, the first media edit's `media_time` samples are dropped, and its
//! `segment_duration` caps the length. With that, the beeps of the sync clip start at k s to within
//! one 16 kHz sample (see the tests), in step with the video frames' timestamps from FFmpeg.
//!
//! Other containers: MP3 and Vorbis delay/padding is trimmed by symphonia itself when gapless mode
//! is on, which it is here; raw ADTS AAC carries no priming information and is not trimmed.
//!
//! The resampler's own latency (`output_delay()`, in output samples) is dropped from the start of
//! its output, and at the end the input is flushed through it so that the output has exactly
//! `round(input_len · 16000 / rate)` samples.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::resample::To16k;
use symphonia::core::audio::{SampleBuffer, SignalSpec};
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::TimeBase;

use super::MediaError;

/// The sample rate of everything [`AudioDecoder`] returns.
pub const OUTPUT_SAMPLE_RATE: u32 = 16_000;

/// `open` gives up when this many packets in a row fail to decode before one succeeds.
const MAX_FAILED_PACKETS_AT_OPEN: u32 = 16;

/// The properties of the audio track being decoded (as in the file, before resampling).
#[derive(Clone, Debug, PartialEq)]
pub struct AudioInfo {
    /// Sample rate of the track, Hz.
    pub sample_rate: u32,
    /// Number of channels of the track (they are averaged to mono).
    pub channels: u16,
    /// Short name of the codec, as symphonia calls it (`"aac"`, `"mp3"`, `"pcm_s16le"`, …).
    pub codec: String,
    /// Duration of the track, when the container says (after the MP4 edit list, if any).
    pub duration_s: Option<f64>,
}

/// Decodes the first decodable audio track of a file to 16 kHz mono `f32`, block by block.
///
/// The samples keep their absolute level (channels are averaged, nothing is normalised).
pub struct AudioDecoder {
    path: PathBuf,
    info: AudioInfo,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    sample_buf: Option<(SignalSpec, SampleBuffer<f32>)>,
    mono: Vec<f32>,
    edits: EditState,
    stage: Option<Stage>,
    out: VecDeque<f32>,
    position: u64,
    skipped_packets: u64,
    decoded_packets: u64,
    /// The track's time base, to know how long a lost packet was.
    time_base: Option<TimeBase>,
    /// Seconds of lost packets not yet replaced by silence.
    gap_s: f64,
    source_ended: bool,
    flushed: bool,
}

impl std::fmt::Debug for AudioDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDecoder")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("track_id", &self.track_id)
            .field("position", &self.position)
            .field("skipped_packets", &self.skipped_packets)
            .finish_non_exhaustive()
    }
}

/// What happened to one packet.
enum Pumped {
    Decoded,
    Skipped,
    End,
}

impl AudioDecoder {
    /// Opens the first decodable audio track of the file.
    ///
    /// `Ok(None)` when the file has no audio track (a video-only file is fine, including a
    /// container symphonia does not read when OpenCV finds video in it) or only tracks in codecs
    /// symphonia cannot decode. [`MediaError::NotFound`] when the file is missing;
    /// [`MediaError::Open`] when it is unreadable or corrupt, including when none of its first
    /// packets decodes.
    pub fn open(path: &Path) -> Result<Option<Self>, MediaError> {
        Self::open_with(path, true)
    }

    /// `open`, optionally ignoring the MP4 edit list (to check what symphonia does on its own).
    fn open_with(path: &Path, apply_edits: bool) -> Result<Option<Self>, MediaError> {
        MediaError::check_exists(path)?;
        let file = File::open(path).map_err(|e| MediaError::open(path, e.to_string()))?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format_opts = FormatOptions {
            enable_gapless: true,
            ..Default::default()
        };
        let probed = guarded(|| {
            symphonia::default::get_probe().format(
                &hint,
                mss,
                &format_opts,
                &MetadataOptions::default(),
            )
        })
        .map_err(|panic| MediaError::open(path, format!("the demuxer failed: {panic}")))?;
        let format = match probed {
            Ok(probed) => probed.format,
            Err(SymphoniaError::Unsupported(what)) => {
                // A container symphonia does not know (AVI, MKV, …) may still be a video.
                if super::VideoDecoder::open(path, Some(16)).is_ok() {
                    tracing::info!(path = %path.display(), "container not readable for audio ({what}); treating the file as video only");
                    return Ok(None);
                }
                return Err(MediaError::open(
                    path,
                    format!("not a media file symphonia or OpenCV can read ({what})"),
                ));
            }
            Err(e) => return Err(MediaError::open(path, e.to_string())),
        };

        let Some((track, decoder)) = first_decodable_track(path, format.tracks()) else {
            return Ok(None);
        };
        let track_id = track.id;
        let params = &track.codec_params;
        let time_base = params.time_base;
        let codec = symphonia::default::get_codecs()
            .get_codec(params.codec)
            .map(|d| d.short_name.to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let sample_rate = params.sample_rate.unwrap_or(0);
        let channels = params.channels.map(|c| c.count() as u16).unwrap_or(0);
        let edits = if apply_edits {
            mp4_edits::audio_track_edits(path, track_id as usize)
        } else {
            None
        };
        let mut duration_s = match (params.n_frames, params.time_base) {
            (Some(n), Some(tb)) => {
                let t = tb.calc_time(n);
                Some(t.seconds as f64 + t.frac)
            }
            (Some(n), None) if sample_rate > 0 => Some(n as f64 / f64::from(sample_rate)),
            _ => None,
        };
        if let Some(edits) = &edits {
            tracing::debug!(path = %path.display(), ?edits, "MP4 edit list of the audio track");
            if let (Some(d), Some(media_start)) = (edits.duration_s, edits.media_start_s()) {
                // Empty edits add silence; the media edit shows `d` of the track from `media_start`.
                let available = duration_s.map(|t| (t - media_start).max(0.0)).unwrap_or(d);
                duration_s = Some(edits.leading_empty_s + d.min(available));
            }
        }

        let mut this = Self {
            path: path.to_path_buf(),
            info: AudioInfo {
                sample_rate,
                channels,
                codec,
                duration_s,
            },
            format,
            decoder,
            track_id,
            sample_buf: None,
            mono: Vec::new(),
            edits: EditState::new(edits),
            stage: None,
            out: VecDeque::new(),
            position: 0,
            skipped_packets: 0,
            decoded_packets: 0,
            time_base,
            gap_s: 0.0,
            source_ended: false,
            flushed: false,
        };

        // Prove the track decodes: a corrupt file can look like MP3 or ADTS to the probe.
        let mut failed = 0;
        loop {
            match this.pump_packet() {
                Ok(Pumped::Decoded) => break,
                Ok(Pumped::Skipped) => {
                    failed += 1;
                    if failed >= MAX_FAILED_PACKETS_AT_OPEN {
                        return Err(MediaError::open(path, "the audio packets do not decode"));
                    }
                }
                Ok(Pumped::End) if failed == 0 && this.info.duration_s.unwrap_or(0.0) == 0.0 => {
                    // A track without packets: as good as none.
                    return Ok(None);
                }
                Ok(Pumped::End) => {
                    return Err(MediaError::open(path, "no audio packet decodes"));
                }
                Err(e) => return Err(MediaError::open(path, e.reason())),
            }
        }
        Ok(Some(this))
    }

    /// The track's properties (sample rate and channels as decoded).
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The next block of 16 kHz mono samples, at most `max_samples` of them (any positive number
    /// may come back), or `Ok(None)` at the end of the stream.
    ///
    /// Packets that fail to decode are counted in [`skipped_packets`](Self::skipped_packets) and
    /// replaced by silence as long as the container says they were, so that the samples after
    /// them keep their media time.
    pub fn next_chunk(&mut self, max_samples: usize) -> Result<Option<Vec<f32>>, MediaError> {
        let max_samples = max_samples.max(1);
        while self.out.len() < max_samples && !self.flushed {
            if self.source_ended {
                self.flush()?;
                continue;
            }
            self.pump_packet()?;
        }
        if self.out.is_empty() {
            return Ok(None);
        }
        let n = self.out.len().min(max_samples);
        let chunk: Vec<f32> = self.out.drain(..n).collect();
        self.position += n as u64;
        Ok(Some(chunk))
    }

    /// Samples returned so far (16 kHz). Divided by 16000 it is the media time of the next sample.
    pub fn position_samples(&self) -> u64 {
        self.position
    }

    /// Packets that failed to decode and were passed over, since the decoder was opened
    /// (rewinds do not reset it).
    pub fn skipped_packets(&self) -> u64 {
        self.skipped_packets
    }

    /// Goes back to the start of the file (by reopening it).
    pub fn rewind(&mut self) -> Result<(), MediaError> {
        let skipped = self.skipped_packets;
        match Self::open(&self.path)? {
            Some(fresh) => {
                *self = fresh;
                self.skipped_packets += skipped;
                Ok(())
            }
            None => Err(MediaError::open(
                &self.path,
                "the audio track is gone after reopening",
            )),
        }
    }

    /// Reads and decodes one packet of the track, pushing its samples down the pipeline.
    fn pump_packet(&mut self) -> Result<Pumped, MediaError> {
        if self.source_ended {
            return Ok(Pumped::End);
        }
        let packet = loop {
            let next = guarded(|| self.format.next_packet()).map_err(|panic| {
                self.source_ended = true;
                MediaError::decode(&self.path, format!("the demuxer failed: {panic}"))
            })?;
            match next {
                // Packets of other tracks are neither decoded nor failures.
                Ok(p) if p.track_id() != self.track_id => continue,
                Ok(p) => break p,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.source_ended = true;
                    return Ok(Pumped::End);
                }
                Err(SymphoniaError::ResetRequired) => {
                    // A new logical stream (chained Ogg): end here.
                    tracing::debug!(path = %self.path.display(), "audio stream changed; ending");
                    self.source_ended = true;
                    return Ok(Pumped::End);
                }
                Err(SymphoniaError::DecodeError(what)) => {
                    // The demuxer could not make sense of a packet; it resynchronises on the next.
                    self.count_skip(what);
                    return Ok(Pumped::Skipped);
                }
                Err(e) => {
                    if self.decoded_packets > 0 {
                        // Damage at the end of a file (e.g. a truncated download) ends the stream.
                        tracing::warn!(path = %self.path.display(), error = %e, "audio demuxing stopped early");
                        self.source_ended = true;
                        return Ok(Pumped::End);
                    }
                    return Err(MediaError::decode(&self.path, e.to_string()));
                }
            }
        };
        let packet_dur = packet.dur();
        let decoder = &mut self.decoder;
        let decoded = match guarded(move || decoder.decode(&packet)) {
            Ok(result) => result,
            Err(panic) => {
                // The decoder's state is suspect after a panic: start it afresh.
                let decoder = &mut self.decoder;
                if guarded(move || decoder.reset()).is_err() {
                    self.source_ended = true;
                }
                return self.lose_packet(&format!("the decoder failed: {panic}"), packet_dur);
            }
        };
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(what)) => return self.lose_packet(what, packet_dur),
            Err(SymphoniaError::IoError(e)) => {
                // A packet shorter than its header says.
                return self.lose_packet(&e.to_string(), packet_dur);
            }
            Err(SymphoniaError::ResetRequired) => {
                self.decoder.reset();
                return self.lose_packet("decoder reset", packet_dur);
            }
            // Garbage in a packet can also look like an unsupported feature (e.g. AAC "program
            // config") or hit a limit: still one bad packet.
            Err(e) => return self.lose_packet(&e.to_string(), packet_dur),
        };
        self.decoded_packets += 1;
        let spec = *decoded.spec();
        let frames = decoded.frames();
        if frames == 0 {
            return Ok(Pumped::Decoded);
        }
        let channels = spec.channels.count().max(1);
        let needs_new = match &self.sample_buf {
            Some((s, buf)) => *s != spec || buf.capacity() < frames * channels,
            None => true,
        };
        if needs_new {
            let capacity = decoded.capacity().max(frames) as u64;
            self.sample_buf = Some((spec, SampleBuffer::new(capacity, spec)));
        }
        let Some((_, buf)) = self.sample_buf.as_mut() else {
            return Ok(Pumped::Decoded);
        };
        buf.copy_interleaved_ref(decoded);
        let samples = buf.samples();
        self.mono.clear();
        if channels == 1 {
            self.mono.extend_from_slice(samples);
        } else {
            let scale = 1.0 / channels as f32;
            self.mono.extend(
                samples
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            );
        }

        if self.stage.is_none() {
            // The decoded spec is the truth (the container may not say, or say otherwise).
            self.info.sample_rate = spec.rate;
            self.info.channels = channels as u16;
            self.stage = Some(Stage::new(&self.path, spec.rate)?);
            let silence = self.edits.leading_silence_frames(spec.rate);
            if silence > 0 {
                let zeros = vec![0.0; silence as usize];
                self.feed_stage(&zeros)?;
            }
        } else if self.info.sample_rate != spec.rate {
            tracing::warn!(path = %self.path.display(), from = self.info.sample_rate, to = spec.rate, "sample rate changed mid-stream; ignored");
        }
        self.fill_gap()?;
        let rate = self.info.sample_rate;
        let mono = std::mem::take(&mut self.mono);
        let kept = self.edits.apply(&mono, rate);
        let result = self.feed_stage(kept);
        self.mono = mono;
        result?;
        Ok(Pumped::Decoded)
    }

    fn feed_stage(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        match self.stage.as_mut() {
            Some(stage) => stage.push(&self.path, samples, &mut self.out),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), MediaError> {
        self.fill_gap()?;
        if let Some(stage) = self.stage.as_mut() {
            stage.flush(&self.path, &mut self.out)?;
        }
        self.flushed = true;
        Ok(())
    }

    fn count_skip(&mut self, what: &str) {
        self.skipped_packets += 1;
        if self.decoded_packets > 0 && self.skipped_packets.is_power_of_two() {
            tracing::warn!(path = %self.path.display(), what, skipped = self.skipped_packets, "audio packets do not decode; skipping them");
        } else {
            tracing::debug!(path = %self.path.display(), what, "audio packet skipped");
        }
    }

    /// A packet that does not decode: counted, and its duration (from the container) noted so
    /// that silence takes its place and the samples after it keep their time.
    fn lose_packet(&mut self, what: &str, dur: u64) -> Result<Pumped, MediaError> {
        self.count_skip(what);
        if let Some(tb) = self.time_base {
            let t = tb.calc_time(dur);
            // A damaged container may claim anything; one packet is never more than a second.
            self.gap_s += (t.seconds as f64 + t.frac).min(1.0);
        }
        if self.stage.is_some() {
            self.fill_gap()?;
        }
        Ok(Pumped::Skipped)
    }

    /// Feeds silence for the packets lost since the last call (once the sample rate is known).
    fn fill_gap(&mut self) -> Result<(), MediaError> {
        if self.gap_s <= 0.0 || self.stage.is_none() {
            return Ok(());
        }
        let rate = self.info.sample_rate;
        let frames = (self.gap_s * f64::from(rate)).round() as usize;
        self.gap_s = 0.0;
        let zeros = vec![0.0; frames];
        let kept = self.edits.apply(&zeros, rate);
        self.feed_stage(kept)
    }
}

/// Decodes all of a file's audio at 16 kHz mono. `Ok(None)` when it has no audio track.
pub fn decode_all(path: &Path) -> Result<Option<Vec<f32>>, MediaError> {
    let Some(mut decoder) = AudioDecoder::open(path)? else {
        return Ok(None);
    };
    let mut all = Vec::with_capacity(
        decoder
            .info()
            .duration_s
            .map(|d| (d * f64::from(OUTPUT_SAMPLE_RATE)) as usize + 1024)
            .unwrap_or(0)
            .min(1 << 28),
    );
    while let Some(chunk) = decoder.next_chunk(1 << 16)? {
        all.extend_from_slice(&chunk);
    }
    if decoder.skipped_packets() > 0 {
        tracing::warn!(path = %path.display(), skipped = decoder.skipped_packets(), "audio packets skipped");
    }
    Ok(Some(all))
}

fn first_decodable_track<'a>(
    path: &Path,
    tracks: &'a [Track],
) -> Option<(&'a Track, Box<dyn Decoder>)> {
    let codecs = symphonia::default::get_codecs();
    for track in tracks {
        let params = &track.codec_params;
        if params.codec == CODEC_TYPE_NULL {
            continue;
        }
        match codecs.make(params, &DecoderOptions::default()) {
            Ok(decoder) => return Some((track, decoder)),
            Err(e) => {
                tracing::warn!(path = %path.display(), track = track.id, error = %e, "audio track not decodable; looking further");
            }
        }
    }
    None
}

/// Runs third-party parsing code, turning a panic into an error.
///
/// Symphonia 0.5 can panic on malformed input (e.g. its ADTS reader overflows an integer on some
/// random bytes); a corrupt file must be an error, not a crash.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// Applies an MP4 edit list to the decoded source samples.
struct EditState {
    edits: Option<mp4_edits::TrackEdits>,
    /// Source frames still to drop (`media_time`); resolved at the first decoded packet.
    to_drop: Option<u64>,
    /// Source frames still to let through (`segment_duration`), when capped.
    to_keep: Option<u64>,
}

impl EditState {
    fn new(edits: Option<mp4_edits::TrackEdits>) -> Self {
        Self {
            edits,
            to_drop: None,
            to_keep: None,
        }
    }

    /// The frames of silence that leading empty edits ask for; also fixes the trims for `rate`.
    fn leading_silence_frames(&mut self, rate: u32) -> u64 {
        let Some(edits) = &self.edits else {
            self.to_drop = Some(0);
            return 0;
        };
        let rate_f = f64::from(rate);
        self.to_drop = Some(
            edits
                .media_start_s()
                .map(|s| (s * rate_f).round() as u64)
                .unwrap_or(0),
        );
        self.to_keep = edits.duration_s.map(|d| (d * rate_f).round() as u64);
        (edits.leading_empty_s * rate_f).round() as u64
    }

    /// The part of `samples` the edit list shows.
    fn apply<'a>(&mut self, samples: &'a [f32], rate: u32) -> &'a [f32] {
        if self.to_drop.is_none() {
            self.leading_silence_frames(rate);
        }
        let mut s = samples;
        if let Some(drop) = self.to_drop.as_mut() {
            let n = (*drop).min(s.len() as u64) as usize;
            *drop -= n as u64;
            s = &s[n..];
        }
        if let Some(keep) = self.to_keep.as_mut() {
            let n = (*keep).min(s.len() as u64) as usize;
            *keep -= n as u64;
            s = &s[..n];
        }
        s
    }
}

/// Turns mono source samples into 16 kHz output samples (the shared [`To16k`]), with errors
/// that name the file.
struct Stage {
    resampler: To16k,
}

impl Stage {
    fn new(path: &Path, rate_in: u32) -> Result<Self, MediaError> {
        To16k::new(rate_in)
            .map(|resampler| Self { resampler })
            .map_err(|e| MediaError::decode(path, e.to_string()))
    }

    fn push(
        &mut self,
        path: &Path,
        samples: &[f32],
        out: &mut VecDeque<f32>,
    ) -> Result<(), MediaError> {
        self.resampler
            .push(samples, out)
            .map_err(|e| MediaError::decode(path, e.to_string()))
    }

    fn flush(&mut self, path: &Path, out: &mut VecDeque<f32>) -> Result<(), MediaError> {
        self.resampler
            .flush(out)
            .map_err(|e| MediaError::decode(path, e.to_string()))
    }
}

/// Just enough of an MP4 parser to read the edit list (`moov/trak/edts/elst`) of each track.
mod mp4_edits {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Path;

    /// A `moov` bigger than this is not read (it would be a damaged or hostile file).
    const MAX_MOOV_BYTES: u64 = 64 << 20;

    /// What the edit list of one track says, in seconds.
    #[derive(Clone, Debug, PartialEq)]
    pub struct TrackEdits {
        /// Total duration of the empty edits before the first media edit.
        pub leading_empty_s: f64,
        /// Start of the first media edit in the track's media time (`media_time`), in units of
        /// `media_timescale`.
        pub media_time: i64,
        /// The track's `mdhd` timescale.
        pub media_timescale: u32,
        /// Duration of the first media edit, when it is the only one and has a length.
        pub duration_s: Option<f64>,
    }

    impl TrackEdits {
        /// Where the presentation starts in the decoded track, in seconds.
        pub fn media_start_s(&self) -> Option<f64> {
            (self.media_timescale > 0 && self.media_time >= 0)
                .then(|| self.media_time as f64 / f64::from(self.media_timescale))
        }
    }

    #[derive(Default, Debug)]
    struct Trak {
        handler: [u8; 4],
        media_timescale: u32,
        /// (segment_duration in movie timescale, media_time, media_rate_integer)
        edits: Vec<(u64, i64, i16)>,
    }

    /// The edits of the `index`-th `trak` (symphonia numbers MP4 tracks by their order), when it
    /// is a sound track with an edit list that changes something. `None` for other files.
    pub fn audio_track_edits(path: &Path, index: usize) -> Option<TrackEdits> {
        let moov = read_moov(path)?;
        let mut movie_timescale = 0u32;
        let mut traks = Vec::new();
        for (kind, body) in Boxes(&moov) {
            match &kind {
                b"mvhd" => movie_timescale = parse_mvhd(body).unwrap_or(0),
                b"trak" => traks.push(parse_trak(body)),
                _ => {}
            }
        }
        let trak = traks.get(index)?;
        if &trak.handler != b"soun" || trak.edits.is_empty() || movie_timescale == 0 {
            return None;
        }
        let movie_s = |d: u64| d as f64 / f64::from(movie_timescale);
        let mut leading_empty_s = 0.0;
        let mut media = trak.edits.iter().skip_while(|(d, t, _)| {
            if *t == -1 {
                leading_empty_s += movie_s(*d);
                true
            } else {
                false
            }
        });
        let &(duration, media_time, rate) = media.next()?;
        if rate != 1 || media_time < 0 {
            return None;
        }
        let only_one = media.next().is_none();
        let duration_s = (only_one && duration > 0).then(|| movie_s(duration));
        Some(TrackEdits {
            leading_empty_s,
            media_time,
            media_timescale: trak.media_timescale,
            duration_s,
        })
    }

    /// The payload of the top-level `moov` box.
    fn read_moov(path: &Path) -> Option<Vec<u8>> {
        let mut file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        let mut pos = 0u64;
        while pos + 8 <= len {
            file.seek(SeekFrom::Start(pos)).ok()?;
            let mut header = [0u8; 16];
            file.read_exact(&mut header[..8]).ok()?;
            let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let kind = [header[4], header[5], header[6], header[7]];
            let (size, header_len) = match size32 {
                0 => (len - pos, 8),
                1 => {
                    file.read_exact(&mut header[8..16]).ok()?;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&header[8..16]);
                    (u64::from_be_bytes(b), 16)
                }
                n => (u64::from(n), 8),
            };
            if size < header_len || pos + size > len {
                return None;
            }
            if &kind == b"moov" {
                let body_len = size - header_len;
                if body_len > MAX_MOOV_BYTES {
                    return None;
                }
                let mut body = vec![0u8; body_len as usize];
                file.read_exact(&mut body).ok()?;
                return Some(body);
            }
            pos += size;
        }
        None
    }

    /// Iterates over the boxes in a buffer: (type, payload). Stops at the first malformed one.
    struct Boxes<'a>(&'a [u8]);

    impl<'a> Iterator for Boxes<'a> {
        type Item = ([u8; 4], &'a [u8]);

        fn next(&mut self) -> Option<Self::Item> {
            let buf = self.0;
            let size32 = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?);
            let kind: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
            let (size, header_len) = match size32 {
                0 => (buf.len() as u64, 8u64),
                1 => (u64::from_be_bytes(buf.get(8..16)?.try_into().ok()?), 16),
                n => (u64::from(n), 8),
            };
            if size < header_len || size > buf.len() as u64 {
                self.0 = &[];
                return None;
            }
            let body = &buf[header_len as usize..size as usize];
            self.0 = &buf[size as usize..];
            Some((kind, body))
        }
    }

    fn be_u32(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn be_u64(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    /// The timescale of an `mvhd` or `mdhd` payload (same layout up to it).
    fn parse_mvhd(body: &[u8]) -> Option<u32> {
        match body.first()? {
            0 => be_u32(body, 12),
            1 => be_u32(body, 20),
            _ => None,
        }
    }

    fn parse_trak(body: &[u8]) -> Trak {
        let mut trak = Trak::default();
        for (kind, child) in Boxes(body) {
            match &kind {
                b"edts" => {
                    for (kind, elst) in Boxes(child) {
                        if &kind == b"elst" {
                            trak.edits = parse_elst(elst).unwrap_or_default();
                        }
                    }
                }
                b"mdia" => {
                    for (kind, m) in Boxes(child) {
                        match &kind {
                            b"mdhd" => trak.media_timescale = parse_mvhd(m).unwrap_or(0),
                            b"hdlr" => {
                                if let Some(h) = m.get(8..12) {
                                    trak.handler.copy_from_slice(h);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        trak
    }

    fn parse_elst(body: &[u8]) -> Option<Vec<(u64, i64, i16)>> {
        let version = *body.first()?;
        let count = be_u32(body, 4)? as usize;
        let entry_len = if version == 1 { 20 } else { 12 };
        if count > (body.len().saturating_sub(8)) / entry_len {
            return None;
        }
        let mut edits = Vec::with_capacity(count);
        for i in 0..count {
            let at = 8 + i * entry_len;
            let (duration, media_time, rate_at) = if version == 1 {
                (be_u64(body, at)?, be_u64(body, at + 8)? as i64, at + 16)
            } else {
                (
                    u64::from(be_u32(body, at)?),
                    i64::from(be_u32(body, at + 4)? as i32),
                    at + 8,
                )
            };
            let rate = i16::from_be_bytes(body.get(rate_at..rate_at + 2)?.try_into().ok()?);
            edits.push((duration, media_time, rate));
        }
        Some(edits)
    }

    #[cfg(test)]
    mod tests {
        use super::super::super::test_files::*;
        use super::*;

        #[test]
        fn reads_the_edit_list_of_the_sync_clip() {
            // Track 0 is the video, track 1 the AAC audio with 1024 samples of priming.
            let path = test_video("av_sync_flash_beep.mp4");
            assert_eq!(audio_track_edits(&path, 0), None);
            let edits = audio_track_edits(&path, 1).expect("audio edits");
            eprintln!("{edits:?}");
            assert_eq!(edits.leading_empty_s, 0.0);
            assert_eq!(edits.media_time, 1024);
            assert_eq!(edits.media_timescale, 48_000);
        }

        #[test]
        fn ignores_files_that_are_not_mp4() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("noise.mp4");
            std::fs::write(&path, noise_bytes(4096, 7)).unwrap();
            assert_eq!(audio_track_edits(&path, 0), None);
            assert_eq!(audio_track_edits(&dir.path().join("missing"), 0), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_files::*;
    use super::*;

    const RATE: f64 = OUTPUT_SAMPLE_RATE as f64;

    fn rms(s: &[f32]) -> f64 {
        (s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len() as f64).sqrt()
    }

    fn dbfs(s: &[f32]) -> f64 {
        20.0 * rms(s).max(1e-12).log10()
    }

    #[test]
    fn sync_clip_audio_is_16k_mono_with_beeps_on_the_second() {
        let path = test_video("av_sync_flash_beep.mp4");
        let start = std::time::Instant::now();
        let samples = decode_all(&path).unwrap().expect("audio");
        eprintln!("decoded 15 s of AAC to 16 kHz in {:?}", start.elapsed());
        let decoder = AudioDecoder::open(&path).unwrap().unwrap();
        let info = decoder.info();
        assert_eq!(info.sample_rate, 48_000);
        assert_eq!(info.channels, 1);
        assert_eq!(info.codec, "aac");
        eprintln!(
            "info {info:?}, {} samples = {} s",
            samples.len(),
            samples.len() as f64 / RATE
        );
        let len_s = samples.len() as f64 / RATE;
        assert!((len_s - 15.0).abs() < 0.05, "length {len_s} s");

        // Onset of the first beep: the first sample above 0.1 after 0.5 s.
        let from = (0.5 * RATE) as usize;
        let onset = from + samples[from..].iter().position(|x| x.abs() > 0.1).unwrap();
        let onset_s = onset as f64 / RATE;
        eprintln!("first beep onset at {onset_s:.5} s");
        assert!((onset_s - 1.0).abs() < 0.005, "onset at {onset_s} s");

        for k in 1..=14 {
            let at = k * OUTPUT_SAMPLE_RATE as usize;
            let onset_err_ms = (beep_onset_s(&samples, k) - k as f64) * 1000.0;
            assert!(
                onset_err_ms.abs() < 5.0,
                "beep {k} onset off by {onset_err_ms} ms"
            );
            // 80 ms beep of amplitude 0.5: RMS 0.5/√2.
            let beep = &samples[at..at + (0.08 * RATE) as usize];
            let r = rms(beep);
            assert!(
                (r / (0.5 / 2f64.sqrt()) - 1.0).abs() < 0.1,
                "beep {k} rms {r}"
            );
            // Between the beeps: silence.
            let quiet = &samples[at + (0.2 * RATE) as usize..at + (0.9 * RATE) as usize];
            let level = dbfs(quiet);
            assert!(level < -60.0, "between beeps {k}: {level} dBFS");
        }
        let lead = dbfs(&samples[..(0.9 * RATE) as usize]);
        assert!(lead < -60.0, "before the first beep: {lead} dBFS");
    }

    /// Onset of beep `k` (1 s apart, from 1 s): the first sample above 0.1 from 50 ms early.
    fn beep_onset_s(samples: &[f32], k: usize) -> f64 {
        let from = k * OUTPUT_SAMPLE_RATE as usize - 800;
        let onset = from + samples[from..].iter().position(|x| x.abs() > 0.1).unwrap();
        onset as f64 / RATE
    }

    #[test]
    fn symphonia_alone_keeps_the_aac_priming() {
        // If this fails, symphonia has learnt to apply MP4 edit lists itself, and `mp4_edits`
        // must go, or the priming is trimmed twice.
        let path = test_video("av_sync_flash_beep.mp4");
        let mut decoder = AudioDecoder::open_with(&path, false).unwrap().unwrap();
        let mut samples = Vec::new();
        while let Some(chunk) = decoder.next_chunk(1 << 16).unwrap() {
            samples.extend_from_slice(&chunk);
        }
        let late_ms = (beep_onset_s(&samples, 1) - 1.0) * 1000.0;
        eprintln!(
            "without the edit list: beep 1 at +{late_ms:.2} ms, {} s long",
            samples.len() as f64 / RATE
        );
        assert!(
            (late_ms - 1024.0 / 48.0).abs() < 0.2,
            "late by {late_ms} ms"
        );
    }

    #[test]
    fn chunks_add_up_and_rewind_restarts() {
        let path = test_video("av_sync_flash_beep.mp4");
        let whole = decode_all(&path).unwrap().unwrap();
        let mut decoder = AudioDecoder::open(&path).unwrap().unwrap();
        let mut pieces = Vec::new();
        while let Some(chunk) = decoder.next_chunk(333).unwrap() {
            assert!(!chunk.is_empty() && chunk.len() <= 333);
            pieces.extend_from_slice(&chunk);
            assert_eq!(decoder.position_samples(), pieces.len() as u64);
        }
        assert_eq!(pieces, whole);
        assert_eq!(decoder.skipped_packets(), 0);
        assert_eq!(decoder.next_chunk(100).unwrap(), None);

        decoder.rewind().unwrap();
        assert_eq!(decoder.position_samples(), 0);
        let first = decoder.next_chunk(4000).unwrap().unwrap();
        assert_eq!(first[..], whole[..first.len()]);
    }

    #[test]
    fn demo_clip_audio_is_40_s() {
        let path = demo_clip();
        let decoder = AudioDecoder::open(&path).unwrap().expect("audio");
        assert_eq!(decoder.info().sample_rate, 16_000);
        let samples = decode_all(&path).unwrap().unwrap();
        let len_s = samples.len() as f64 / RATE;
        eprintln!("demo audio {len_s} s, info {:?}", decoder.info());
        assert!((len_s - 40.0).abs() < 0.05, "length {len_s} s");
        // Voices in the first part, quiet room (about -55 dBFS) at the end.
        let speech = dbfs(&samples[..(24.0 * RATE) as usize]);
        let room = dbfs(&samples[(26.0 * RATE) as usize..(39.0 * RATE) as usize]);
        eprintln!("speech {speech:.1} dBFS, room {room:.1} dBFS");
        assert!(speech > -35.0, "speech {speech}");
        assert!(room < -45.0 && room > -70.0, "room {room}");
    }

    #[test]
    fn a_video_only_file_has_no_audio() {
        let path = test_video("frame_counter_gop25.mp4");
        assert!(AudioDecoder::open(&path).unwrap().is_none());
        assert_eq!(decode_all(&path).unwrap(), None);
    }

    fn write_wav(path: &Path, rate: u32, channels: u16, frames: &[Vec<i16>]) {
        let data_len = (frames.len() * channels as usize * 2) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data_len).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_len.to_le_bytes());
        for frame in frames {
            for s in frame {
                b.extend_from_slice(&s.to_le_bytes());
            }
        }
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn stereo_44k1_wav_is_averaged_and_resampled_without_shift() {
        // 2 s at 44.1 kHz: left a 0.25 sine at 500 Hz from 1 s, right silent.
        let rate = 44_100u32;
        let frames: Vec<Vec<i16>> = (0..2 * rate)
            .map(|n| {
                let t = f64::from(n) / f64::from(rate);
                let left = if t >= 1.0 {
                    0.25 * (2.0 * std::f64::consts::PI * 500.0 * (t - 1.0)).sin()
                } else {
                    0.0
                };
                vec![(left * 32767.0).round() as i16, 0]
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        write_wav(&path, rate, 2, &frames);

        let decoder = AudioDecoder::open(&path).unwrap().unwrap();
        assert_eq!(decoder.info().channels, 2);
        assert_eq!(decoder.info().sample_rate, 44_100);
        let samples = decode_all(&path).unwrap().unwrap();
        assert_eq!(samples.len(), 32_000);
        // Averaging: amplitude 0.125, RMS 0.125/√2.
        let r = rms(&samples[17_000..31_000]);
        assert!((r - 0.125 / 2f64.sqrt()).abs() < 0.005, "rms {r}");
        // No shift: the tone starts at 1 s. An FFT resampler rings a little before onsets,
        // so look for the first clearly audible sample.
        let onset = samples.iter().position(|x| x.abs() > 0.02).unwrap();
        let onset_ms = (onset as f64 / RATE - 1.0) * 1000.0;
        eprintln!("44.1 kHz WAV tone onset at {onset_ms:+.2} ms");
        assert!(onset_ms.abs() < 1.0, "onset {onset_ms} ms");
    }

    #[test]
    fn wav_at_16k_passes_through_untouched() {
        let frames: Vec<Vec<i16>> = (0..16_000i32)
            .map(|n| vec![(n % 200 - 100) as i16 * 100])
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.wav");
        write_wav(&path, 16_000, 1, &frames);
        let samples = decode_all(&path).unwrap().unwrap();
        assert_eq!(samples.len(), 16_000);
        for (s, f) in samples.iter().zip(&frames) {
            assert!((s - f32::from(f[0]) / 32768.0).abs() < 1e-6);
        }
    }
}
