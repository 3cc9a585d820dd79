#!/usr/bin/env bash
# The vendored pingora crates (vendor/pingora-{core,proxy,http}) are the pristine crates.io
# sources plus the patch files in vendor/patches/, applied in order (vendor/README.md).
#
#   vendor/update.sh --check        pristine sources of the vendored version + the patches
#                                   must equal vendor/ byte for byte (exit 1 otherwise);
#                                   scripts/test.sh runs this
#   vendor/update.sh [VERSION]      fetch VERSION (default: the vendored one), apply the
#                                   patches with `git apply --3way`, report each patch that
#                                   failed and where; the result stays in a temp git repo
#                                   (one commit per patch) whose path is printed
#   vendor/update.sh --write [VERSION]
#                                   as above, and when every patch applied, replace
#                                   vendor/pingora-* with the result
#   vendor/update.sh --export TREE  write vendor/patches/*.patch from the commits of a
#                                   tree left by a run (after fixing a conflict there, or
#                                   to change a patch), keeping each file's description
#
# Options: --reject (apply with `git apply --reject` instead of --3way: failed hunks go to
# *.rej files), --keep (keep the temp dir even when everything applied).
#
# Sources: the .crate files from cargo's cache when present, else from static.crates.io,
# checked against the sha256 of the crates.io index. What crates.io packs but vendor/
# leaves out (PRUNE below) is removed before the patches are applied.
set -euo pipefail
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY
here="$(cd "$(dirname "$0")" && pwd)"
patches_dir="$here/patches"
CRATES=(pingora-core pingora-proxy pingora-http)
# files of the published crates that are not vendored (examples, benches, their lock)
PRUNE=(.cargo_vcs_info.json Cargo.lock benches examples tests)

mode=apply mode_apply=3way keep=0 version="" export_tree=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --write) mode=write ;;
    --export) mode=export; export_tree="${2:?--export needs the tree of a run}"; shift ;;
    --reject) mode_apply=reject ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "update.sh: unknown option $1" >&2; exit 2 ;;
    *) version="$1" ;;
  esac
  shift
done

g() { git -c core.autocrlf=false -c core.safecrlf=false -c user.name=vendor-update \
  -c user.email=vendor-update@localhost -c commit.gpgsign=false "$@"; }

# the version in a vendored crate's Cargo.toml (the first `version =` is [package]'s)
vendored_version() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$here/$1/Cargo.toml" | head -1
}
base="$(vendored_version pingora-core)"
for c in "${CRATES[@]}"; do
  [ "$(vendored_version "$c")" = "$base" ] || { echo "update.sh: $c is not at $base" >&2; exit 1; }
done
version="${version:-$base}"
mapfile -t patch_files < <(ls "$patches_dir"/[0-9][0-9][0-9][0-9]-*.patch 2>/dev/null | sort)
[ ${#patch_files[@]} -gt 0 ] || { echo "update.sh: no patches in $patches_dir" >&2; exit 1; }

if [ "$mode" = export ]; then
  tree="$(cd "$export_tree" && pwd)"
  mapfile -t commits < <(g -C "$tree" rev-list --reverse HEAD)
  # commits[0] is the pristine source, one commit per patch after it (subject: file name)
  for ((i = 1; i < ${#commits[@]}; i++)); do
    name="$(g -C "$tree" log -1 --format=%s "${commits[$i]}" | sed 's/ (.*)$//')"
    case "$name" in [0-9][0-9][0-9][0-9]-*.patch) ;; *) echo "update.sh: commit ${commits[$i]}: subject '$name' is not a patch name" >&2; exit 1 ;; esac
    out="$patches_dir/$name"
    { if [ -f "$out" ]; then sed '/^diff --git /,$d' "$out"; fi
      g -C "$tree" diff --no-color --no-ext-diff --no-renames --full-index \
        --src-prefix=a/ --dst-prefix=b/ "${commits[$((i - 1))]}" "${commits[$i]}"
    } >"$out.new"
    mv "$out.new" "$out"
    echo "wrote vendor/patches/$name"
  done
  exit 0
fi

if [ "$mode" = check ] && [ "$version" != "$base" ]; then
  echo "update.sh: --check compares the vendored version ($base), not $version" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/pingora-update.XXXXXX")"
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

# the .crate file of $1 at version $2, into $work/crates, checked
fetch_crate() {
  local c="$1" v="$2" f="$work/crates/$1-$2.crate" cached sum want
  mkdir -p "$work/crates"
  cached="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$c-$v.crate" 2>/dev/null | head -1 || true)"
  if [ -n "$cached" ]; then
    cp "$cached" "$f"   # cargo checked it against the index when it downloaded it
    return
  fi
  curl -sSfL --retry 3 -o "$f" "https://static.crates.io/crates/$c/$c-$v.crate" \
    || { echo "update.sh: cannot download $c $v from crates.io" >&2; exit 1; }
  want="$(curl -sSfL --retry 3 "https://index.crates.io/${c:0:2}/${c:2:2}/$c" \
    | grep -E "\"vers\": ?\"$v\"" | sed -E 's/.*"cksum": ?"([0-9a-f]{64})".*/\1/' | head -1)" \
    || { echo "update.sh: cannot read the crates.io index entry of $c" >&2; exit 1; }
  sum="$(sha256sum "$f" | cut -d' ' -f1)"
  [ -n "$want" ] && [ "$sum" = "$want" ] \
    || { echo "update.sh: $c-$v.crate: sha256 $sum, the index says '${want}'" >&2; exit 1; }
}

# the pruned crates.io sources of version $1 into directory $2
unpack() {
  local v="$1" dir="$2" c p
  mkdir -p "$dir"
  for c in "${CRATES[@]}"; do
    fetch_crate "$c" "$v"
    tar -xzf "$work/crates/$c-$v.crate" -C "$dir"
    mv "$dir/$c-$v" "$dir/$c"
    for p in "${PRUNE[@]}"; do rm -rf "${dir:?}/$c/$p"; done
  done
}

# pristine sources of version $1 in directory $2 (a fresh git repo, one commit)
pristine() {
  unpack "$1" "$2"
  g -C "$2" init -q
  g -C "$2" add -A
  g -C "$2" commit -q -m "pingora $1, crates.io sources (pruned)"
}

failed=() merged=()
# apply every patch in order in $1 with git apply options $2..., one commit each; a patch
# that fails is reported and committed as it ended up (conflict markers / .rej files)
apply_all() {
  local dir="$1" p name out rc
  shift
  for p in "${patch_files[@]}"; do
    name="$(basename "$p")"
    rc=0
    out="$(cd "$dir" && g apply --index --whitespace=nowarn "$@" "$p" 2>&1)" || rc=$?
    if [ $rc -eq 0 ] && ! g -C "$dir" ls-files -u | grep -q .; then
      g -C "$dir" commit -q --allow-empty -m "$name"
      if printf '%s\n' "$out" | grep -qi 'three-way'; then
        merged+=("$name")
        echo "merged: $name (did not apply as is; a clean 3-way merge)"
      fi
      continue
    fi
    failed+=("$name")
    echo "FAILED: $name"
    printf '%s\n' "$out" | grep -E '^(error|U |Rejected)' | head -20 | sed 's/^/    /' || true
    # where: files with conflict markers (3-way) or rejected hunks (--reject)
    local f
    while IFS= read -r f; do
      [ -n "$f" ] || continue
      echo "    conflict markers in $f at line(s) $(grep -n '^<<<<<<< ' "$dir/$f" | cut -d: -f1 | paste -sd, -) (with those of earlier failed patches)"
    done < <(g -C "$dir" diff --name-only --diff-filter=U)
    while IFS= read -r f; do
      f="${f#"$dir"/}"
      echo "    rejected: $(grep -c '^@@' "$dir/$f") hunk(s) of ${f%.rej}, in $work/rejects/${name%.patch}/$f"
      mkdir -p "$(dirname "$work/rejects/${name%.patch}/$f")"
      mv "$dir/$f" "$work/rejects/${name%.patch}/$f"
    done < <(find "$dir" -name '*.rej' -not -path '*/.git/*')
    g -C "$dir" add -A
    g -C "$dir" commit -q --allow-empty -m "$name (conflicts)"
  done
}

tree="$work/tree"
if [ "$mode" = check ]; then
  pristine "$base" "$tree"
  apply_all "$tree"   # plain `git apply`: each patch must apply exactly
  bad=0
  for c in "${CRATES[@]}"; do
    if ! diff -r "$tree/$c" "$here/$c" >"$work/$c.diff" 2>&1; then
      bad=1
      echo "DRIFT: vendor/$c differs from pingora $base + vendor/patches:"
      sed 's/^/    /' "$work/$c.diff" | head -40
    fi
  done
  if [ ${#failed[@]} -gt 0 ] || [ $bad -ne 0 ]; then
    echo "vendor/update.sh --check: FAILED (${#failed[@]} patch(es) did not apply; vendor/ drift: $bad)."
    echo "A change to vendor/ is a change of a patch file in vendor/patches/ (vendor/README.md)."
    exit 1
  fi
  echo "vendor/update.sh --check: pingora $base + ${#patch_files[@]} patches == vendor/ (${CRATES[*]})"
  exit 0
fi

if [ "$version" != "$base" ]; then
  # the patches' preimage blobs (pristine $base with the patches before each) must be in
  # the repo for --3way to merge: build that chain first, then start $version from it
  pristine "$base" "$tree"
  apply_all "$tree"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "update.sh: the patches do not apply to the vendored $base itself; run --check" >&2
    keep=1; echo "tree: $tree"; exit 1
  fi
  g -C "$tree" checkout -q --orphan "pingora-$version"
  g -C "$tree" read-tree --empty
  for c in "${CRATES[@]}"; do rm -rf "${tree:?}/$c"; done
  unpack "$version" "$tree"
  g -C "$tree" add -A
  g -C "$tree" commit -q -m "pingora $version, crates.io sources (pruned)"
else
  pristine "$version" "$tree"
fi

if [ "$mode_apply" = reject ]; then apply_all "$tree" --reject; else apply_all "$tree" --3way; fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  keep=1
  echo "pingora $version: ${#failed[@]} of ${#patch_files[@]} patches failed: ${failed[*]}"
  echo "tree: $tree (git log: one commit per patch, failed ones as they ended up)"
  echo "Fix them there (e.g. git rebase -i), then: vendor/update.sh --export $tree; vendor/update.sh --write $version"
  exit 1
fi
echo "pingora $version: all ${#patch_files[@]} patches applied (${#merged[@]} by a 3-way merge${merged:+: ${merged[*]}})"
if [ "$mode" = write ]; then
  for c in "${CRATES[@]}"; do
    rm -rf "${here:?}/$c"
    cp -a "$tree/$c" "$here/$c"
  done
  echo "vendor/pingora-{core,proxy,http} replaced by pingora $version + patches"
  [ "$version" = "$base" ] || echo "next: the pingora versions in Cargo.toml, cargo build, the tests, vendor/README.md"
else
  keep=1
  echo "tree: $tree"
fi
