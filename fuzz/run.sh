#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS seconds, each from a scratch copy of its seeds in
# fuzz/seeds/<target>/ and with the dictionary fuzz/dicts/<target>.dict. Exits non-zero if any target finds a crash (the input is saved under
# fuzz/artifacts/<target>/).
#
# Works on stable Rust: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows.
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_TARGETS      space-separated targets (default: all, from `cargo fuzz list`)
#   FUZZ_SANITIZER    address (default) or none
#   CARGO_TARGET_DIR  build directory (default: target-fuzz beside the repository)
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
repo_dir=$(dirname "$fuzz_dir")
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
target_dir=${CARGO_TARGET_DIR:-$(dirname "$repo_dir")/target-fuzz}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
if [ -n "${FUZZ_TARGETS:-}" ]; then
    targets=$FUZZ_TARGETS
else
    targets=$(cargo fuzz list | tr '\n' ' ')
fi
if [ -z "${targets// /}" ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $targets; do
    echo "== $target: build" >&2
    cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir" "$target"
    corpus="$scratch/$target"
    mkdir -p "$corpus"
    if [ -d "seeds/$target" ]; then
        cp -R "seeds/$target/." "$corpus/"
    fi
    args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
    if [ -f "dicts/$target.dict" ]; then
        args+=(-dict="$fuzz_dir/dicts/$target.dict")
    fi
    echo "== $target: fuzzing for ${seconds}s" >&2
    # The first corpus directory is where new inputs are written: the scratch copy.
    if ! cargo fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" "$target" "$corpus" -- "${args[@]}"; then
        echo "== $target: FAILED (see fuzz/artifacts/$target/)" >&2
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets with failures: ${failed[*]}" >&2
    exit 1
fi
echo "all fuzz targets ran ${seconds}s without a failure: $targets" >&2
