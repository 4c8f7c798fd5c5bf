#!/usr/bin/env bash
# After `ganvid invert CLIP`, render one edited video per strength of a direction, reusing the
# stored inversion and tuned generator (no re-inversion).
#   examples/edit_sweep.sh clip.mp4 age -3 -1 1 3
set -euo pipefail
clip=${1:?usage: $0 CLIP DIRECTION STRENGTH...}
direction=${2:?direction, e.g. age, smile, pose, gender}
shift 2
for strength in "$@"; do
    ganvid edit "$clip" --direction "$direction" --strength "$strength" --side-by-side
done
