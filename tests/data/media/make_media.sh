#!/bin/sh
# Regenerates the test media next to this script (ffmpeg 5.1, Debian 12). CI has no ffmpeg: the files are
# committed, and tests/unit/test_media_info.py records what ffprobe reports for each of them.
set -eu
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y -bitexact "$@"; }
video() { echo "testsrc=size=$1:rate=$2:duration=$3"; }

# MP4 (H.264), moov before mdat.
ff -f lavfi -i "$(video 320x240 10 1)" -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p \
   -movflags +faststart faststart.mp4
# MP4 (H.264), moov after mdat (ffmpeg's default).
ff -f lavfi -i "$(video 160x90 12 2)" -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p moov_at_end.mp4
# QuickTime: ftyp brand "qt  ", a wide box before mdat, moov at the end.
ff -f lavfi -i "$(video 128x72 10 1.5)" -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p -f mov quicktime.mov
# WebM (VP9), written to a seekable file: sizes and Duration filled in.
ff -f lavfi -i "$(video 176x144 10 1)" -c:v libvpx-vp9 -b:v 50k -deadline realtime -cpu-used 8 vp9.webm
# WebM (VP8) written to a pipe: the Segment has unknown size and there is no Duration.
ff -f lavfi -i "$(video 96x64 10 1)" -c:v libvpx -b:v 50k -deadline realtime -f webm pipe:1 > vp8_live.webm
# MP4 with the audio track first, then the video track (the probe must report the video's size).
ff -f lavfi -i "sine=frequency=440:duration=1.2" -f lavfi -i "$(video 64x48 10 1)" -map 0:a -map 1:v \
   -c:a aac -b:a 32k -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p -movflags +faststart audio_first.mp4
# MP4 shown rotated by 90 degrees (display matrix in tkhd), stored 64x48. ffmpeg 5.1 keeps the rotate tag
# only on a stream copy, hence two steps.
unrotated=$(mktemp --suffix .mp4)
ff -f lavfi -i "$(video 64x48 10 1)" -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p "$unrotated"
ff -i "$unrotated" -c copy -metadata:s:v:0 rotate=90 rotated.mp4
rm -f "$unrotated"
# MP4 with non-square pixels: stored 64x48, sample aspect ratio 2:1 (displayed 128x48).
ff -f lavfi -i "$(video 64x48 10 1)" -vf setsar=2/1 -c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p \
   anamorphic.mp4
# WebM (VP8) with non-square pixels: stored 64x48, DisplayWidth 128 and DisplayHeight 48.
ff -f lavfi -i "$(video 64x48 10 1)" -vf setsar=2/1 -c:v libvpx -b:v 50k -deadline realtime anamorphic.webm
# Matroska (H.264 + Opus): DocType "matroska".
ff -f lavfi -i "$(video 80x60 10 1)" -f lavfi -i "sine=frequency=440:duration=1" -c:v libx264 -preset veryfast \
   -crf 40 -pix_fmt yuv420p -c:a libopus -b:a 24k matroska.mkv
