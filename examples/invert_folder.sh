#!/usr/bin/env bash
# Invert every clip in a folder (resumable: rerun after an interruption and finished clips are
# skipped, a clip killed mid-way resumes where it stopped).
#   examples/invert_folder.sh clips/ [extra ganvid invert options...]
set -euo pipefail
dir=${1:?usage: $0 FOLDER [ganvid invert options...]}
shift
ganvid weights download invert
failed=0
for clip in "$dir"/*.mp4 "$dir"/*.mov "$dir"/*.mkv; do
    [ -e "$clip" ] || continue
    case "$clip" in *_inverted.* | *_fov.* | *_toon*.*) continue ;; esac
    echo "== $clip"
    ganvid invert "$clip" "$@" || { echo "!! failed: $clip" >&2; failed=$((failed + 1)); }
done
exit "$failed"
