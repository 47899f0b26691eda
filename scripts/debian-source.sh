#!/usr/bin/env bash
# Usage: debian-source.sh PACKAGE [FALLBACK_VERSION FALLBACK_SHA256]
# Downloads the orig tarball of a Debian unstable source package into $PGSE_CACHE/src, verified
# against the SHA256 in the signed unstable index, and prints the tarball's path. The mirror comes
# from this machine's apt configuration. When the indexed version is missing on the mirror, the
# fallback version (with its pinned checksum) is tried.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

pkg=$1
fb_version=${2:-}
fb_sha=${3:-}
mirror=$(debian_mirror)
[ -n "$mirror" ] || die "no Debian archive found in the apt configuration"
src=$PGSE_CACHE/src
mkdir -p "$src"
idx=$src/unstable-index
mkdir -p "$idx"

# Signed release file, then the Sources index it vouches for (refreshed at most once an hour).
if [ ! -s "$idx/Sources" ] || [ -n "$(find "$idx/Sources" -mmin +60)" ]; then
  curl -fsS -o "$idx/InRelease" "$mirror/dists/unstable/InRelease"
  gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg "$idx/InRelease" 2>/dev/null ||
    die "unstable InRelease signature does not verify"
  want=$(awk '/^SHA256:/ {s=1; next} /^[^ ]/ {s=0} s && $3 == "main/source/Sources.xz" {print $1}' "$idx/InRelease")
  curl -fsS -o "$idx/Sources.xz" "$mirror/dists/unstable/main/source/Sources.xz"
  echo "$want  $idx/Sources.xz" | sha256sum -c --quiet - || die "Sources.xz checksum mismatch"
  xz -dc "$idx/Sources.xz" > "$idx/Sources.tmp" && mv "$idx/Sources.tmp" "$idx/Sources"
fi

stanza=$(awk -v p="Package: $pkg" '$0 == p {s=1} s && /^$/ {exit} s' "$idx/Sources")
[ -n "$stanza" ] || die "source package $pkg not in unstable"
dir=$(echo "$stanza" | sed -n 's/^Directory: //p')
line=$(echo "$stanza" | awk '/^Checksums-Sha256:/ {s=1; next} /^[^ ]/ {s=0} s && $3 ~ /\.orig\.tar\./ {print $1, $3; exit}')
sha=${line%% *}
file=${line#* }

fetch() { # file sha
  local out=$src/$1
  if [ -s "$out" ] && echo "$2  $out" | sha256sum -c --quiet - 2>/dev/null; then echo "$out"; return 0; fi
  curl -fs -o "$out.part" "$mirror/$dir/$1" || { rm -f "$out.part"; return 1; }
  echo "$2  $out.part" | sha256sum -c --quiet - || { rm -f "$out.part"; die "$1 checksum mismatch"; }
  mv "$out.part" "$out"
  echo "$out"
}

if fetch "$file" "$sha"; then exit 0; fi
if [ -n "$fb_version" ]; then
  fb_file=$(echo "$file" | sed "s/_[^_]*\.orig/_${fb_version}.orig/")
  echo "note: $file missing on the mirror, using $fb_file" >&2
  fetch "$fb_file" "$fb_sha" && exit 0
fi
die "could not download $file"
