#!/usr/bin/env bash
# Rebuilds data/demo/demo.mp4, the clip the daemon analyses when no source is configured.
# Needs: ffmpeg, espeak-ng, sox (Debian 12 packages) and astronaut.png from the PyPI wheel
# scikit-image 0.26.0 (skimage/data/astronaut.png; NASA photograph, public domain).
# Usage: make_demo.sh ASTRONAUT_PNG [OUT]
set -euo pipefail
PNG=${1:?path to astronaut.png}
OUT=${2:-$(dirname "$0")/demo.mp4}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

# Part 1 (0-24 s): two synthetic voices take turns, as in a conversation.
say() { espeak-ng -v "$1" -s 150 -a 120 -w "$W/$3.wav" "$2"; sox "$W/$3.wav" -r 16000 -c 1 "$W/$3r.wav"; }
say en-us "Good morning. Did you sleep well last night?" a1
say en-gb+f3 "Not really. The neighbours were loud until midnight." b1
say en-us "That is annoying. Would you like some coffee?" a2
say en-gb+f3 "Yes please, with a little milk and no sugar." b2
say en-us "Here you are. What are you planning to do today?" a3
say en-gb+f3 "I will read the newspaper and then call my sister." b3
sox -n -r 16000 -c 1 "$W/gap.wav" trim 0 0.6
sox "$W/a1r.wav" "$W/gap.wav" "$W/b1r.wav" "$W/gap.wav" "$W/a2r.wav" "$W/gap.wav" \
    "$W/b2r.wav" "$W/gap.wav" "$W/a3r.wav" "$W/gap.wav" "$W/b3r.wav" "$W/talk.wav"
sox "$W/talk.wav" "$W/talk24.wav" pad 0.5 30 trim 0 24
# Part 2 (24-40 s): a quiet room (soft pink noise, about -64 dBFS RMS).
sox -n -r 16000 -c 1 "$W/quiet.wav" synth 16 pinknoise vol 0.003
sox "$W/talk24.wav" "$W/quiet.wav" "$W/audio.wav"

# Picture: the portrait moves like a talking head for 24 s, then is almost still.
ffmpeg -v error -y -f lavfi -i "color=c=0x46505e:s=480x360:r=15:d=40" \
  -loop 1 -framerate 15 -t 40 -i "$PNG" -i "$W/audio.wav" \
  -filter_complex "[1:v]crop=300:300:100:0,scale=220:220[face];[0:v][face]overlay=x='130+if(lt(t,24),7*sin(2*PI*t/3)+3*sin(2*PI*t*1.3),1.5*sin(2*PI*t/9))':y='70+if(lt(t,24),4*sin(2*PI*t/2.2),1*sin(2*PI*t/7))':shortest=1,format=yuv420p[v]" \
  -map "[v]" -map 2:a -c:v libx264 -preset slow -crf 30 -g 15 -keyint_min 15 -sc_threshold 0 -bf 0 \
  -c:a aac -b:a 48k -ar 16000 -ac 1 -t 40 -movflags +faststart "$OUT"
ls -l "$OUT"
