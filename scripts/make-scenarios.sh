#!/usr/bin/env bash
# Rebuilds the labelled scenario development set in tests/data/scenarios/ (issue 7):
# 21 clips of 60 s (3 per class), labels.csv, from the small sources in
# tests/data/scenarios/sources/ (see tests/data/scenarios/README.md for provenance and licences).
#
# Needs (Debian 12 packages): ffmpeg (5.1, with libx264 and the native AAC encoder),
# espeak-ng (1.51), python3 (standard library only).
#
# Usage:
#   scripts/make-scenarios.sh                 # build the clips from sources/ (deterministic)
#   scripts/make-scenarios.sh --import [DIR]  # first (re)create sources/ from ../shared/testdata
#                                             # (or DIR) and two Debian packages fetched with
#                                             # `apt-get download` (needs network), then build
# Environment: JOBS (parallel ffmpeg encodes, default 1), ONLY (space-separated clip names).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$ROOT/tests/data/scenarios
S=$D/sources
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

import_sources() {
  local SH=${1:-$ROOT/../shared/testdata}
  mkdir -p "$S"
  # Pictures (copied unchanged).
  cp "$SH/images/messi5.jpg" "$SH/images/basketball1.png" "$S/"
  # The astronaut portrait: skimage/data/astronaut.png (scikit-image 0.26.0 wheel, NASA, public domain).
  local AST=${ASTRONAUT_PNG:-/tmp/skimg/astronaut.png}
  [ -f "$AST" ] || { python3 -m pip download --no-deps scikit-image==0.26.0 -d "$W/whl" >/dev/null &&
    (cd "$W" && python3 -c "import zipfile,glob;zipfile.ZipFile(glob.glob('whl/*.whl')[0]).extract('skimage/data/astronaut.png','.')") &&
    AST=$W/skimage/data/astronaut.png; }
  cp "$AST" "$S/astronaut.png"
  # Pedestrians: vtest.avi (8 MB MS-MPEG4) re-encoded once to a small H.264 copy at 384x288, 10 fps.
  ffmpeg -v error -y -i "$SH/video/vtest.avi" -vf scale=384:288 -r 10 -c:v libx264 -preset slow \
    -crf 29 -g 20 -pix_fmt yuv420p -an "$S/vtest_384.mp4"
  # The same place with nobody in it: the per-pixel temporal median of the pedestrians video
  # (255 frames around frame 400; the walkers move on, the empty pavement stays). Slow (4 min), so
  # only made when missing.
  [ -f "$S/vtest_empty.jpg" ] || ffmpeg -v error -y -i "$SH/video/vtest.avi" -vf "scale=384:288,tmedian=radius=127,select='eq(n\,400)'" \
    -frames:v 1 -q:v 3 "$S/vtest_empty.jpg"
  # Sounds from the shared audio set (16 kHz mono), stored as FLAC (lossless).
  for f in apple_bite glass_dishes waterglass_gah_seq phone_ring vacuum_cleaner washing_machine kettle \
           typing_bucklespring hammer_knock dog_bark giggle speech_tuxpaint_words camera_shutter; do
    ffmpeg -v error -y -i "$SH/audio/$f.wav" -c:a flac "$S/$f.flac"
  done
  # Two real recorded voices: Asterisk prompts by Allison Smith (en-US) and June Wallack (fr-CA),
  # Debian packages asterisk-core-sounds-en-wav / -fr-wav 1.6.1-1 (CC-BY-SA-3.0), 8 kHz sources.
  (cd "$W" && apt-get download asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav >/dev/null 2>&1 &&
    for deb in *.deb; do dpkg -x "$deb" root; done)
  local P=$W/root/usr/share/asterisk/sounds
  voice_cat() { # OUT DIR prompts...
    local out=$1 dir=$2; shift 2; : > "$W/list.txt"
    for p in "$@"; do echo "file '$dir/$p.wav'" >> "$W/list.txt"; done
    ffmpeg -v error -y -f concat -safe 0 -i "$W/list.txt" -ar 8000 -ac 1 -c:a flac "$out"
  }
  voice_cat "$S/allison_prompts.flac" "$P/en_US_f_Allison" demo-echotest basic-pbx-ivr-main demo-abouttotry dir-intro
  voice_cat "$S/june_prompts.flac" "$P/fr_CA_f_June" demo-congrats demo-echotest vm-msginstruct
}

if [ "${1:-}" = "--import" ]; then import_sources "${2:-}"; fi

# ---------------------------------------------------------------------------------------------
# 1. Sound sources as 16 kHz mono WAV, plus synthetic voices (espeak-ng 1.51).
A=$W/wav; mkdir -p "$A" "$W/clips"
for f in "$S"/*.flac; do b=$(basename "$f" .flac); ffmpeg -v error -y -i "$f" -ar 16000 -ac 1 -c:a pcm_s16le "$A/$b.wav"; done
say() { # NAME VOICE SPEED TEXT
  espeak-ng -v "$2" -s "$3" -a 100 -w "$W/$1.raw.wav" "$4"
  ffmpeg -v error -y -i "$W/$1.raw.wav" -ar 16000 -ac 1 -c:a pcm_s16le "$A/$1.wav"
}
say espeak_table_a en-gb+f3 150 "Could you pass me the salt, please?"
say espeak_table_b en-us+m3 150 "Thanks. The soup is really good today."
say espeak_phone_m en-us+m3 155 "Hello? Yes, it's me. I was just about to call you. \
No, no, it's fine, I'm at home. Did you get my message about Saturday? \
Right. Well, I thought we could meet at the station at ten. \
Hmm. Yes. That makes sense. And what about your brother, is he coming too? \
Oh, I see. I didn't know that. Is he feeling better now? \
Good, I'm glad to hear it. Listen, I'll bring the tickets and some sandwiches. \
Yes, exactly. Okay. Okay, sure. Let me write that down. \
Ten o'clock, platform four. Perfect. Anything else? \
No, I think that's everything. Give my love to everyone. See you on Saturday then. Bye."
say espeak_conv_a en-us 165 "So how was the trip? Did you get there on time? \
Really? That sounds awful. What did you do then? \
I would have taken a taxi. Anyway, how was the hotel? \
That's nice. We stayed there two years ago, remember? \
Yes, and the breakfast was amazing. Are you going back next summer? \
Let's go together then. I'll ask my sister too."
say espeak_conv_b en-gb+f3 160 "It was fine in the end, but the train was delayed for an hour. \
We waited at the station and had a coffee. There was nothing else to do. \
Honestly, a taxi would have cost a fortune. The hotel was lovely though, right by the sea. \
Oh yes, the one with the blue shutters! I had forgotten about that. \
Maybe. It depends on work. I would love to, if the prices are not too high. \
Great idea. She always knows the best restaurants."
say espeak_conv_c en-us+m7 150 "I think we should paint the kitchen first. \
The walls are in a terrible state, and the ceiling too. \
We could do it next weekend if the weather is good. \
I'll buy the paint tomorrow. White, or maybe a light green? \
No, not yellow again, please. Let's keep it simple."
say espeak_conv_fr fr+m2 150 "Bonjour! Tu as passé un bon week-end? \
Nous sommes allés à la montagne avec les enfants. \
Il faisait très beau, mais un peu froid le matin. \
Et toi, qu'est-ce que tu as fait? \
Ah bon? Je ne savais pas que tu aimais le jardinage. \
On pourrait se voir mercredi pour déjeuner, si tu veux."

# 2. Sound tracks (deterministic, see mix_audio.py).
python3 "$D/mix_audio.py" "$A" "$W/clips" ${ONLY:-} | tee "$W/levels.txt"

# 3. Pictures and motion. Frames are 480x360, 10 fps. Expressions use t (seconds).
#    Motion helpers: small random-looking drifts are sums of incommensurate sines.
breath='(1+0.006*sin(2*PI*t/4.3))'                      # breathing-like scale, +-0.6 %
tiny_x='2*sin(2*PI*t/11)+1*sin(2*PI*t/3.7)'             # +-3 px
tiny_y='1.5*sin(2*PI*t/4.3)+1*sin(2*PI*t/13)'
mod_x='14*sin(2*PI*t/7)+7*sin(2*PI*t/2.3)+5*sin(2*PI*t/1.1)'  # moderate: +-26 px, some quick moves
mod_y='8*sin(2*PI*t/5)+5*sin(2*PI*t/1.7)+3*sin(2*PI*t/0.9)'
dark='eq=brightness=-0.14:contrast=0.7:saturation=0.35:gamma=0.85,noise=alls=3:allf=t'
enc_v='-c:v libx264 -preset medium -crf 31 -maxrate 56k -bufsize 112k -g 10 -keyint_min 10 -sc_threshold 0 -bf 0 -pix_fmt yuv420p -profile:v high'
enc_a='-c:a aac -b:a 32k -ar 16000 -ac 1'

# still_clip NAME IMAGE PREP SCALE_EXPR DX DY POST
#   PREP: filters that turn the source picture into a 4:3 frame of at least 520x390;
#   the picture is scaled by SCALE_EXPR per frame and a 480x360 window is cut around its centre,
#   shifted by DX, DY pixels; POST: lighting.
still_clip() {
  local name=$1 img=$2 prep=$3 sc=$4 dx=$5 dy=$6 post=$7
  ffmpeg -v error -y -loop 1 -framerate 10 -t 60 -i "$S/$img" -i "$W/clips/$name.wav" -filter_complex \
   "[0:v]$prep,scale=520:390,setsar=1,format=yuv420p,scale=w='2*trunc(260*$sc)':h='2*trunc(195*$sc)':eval=frame,crop=480:360:x='(iw-480)/2+($dx)':y='(ih-360)/2+($dy)',$post,format=yuv420p[v]" \
   -map "[v]" -map 1:a $enc_v $enc_a -t 60 -movflags +faststart "$D/$name.mp4"
}
# video_clip NAME START FILTERS: a 60 s excerpt of the pedestrians video.
video_clip() {
  local name=$1 ss=$2 vf=$3
  ffmpeg -v error -y -ss "$ss" -i "$S/vtest_384.mp4" -i "$W/clips/$name.wav" -filter_complex \
   "[0:v]$vf,scale=480:360,setsar=1,fps=10,format=yuv420p[v]" \
   -map "[v]" -map 1:a $enc_v $enc_a -t 60 -movflags +faststart "$D/$name.mp4"
}

# Framings (crops of the source pictures, all 4:3):
AST='crop=512:384:0:0'                       # astronaut: head and torso, flag and shuttle model
AST_LYING='transpose=1,crop=512:384:0:64'    # rotated 90 deg clockwise (lying), head to the right
BB_RIGHT='crop=300:225:340:0'               # basketball1: the man on the right, upper body
BB_LEFT='crop=240:180:0:30'                  # basketball1: the man on the left, upper body
BB_LEFT_WIDE='crop=320:240:0:40'             # the same man, wider (head to knees)
BB_BOTH='crop=640:480:0:0'
BB_LYING='transpose=2,crop=480:360:0:280'   # rotated 90 deg ccw: the man on the left, lying
ME='crop=400:300:60:20'                      # messi5: the player
ME_LYING='transpose=1,scale=225:360,pad=480:360:130:0:color=0x141414'
ROOM='crop=240:180:195:10'                   # basketball1: wall and door, nobody in view

run() { if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; then "$@"; fi; }
mk() { local name=$1; shift; if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]]; then "$@"; echo "made $name"; fi; }

mk asleep_1 still_clip asleep_1 astronaut.png "$AST_LYING" "$breath" "$tiny_x" "$tiny_y" "$dark"
mk asleep_2 still_clip asleep_2 basketball1.png "$BB_LYING" "$breath" "0.5*($tiny_x)" "$tiny_y" "$dark"
mk asleep_3 still_clip asleep_3 messi5.jpg "$ME_LYING" "(1+0.004*sin(2*PI*t/5.1))" "$tiny_y" "$tiny_x" "eq=brightness=-0.16:contrast=0.65:saturation=0.3,noise=alls=4:allf=t"
mk at_table_1 still_clip at_table_1 astronaut.png "$AST" "(1+0.02*sin(2*PI*t/6))" "$mod_x" "$mod_y" "null"
mk at_table_2 still_clip at_table_2 basketball1.png "$BB_LEFT" "(1+0.03*sin(2*PI*t/5))" "0.8*($mod_x)" "0.8*($mod_y)" "null"
mk at_table_3 still_clip at_table_3 messi5.jpg "$ME" "(1+0.025*sin(2*PI*t/4.5))" "$mod_y" "$mod_x" "eq=brightness=0.03"
mk reading_1 still_clip reading_1 astronaut.png "$AST" "$breath" "$tiny_x" "$tiny_y" "eq=brightness=0.04"
mk reading_2 still_clip reading_2 basketball1.png "$BB_RIGHT" "$breath" "$tiny_y" "$tiny_x" "null"
mk reading_3 still_clip reading_3 messi5.jpg "$ME" "(1+0.005*sin(2*PI*t/3.9))" "$tiny_x" "$tiny_y" "null"
mk on_phone_1 still_clip on_phone_1 astronaut.png "$AST" "(1+0.012*sin(2*PI*t/5))" "0.6*($mod_x)" "0.6*($mod_y)" "null"
mk on_phone_2 still_clip on_phone_2 basketball1.png "$BB_LEFT_WIDE" "(1+0.015*sin(2*PI*t/7))" "0.7*($mod_y)" "0.5*($mod_x)" "null"
mk on_phone_3 still_clip on_phone_3 messi5.jpg "$ME" "(1+0.01*sin(2*PI*t/6))" "0.5*($mod_x)" "0.7*($mod_y)" "eq=brightness=-0.05"
mk in_conversation_1 still_clip in_conversation_1 basketball1.png "$BB_BOTH" "(1+0.01*sin(2*PI*t/6))" "0.6*($mod_x)" "0.5*($mod_y)" "null"
mk in_conversation_2 still_clip in_conversation_2 astronaut.png "$AST" "(1+0.015*sin(2*PI*t/3))" "0.7*($mod_x)" "0.7*($mod_y)" "null"
mk in_conversation_3 still_clip in_conversation_3 messi5.jpg "$ME" "(1+0.01*sin(2*PI*t/4))" "0.6*($mod_y)" "0.6*($mod_x)" "null"
mk busy_1 video_clip busy_1 0 "null"
mk busy_2 video_clip busy_2 19.5 "hflip,eq=brightness=-0.04:saturation=0.9"
# busy_3: a person moving about the room: big pans and jumps across the basketball picture.
mk busy_3 still_clip busy_3 basketball1.png "$BB_BOTH" "(1.25+0.2*sin(2*PI*t/9))" "110*sin(2*PI*t/6)+40*sin(2*PI*t/1.9)" "45*sin(2*PI*t/4)+20*sin(2*PI*t/1.3)" "null"
mk inactive_1 still_clip inactive_1 vtest_empty.jpg "scale=512:384" "1" "0" "0" "eq=brightness='0.02*sin(2*PI*t/40)':eval=frame,noise=alls=3:allf=t"
mk inactive_2 still_clip inactive_2 basketball1.png "$ROOM" "1" "0" "0" "noise=alls=3:allf=t"
mk inactive_3 still_clip inactive_3 vtest_empty.jpg "crop=192:144:184:40,scale=512:384" "1" "0" "0" "eq=brightness=-0.12:contrast=0.8,noise=alls=4:allf=t"

# 4. labels.csv
if [ -z "${ONLY:-}" ]; then
  { echo "file,class"; for c in asleep at_table reading on_phone in_conversation busy inactive; do
      for i in 1 2 3; do echo "${c}_$i.mp4,$c"; done; done; } > "$D/labels.csv"
fi
cp "$W/levels.txt" "$W/levels.last" 2>/dev/null || true
du -ch "$D"/*.mp4 | tail -1
