#!/usr/bin/env python3
"""Mixes the 60 s sound tracks of the scenario clips (standard library only, deterministic).

Usage: mix_audio.py WAVDIR OUTDIR [CLIP...]

WAVDIR holds the sources as 16 kHz mono 16-bit WAV (made by scripts/make-scenarios.sh from
sources/*.flac and espeak-ng). Writes OUTDIR/<clip>.wav (16 kHz mono 16-bit) and prints one line
per clip with its levels.

Levels are set in dBFS: an event's level is the RMS of its *active* part (20 ms frames within
25 dB of its loudest frame), so speech at -26 means -26 dBFS RMS while the person talks. Room tone
levels are plain RMS. Nothing is peak-normalised; the result is only checked for clipping.
"""
import math
import os
import random
import struct
import sys
import wave

SR = 16000
DUR = 60.0
N = int(SR * DUR)


def load(wavdir, name):
    with wave.open(os.path.join(wavdir, name + ".wav"), "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2, name
        raw = w.readframes(w.getnframes())
    return [v / 32768.0 for v in struct.unpack("<%dh" % (len(raw) // 2), raw)]


def save(path, x):
    peak = max(abs(v) for v in x)
    if peak >= 0.999:
        raise SystemExit("%s clips (peak %.3f)" % (path, peak))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(struct.pack("<%dh" % len(x), *(int(round(v * 32767)) for v in x)))


def db(v):
    return 20 * math.log10(max(v, 1e-10))


def rms(x):
    return math.sqrt(sum(v * v for v in x) / max(len(x), 1))


def frames_rms(x, hop=320):
    return [rms(x[i:i + hop]) for i in range(0, len(x) - hop + 1, hop)]


def active_rms(x):
    f = frames_rms(x)
    if not f:
        return rms(x)
    top = max(f)
    act = [v for v in f if v > top * 10 ** (-25 / 20)]
    if not act:
        return 0.0
    return math.sqrt(sum(v * v for v in act) / len(act))


def fade(x, t_in=0.01, t_out=0.05):
    x = list(x)
    a, b = int(t_in * SR), int(t_out * SR)
    for i in range(min(a, len(x))):
        x[i] *= i / a
    for i in range(min(b, len(x))):
        x[-1 - i] *= i / b
    return x


def add(buf, x, at_s, level_db, rel=False):
    """Adds x at at_s seconds, scaled so its active RMS is level_db dBFS (or by level_db dB if rel)."""
    g = 10 ** (level_db / 20) if rel else 10 ** (level_db / 20) / max(active_rms(x), 1e-9)
    o = int(at_s * SR)
    for i, v in enumerate(x):
        j = o + i
        if 0 <= j < len(buf):
            buf[j] += g * v


def cut(x, t0, t1):
    return fade(x[int(t0 * SR):int(t1 * SR)])


def lowpass(x, fc):
    """One-pole low-pass, twice (a distant/through-the-wall sound)."""
    a = math.exp(-2 * math.pi * fc / SR)
    for _ in range(2):
        y, out = 0.0, []
        for v in x:
            y = (1 - a) * v + a * y
            out.append(y)
        x = out
    return x


def highpass(x, fc):
    lp = lowpass(x, fc)
    return [a - b for a, b in zip(x, lp)]


def noise(rng, kind, level_db, n=N):
    """Room tone: 'pink' (Kellet filter), 'brown' (leaky integrator), 'hum' (fridge/fan: pink + 50 Hz
    harmonics), RMS = level_db dBFS."""
    out = []
    if kind in ("pink", "hum"):
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = 0.0
        for _ in range(n):
            w = rng.gauss(0, 1)
            b0 = 0.99886 * b0 + w * 0.0555179
            b1 = 0.99332 * b1 + w * 0.0750759
            b2 = 0.96900 * b2 + w * 0.1538520
            b3 = 0.86650 * b3 + w * 0.3104856
            b4 = 0.55000 * b4 + w * 0.5329522
            b5 = -0.7616 * b5 - w * 0.0168980
            out.append(b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362)
            b6 = w * 0.115926
        if kind == "hum":
            r = rms(out)
            out = [v / r * 0.5 + 0.8 * math.sin(2 * math.pi * 50 * i / SR)
                   + 0.4 * math.sin(2 * math.pi * 100 * i / SR + 1.0)
                   + 0.2 * math.sin(2 * math.pi * 150 * i / SR + 2.0) for i, v in enumerate(out)]
    elif kind == "brown":
        y = 0.0
        for _ in range(n):
            y = 0.995 * y + rng.gauss(0, 1)
            out.append(y)
        out = highpass(out, 20)
    g = 10 ** (level_db / 20) / rms(out)
    return [v * g for v in out]


def loop(x, n, xf=0.25):
    """Loops x to n samples with cross-fades of xf seconds (continuous appliances)."""
    k = int(xf * SR)
    out = list(x)
    while len(out) < n:
        for i in range(k):
            a = i / k
            out[-k + i] = out[-k + i] * (1 - a) + x[i] * a
        out.extend(x[k:])
    return out[:n]


def phrases(x, min_gap=0.18, thr_db=-30):
    """Splits speech into phrases at pauses >= min_gap s (frames 30 dB under the loudest)."""
    f = frames_rms(x)
    top = max(f)
    on = [v > top * 10 ** (thr_db / 20) for v in f]
    hop, gap = 320, int(min_gap * SR / 320)
    segs, start, quiet = [], None, 0
    for i, a in enumerate(on + [False] * (gap + 1)):
        if a:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet > gap:
                end = i - quiet + 1
                if end - start >= 10:  # >= 0.2 s
                    segs.append(fade(x[max(0, start * hop - 800):end * hop + 1600], 0.02, 0.08))
                start, quiet = None, 0
    return segs


def turns(segs, rng, lo, hi):
    """Groups consecutive phrases into turns of lo..hi seconds (joined with 0.25-0.5 s pauses)."""
    out, cur = [], []
    target = rng.uniform(lo, hi)
    for s in segs:
        if cur and sum(len(c) for c in cur) / SR + len(s) / SR > target + 1.0:
            out.append(cur)
            cur, target = [], rng.uniform(lo, hi)
        cur.append(s)
    if cur:
        out.append(cur)
    res = []
    for t in out:
        j = []
        for s in t:
            if j:
                j.extend([0.0] * int(rng.uniform(0.25, 0.5) * SR))
            j.extend(s)
        res.append(j)
    return res


def page_turn(rng):
    """A synthetic paper rustle: 0.35-0.6 s of band-limited noise with a rough envelope."""
    n = int(rng.uniform(0.35, 0.6) * SR)
    x = highpass(lowpass([rng.gauss(0, 1) for _ in range(n)], 4500), 800)
    env = [math.sin(math.pi * i / n) ** 2 * (0.5 + 0.5 * abs(math.sin(i / SR * rng.uniform(20, 40))))
           for i in range(n)]
    return [a * b for a, b in zip(x, env)]


def events(buf, rng, srcs, t0, t1, every, level, jitter_db=4, excerpt=(0.4, 1.4)):
    """Scatters short excerpts of the sources from t0 to t1, one every `every`=(lo, hi) s."""
    t = t0 + rng.uniform(0, every[1])
    while t < t1:
        x = rng.choice(srcs)
        d = rng.uniform(*excerpt)
        # Draw excerpts until one holds an event (an active part above -60 dBFS before scaling).
        for _ in range(50):
            s = rng.uniform(0, max(0.0, len(x) / SR - d))
            e = cut(x, s, s + d)
            if max(abs(v) for v in e) > 0.01:
                break
        add(buf, e, t, level + rng.uniform(-jitter_db, jitter_db))
        t += d + rng.uniform(*every)


def dialogue(buf, rng, voices, t0, t1, levels, gap=(0.2, 1.0), turn=(1.5, 5.0), overlap=0.15):
    """Voices alternate (A B A B ... or A B C ...) with short gaps and occasional overlaps."""
    pools = [turns(v, rng, *turn) for v in voices]
    idx = [0] * len(voices)
    t, k = t0, 0
    while t < t1 - 1.0:
        v = k % len(voices)
        pool = pools[v]
        x = pool[idx[v] % len(pool)]
        idx[v] += 1
        if t + len(x) / SR > t1:
            break
        add(buf, x, t, levels[v] + rng.uniform(-2, 2))
        t += len(x) / SR
        t += -rng.uniform(0.2, 0.6) if rng.random() < overlap else rng.uniform(*gap)
        k += 1


def phone_side(buf, rng, voice, t0, t1, level, turn=(2.0, 6.0), silence=(2.0, 5.0)):
    """One voice talking in turns, separated by silences (the other side of the call)."""
    pool = turns(voice, rng, *turn)
    t, i = t0, 0
    while t < t1 - 1.5:
        x = pool[i % len(pool)]
        i += 1
        if t + len(x) / SR > t1:
            x = fade(x[:int((t1 - t) * SR)])
        add(buf, x, t, level + rng.uniform(-2, 2))
        t += len(x) / SR + rng.uniform(*silence)


def build(name, L):
    rng = random.Random("cav-scenarios-" + name)
    b = None
    if name == "asleep_1":  # quiet bedroom at night: faint pink room tone
        b = noise(rng, "pink", -52)
    elif name == "asleep_2":  # a fan running (brown noise) and one far dog bark through the wall
        b = noise(rng, "brown", -49)
        add(b, lowpass(L["dog_bark"], 900), 37.0, -50)
    elif name == "asleep_3":  # very quiet room, fridge hum from another room
        b = noise(rng, "hum", -55)
    elif name == "at_table_1":  # dishes, glasses, cutlery and bites
        b = noise(rng, "pink", -48)
        events(b, rng, [L["glass_dishes"], L["waterglass_gah_seq"]], 0.5, 59, (1.5, 4.5), -30)
        events(b, rng, [L["apple_bite"]], 2.0, 59, (4.0, 9.0), -33, excerpt=(0.5, 1.0))
    elif name == "at_table_2":  # mostly bites and glass, sparser, a short remark or two
        b = noise(rng, "brown", -50)
        events(b, rng, [L["apple_bite"]], 0.5, 59, (2.0, 5.0), -31, excerpt=(0.4, 1.2))
        events(b, rng, [L["glass_dishes"]], 3.0, 59, (4.0, 8.0), -28)
        for t, x in ((21.0, L["espeak_table_a"]), (44.5, L["espeak_table_b"])):
            add(b, x, t, -36)
    elif name == "at_table_3":  # cutlery on plates (knocks, glass taps) over a fridge hum
        b = noise(rng, "hum", -50)
        events(b, rng, [L["waterglass_gah_seq"], L["hammer_knock"]], 0.5, 59, (1.0, 3.5), -34,
               excerpt=(0.2, 0.6))
        events(b, rng, [L["glass_dishes"], L["apple_bite"]], 1.0, 59, (3.0, 7.0), -30)
    elif name == "reading_1":  # silent reading, a page turn every 15-35 s
        b = noise(rng, "pink", -50)
        t = rng.uniform(5, 12)
        while t < 58:
            add(b, page_turn(rng), t, -40 + rng.uniform(-3, 3))
            t += rng.uniform(15, 35)
    elif name == "reading_2":  # quieter room with a fan, page turns, one short sniff-like rustle
        b = noise(rng, "brown", -52)
        for t in (9.0, 31.5, 52.0):
            add(b, page_turn(rng), t, -43 + rng.uniform(-2, 2))
    elif name == "reading_3":  # room with fridge hum, a far dog bark, page turns, a cup set down
        b = noise(rng, "hum", -51)
        add(b, lowpass(L["dog_bark"], 1500), 18.0, -44)
        add(b, cut(L["glass_dishes"], 0.0, 0.6), 40.0, -40)
        for t in (6.5, 27.0, 49.0):
            add(b, page_turn(rng), t, -41)
    elif name == "on_phone_1":  # phone rings, then one side of a call (Allison, real recording)
        b = noise(rng, "pink", -50)
        add(b, L["phone_ring"][:int(3.3 * SR)], 0.5, -30)
        phone_side(b, rng, phrases(L["allison_prompts"]), 5.5, 60, -26)
    elif name == "on_phone_2":  # no ring; one espeak-ng male voice in turns
        b = noise(rng, "brown", -50)
        phone_side(b, rng, phrases(L["espeak_phone_m"]), 1.0, 60, -28)
    elif name == "on_phone_3":  # ring, then one side in French (June, real recording)
        b = noise(rng, "hum", -52)
        add(b, L["phone_ring"][:int(1.8 * SR)], 0.3, -33)
        phone_side(b, rng, phrases(L["june_prompts"]), 3.5, 60, -24, silence=(2.0, 4.5))
    elif name == "in_conversation_1":  # two synthetic English voices (espeak-ng), lively
        b = noise(rng, "pink", -49)
        dialogue(b, rng, [phrases(L["espeak_conv_a"]), phrases(L["espeak_conv_b"])], 0.5, 60,
                 [-25, -28])
        add(b, L["giggle"], 33.0, -30)
    elif name == "in_conversation_2":  # two real voices: Allison (en) and tuxpaint speakers + male
        b = noise(rng, "brown", -51)
        dialogue(b, rng, [phrases(L["allison_prompts"]), phrases(L["espeak_conv_c"]),
                          phrases(L["speech_tuxpaint_words"])], 0.3, 60, [-27, -24, -29])
    elif name == "in_conversation_3":  # French: June (real) and an espeak-ng male voice
        b = noise(rng, "hum", -52)
        dialogue(b, rng, [phrases(L["june_prompts"]), phrases(L["espeak_conv_fr"])], 0.5, 60,
                 [-23, -27], overlap=0.25)
    elif name == "busy_1":  # vacuum cleaning, with knocks against furniture
        b = noise(rng, "pink", -46)
        vac = loop(L["vacuum_cleaner"], int(48 * SR))
        add(b, fade(vac, 1.0, 1.5), 4.0, -24)
        events(b, rng, [L["hammer_knock"]], 8, 55, (4.0, 9.0), -30, excerpt=(0.3, 0.6))
    elif name == "busy_2":  # laundry and kitchen: washing machine, kettle, clattering dishes
        b = noise(rng, "brown", -47)
        add(b, fade(loop(L["washing_machine"], int(60 * SR)), 0.5, 0.5), 0.0, -32)
        add(b, fade(loop(L["kettle"], int(22 * SR)), 2.0, 1.0), 25.0, -30)
        events(b, rng, [L["glass_dishes"], L["waterglass_gah_seq"]], 0.5, 59, (0.8, 2.5), -27)
    elif name == "busy_3":  # typing in bursts, knocks, a dog barking, footsteps-like knocks
        b = noise(rng, "hum", -47)
        typing = L["typing_bucklespring"]
        t = 1.0
        while t < 57:
            d = rng.uniform(3, 8)
            s = rng.uniform(0, 10 - min(d, 9.5))
            add(b, cut(typing, s, s + min(d, 9.5)), t, -31)
            t += d + rng.uniform(1, 4)
        events(b, rng, [L["hammer_knock"], L["camera_shutter"]], 2, 58, (2.5, 6.0), -29,
               excerpt=(0.3, 0.8))
        add(b, L["dog_bark"], 20.0, -27)
        add(b, L["dog_bark"], 46.0, -30)
    elif name == "inactive_1":  # nobody there: very faint room tone
        b = noise(rng, "pink", -57)
    elif name == "inactive_2":  # empty room, washing machine running in another room
        b = noise(rng, "brown", -54)
        add(b, fade(lowpass(loop(L["washing_machine"], int(40 * SR)), 700), 3, 3), 10.0, -47)
    elif name == "inactive_3":  # empty room, fridge hum, a single far knock
        b = noise(rng, "hum", -50)
        add(b, lowpass(cut(L["hammer_knock"], 0, 0.5), 1200), 41.0, -46)
    else:
        raise SystemExit("unknown clip " + name)
    return b


CLIPS = [c + "_" + str(i) for c in ("asleep", "at_table", "reading", "on_phone", "in_conversation",
                                      "busy", "inactive") for i in (1, 2, 3)]


def main():
    wavdir, outdir = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or CLIPS
    L = {}
    for f in sorted(os.listdir(wavdir)):
        if f.endswith(".wav"):
            L[f[:-4]] = load(wavdir, f[:-4])
    for name in names:
        x = build(name, L)[:N]
        save(os.path.join(outdir, name + ".wav"), x)
        f = frames_rms(x, 1600)
        f.sort()
        print("%-18s rms %6.1f dBFS  peak %6.1f dBFS  p10 %6.1f  p90 %6.1f dBFS (100 ms frames)" % (
            name, db(rms(x)), db(max(abs(v) for v in x)), db(f[len(f) // 10]),
            db(f[9 * len(f) // 10])), flush=True)


if __name__ == "__main__":
    main()
