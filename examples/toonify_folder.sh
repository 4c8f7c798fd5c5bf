#!/usr/bin/env bash
# Toonify every clip in a folder with one StyleGANEX style (cartoon, pixar or arcane).
#   examples/toonify_folder.sh clips/ pixar
set -euo pipefail
dir=${1:?usage: $0 FOLDER STYLE}
style=${2:-cartoon}
ganvid weights download "styleganex-toonify-$style" dlib-landmarks-68
for clip in "$dir"/*.mp4 "$dir"/*.mov; do
    [ -e "$clip" ] || continue
    case "$clip" in *_toon*.* | *_inverted.* | *_fov.*) continue ;; esac
    ganvid toonify "$clip" --style "$style"
done
