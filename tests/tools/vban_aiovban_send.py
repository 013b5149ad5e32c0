#!/usr/bin/env python3
"""Sends a sine wave as a VBAN audio stream with the third-party `aiovban` package (PyPI,
MIT; tested with aiovban==1.1.1), paced in real time. Used by actors/tests/vban.rs so that the
receiver is tested against a VBAN implementation we did not write.

  python3 tests/tools/vban_aiovban_send.py --port 6980 --stream Stream1 \
      [--host 127.0.0.1] [--rate 48000] [--channels 2] [--format int16|float32] \
      [--freq 1000] [--amp 0.5] [--seconds 3] [--samples 256] [--text "Strip[0].Mute=1"]
  python3 tests/tools/vban_aiovban_send.py --port 6980 --stream Stream1 --wav FILE.wav

--wav sends a 16-bit PCM WAV file (read with the standard `wave` module) instead of a sine, at
the file's own rate and channel count, paced in real time; --rate, --channels, --format,
--freq, --amp and --seconds are then ignored (the summary reports the file's values).

Every channel carries the same sine. --samples is reduced until a packet fits VBAN's 1436-byte
payload limit. --text first sends one VBAN text (sub-protocol 0x40) packet on the same port,
a legitimate packet that is not audio. Prints one JSON line at the end, e.g.
  {"packets": 563, "samples_per_packet": 256, "rate": 48000, "channels": 2, "format": "int16",
   "stream": "Stream1", "first_counter": 1, "aiovban": "1.1.1", "elapsed_s": 3.2}
Exits with status 3 and a message naming the pip command when aiovban is missing.
"""
import argparse
import asyncio
import importlib.metadata
import json
import math
import struct
import sys
import time
import wave

try:
    from aiovban.asyncio import AsyncVBANClient
    from aiovban.enums import VBANSampleRate
    from aiovban.packet import VBANPacket
    from aiovban.packet.headers.audio import BitResolution, Codec, VBANAudioHeader
except ImportError as e:  # pragma: no cover - the message is the point
    print(f"aiovban is not installed ({e}): pip install aiovban==1.1.1", file=sys.stderr)
    sys.exit(3)

FORMATS = {
    "int16": (BitResolution.INT16, 2, lambda x: struct.pack("<h", max(-32768, min(32767, round(x * 32767))))),
    "float32": (BitResolution.FLOAT32, 4, lambda x: struct.pack("<f", x)),
}


def read_wav(path):
    """(rate, channels, frames as little-endian int16 bytes) of a 16-bit PCM WAV."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
            sys.exit(f"{path}: only 16-bit PCM WAV files can be sent")
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


async def main(a):
    wav = None
    if a.wav:
        a.rate, a.channels, wav = read_wav(a.wav)
        a.format = "int16"
        a.seconds = len(wav) / (2 * a.channels) / a.rate
    rate = next((r for r in VBANSampleRate if r.rate == a.rate), None)
    if rate is None:
        sys.exit(f"sample rate {a.rate} has no VBAN index")
    bits, width, pack = FORMATS[a.format]
    n = max(1, min(256, a.samples))
    while n * a.channels * width > 1436:
        n -= 1

    client = AsyncVBANClient()
    device = await client.register_device(a.host, a.port)
    if a.text:
        text = await device.text_stream(a.stream)
        await text.send_text(a.text)
    stream = await device.send_stream(a.stream)

    total = len(wav) // (2 * a.channels) if wav is not None else int(a.seconds * a.rate)
    step = 2 * math.pi * a.freq / a.rate
    t0 = time.monotonic()
    sent = packets = 0
    while sent < total:
        frames = min(n, total - sent)
        if frames < n:
            # Every packet of a stream has the same size here; pad the last one with silence.
            frames = n
        payload = bytearray()
        if wav is not None:
            frame_bytes = 2 * a.channels
            chunk = wav[sent * frame_bytes : (sent + frames) * frame_bytes]
            payload += chunk + bytes(frames * frame_bytes - len(chunk))
        else:
            for i in range(frames):
                k = sent + i
                v = a.amp * math.sin(step * k) if k < total else 0.0
                payload += pack(v) * a.channels
        header = VBANAudioHeader(
            sample_rate=rate,
            samples_per_frame=frames,
            channels=a.channels,
            bit_resolution=bits,
            codec=Codec.PCM,
            streamname=a.stream,
        )
        await stream.send_packet(VBANPacket(header, bytes(payload)))
        sent += frames
        packets += 1
        delay = t0 + sent / a.rate - time.monotonic()
        # Yield even when behind, so that aiovban's sending task drains its buffer.
        await asyncio.sleep(max(0.0, delay))
    # aiovban sends from a background task; give it time to empty its buffer before the loop
    # (and the task) ends. It keeps up in real time, so a short wait is plenty.
    await asyncio.sleep(0.2)
    summary = {
        "packets": packets,
        "samples_per_packet": n,
        "rate": a.rate,
        "channels": a.channels,
        "format": a.format,
        "stream": a.stream,
        # aiovban's outgoing streams count from 1.
        "first_counter": 1,
        "aiovban": importlib.metadata.version("aiovban"),
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
    if a.wav:
        summary["wav"] = a.wav
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6980)
    ap.add_argument("--stream", default="Stream1")
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--format", choices=sorted(FORMATS), default="int16")
    ap.add_argument("--freq", type=float, default=1000.0)
    ap.add_argument("--amp", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--text", default=None)
    ap.add_argument("--wav", default=None, help="send this 16-bit PCM WAV instead of a sine")
    asyncio.run(main(ap.parse_args()))
