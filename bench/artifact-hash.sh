#!/usr/bin/env bash
# Artifact hashing: cairn against the floor (md5sum reading and hashing the same bytes) and
# against wandb 0.31's own `wandb.Artifact.add_file` / `add_dir`, for one large file and for
# many small files. Prints wall time, the tool's own hashing time where it reports one,
# peak RSS, and the ratios to the floor and to wandb; checks that the digests agree.
#
# Usage: bench/artifact-hash.sh
# Environment (all optional):
#   LARGE_MIB=1024     size of the large file (>= 2048 adds a `cairn --parts` row: the file
#                      digest plus W&B's multipart part digests from one read)
#   SMALL_FILES=1000   number of small files
#   SMALL_KIB=10       size of each small file
#   RUNS=3             runs per row; the fastest is reported (its peak RSS with it)
#   KEEP=1             keep the temp dir with the data
#
# Every run reads from a warm page cache: the cache cannot be dropped without root, so the
# data is read once before timing and every tool sees the same warm cache. The floor is
# single-threaded `md5sum`; for the small files `xargs -P` runs one md5sum per core as a
# second, parallel reference. wandb runs offline (WANDB_MODE=offline) in the venv that
# scripts/python-env prints, with its data and cache dirs in the temp dir; "wandb" is its
# default policy ("mutable": every file is also copied to a staging dir), "wandb
# immutable" hashes in place. wandb's wall time includes `import wandb`; its own time
# (add_* plus the manifest digest) is in the "own s" column.
# Needs: a Rust toolchain, python3, md5sum, GNU xargs and /usr/bin/time.
set -euo pipefail

cd "$(dirname "$0")/.."

LARGE_MIB=${LARGE_MIB:-1024}
SMALL_FILES=${SMALL_FILES:-1000}
SMALL_KIB=${SMALL_KIB:-10}
RUNS=${RUNS:-3}

work=$(mktemp -d -t cairn-artifact-hash.XXXXXX)
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

echo "building the hash_artifact example" >&2
cargo build --quiet --release -p cairn-core --example hash_artifact
bin="${CARGO_TARGET_DIR:-target}/release/examples/hash_artifact"
venv=$(scripts/python-env)
py="$venv/bin/python"
cores=$(nproc)

echo "making test data in $work" >&2
data="$work/data"
mkdir -p "$data/small"
large="$data/large.bin"
head -c $((LARGE_MIB << 20)) /dev/urandom >"$large"
python3 - "$data/small" "$SMALL_FILES" $((SMALL_KIB << 10)) <<'PY'
import os, sys
folder, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    # Some nesting, as a dataset folder would have.
    sub = os.path.join(folder, f"d{i % 10}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY
small_files=()
while IFS= read -r -d '' f; do small_files+=("$f"); done \
    < <(find "$data/small" -type f -print0 | sort -z)
# Warm the page cache.
cat "$large" "${small_files[@]}" >/dev/null

cat >"$work/wandb_hash.py" <<'PY'
import os, sys, time
t0 = time.perf_counter()
import wandb
t1 = time.perf_counter()
policy, paths = sys.argv[1], sys.argv[2:]
art = wandb.Artifact("x", "dataset")
for p in paths:
    if os.path.isdir(p):
        art.add_dir(p, policy=policy)
    else:
        art.add_file(p, policy=policy)
digest = art.manifest.digest()
t2 = time.perf_counter()
print("entries", len(art.manifest.entries))
print("content_digest", digest)
print("elapsed_s", f"{t2 - t1:.6f}")
print("import_s", f"{t1 - t0:.6f}")
for name, entry in sorted(art.manifest.entries.items())[:5]:
    print("entry", name, entry.digest)
PY

export WANDB_MODE=offline WANDB_SILENT=true WANDB_DATA_DIR="$work/wandb-data" \
    WANDB_CACHE_DIR="$work/wandb-cache" WANDB_DIR="$work/wandb-dir" \
    WANDB_CONFIG_DIR="$work/wandb-config"

results="$work/results.tsv"
: >"$results"

# measure CASE LABEL COMMAND...: runs the command RUNS times; records the fastest run's
# wall time, own reported time (elapsed_s in its output, if any), peak RSS and output.
measure() {
    local case=$1 label=$2
    shift 2
    local best="" best_rss="" best_own="" r start end wall
    for ((r = 0; r < RUNS; r++)); do
        rm -rf "$WANDB_DATA_DIR" "$WANDB_CACHE_DIR"
        start=$(date +%s%N)
        /usr/bin/time -f '%M' -o "$work/rss" "$@" >"$work/out" 2>"$work/err" || {
            echo "$label failed:" >&2
            cat "$work/err" >&2
            exit 1
        }
        end=$(date +%s%N)
        wall=$(((end - start) / 1000))
        if [ -z "$best" ] || [ "$wall" -lt "$best" ]; then
            best=$wall
            best_rss=$(tail -n 1 "$work/rss")
            best_own=$(awk '$1 == "elapsed_s" { print $2 }' "$work/out")
            cp "$work/out" "$work/out.$case.$(echo "$label" | tr ' /' '__')"
        fi
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$label" "$best" "${best_own:--}" "$best_rss" >>"$results"
}

echo "measuring (${RUNS} runs each)" >&2
measure large "md5sum (floor)" md5sum "$large"
measure large "cairn" "$bin" "$large"
if [ "$LARGE_MIB" -ge 2048 ]; then
    measure large "cairn --parts" "$bin" --parts "$large"
fi
measure large "wandb" "$py" "$work/wandb_hash.py" mutable "$large"
measure large "wandb immutable" "$py" "$work/wandb_hash.py" immutable "$large"

measure small "md5sum (floor)" md5sum "${small_files[@]}"
printf '%s\0' "${small_files[@]}" >"$work/small.list"
measure small "md5sum xargs -P$cores" xargs -0 -a "$work/small.list" -P "$cores" \
    -n $(((${#small_files[@]} + cores - 1) / cores)) md5sum
measure small "cairn" "$bin" "$data/small"
measure small "cairn 1 thread" "$bin" --threads 1 "$data/small"
measure small "wandb" "$py" "$work/wandb_hash.py" mutable "$data/small"
measure small "wandb immutable" "$py" "$work/wandb_hash.py" immutable "$data/small"

echo
echo "large: 1 file of ${LARGE_MIB} MiB; small: ${SMALL_FILES} files of ${SMALL_KIB} KiB; ${cores} cores; warm cache; best of ${RUNS}"
awk -F'\t' '
    { case_[NR] = $1; label[NR] = $2; wall[NR] = $3 / 1e6; own[NR] = $4; rss[NR] = $5 / 1024
      if ($2 == "md5sum (floor)") floor[$1] = wall[NR]
      if ($2 == "wandb") wandb[$1] = wall[NR] }
    END {
        printf "%-6s %-22s %9s %9s %9s %8s %8s\n", "case", "tool", "wall s", "own s", "RSS MiB", "x floor", "x wandb"
        for (i = 1; i <= NR; i++) {
            printf "%-6s %-22s %9.3f %9s %9.1f %8.2f %8.3f\n", case_[i], label[i], wall[i], \
                (own[i] == "-" ? "-" : sprintf("%.3f", own[i])), rss[i], \
                wall[i] / floor[case_[i]], wall[i] / wandb[case_[i]]
        }
    }' "$results"

echo
status=0
# Digests: cairn's and wandb's artifact digests, and the large file's MD5 from md5sum.
for case in large small; do
    c=$(awk '$1 == "content_digest" { print $2 }' "$work/out.$case.cairn")
    w=$(awk '$1 == "content_digest" { print $2 }' "$work/out.$case.wandb")
    if [ "$c" = "$w" ]; then verdict=agree; else verdict=DIFFER; status=1; fi
    echo "$case artifact digest: cairn $c, wandb $w: $verdict"
done
sum_hex=$(awk '{ print $1 }' "$work/out.large.md5sum_(floor)")
sum_b64=$(python3 -c 'import base64, sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$sum_hex")
c=$(awk '$1 == "entry" { print $3 }' "$work/out.large.cairn")
w=$(awk '$1 == "entry" { print $3 }' "$work/out.large.wandb")
echo "large.bin entry digest: cairn $c, wandb $w, md5sum $sum_hex (base64 $sum_b64)"
[ "$c" = "$w" ] && [ "$c" = "$sum_b64" ] || status=1
# The targets: cairn within 1.2x the floor, peak RSS <= 64 MiB.
awk -F'\t' '
    $2 == "md5sum (floor)" { floor[$1] = $3 }
    $2 ~ /^cairn/ {
        ratio = $3 / floor[$1]; mib = $5 / 1024
        printf "target %s %s: %.2fx floor (<= 1.2: %s), peak RSS %.1f MiB (<= 64: %s)\n", $1, $2, \
            ratio, (ratio <= 1.2 ? "yes" : "NO"), mib, (mib <= 64 ? "yes" : "NO")
    }' "$results"
exit $status
