#!/bin/sh
# Builds the native addons (native/tap.c, the TAP device; native/repair.c, the kernel's TCP_REPAIR
# calls) with the node-gyp that npm bundles, against the headers of
# the running Node (no download: --nodedir is Node's install prefix when it has the headers).
#
# Only the live link (a TAP device to the Linux kernel) needs the addon; the simulator, the CLI
# and the library work without it. So the package's `install` script runs this with --optional:
# not Linux, or python3/make/g++ missing, or a failed build, print ONE line and exit 0 (a failed
# build also prints node-gyp's full log first). `npm run build:native` runs it without
# --optional: then anything but a built addon exits 1. A successful build prints one line.
optional=false
[ "${1:-}" = "--optional" ] && optional=true
say() { echo "chimney: native TAP addon $*"; }
give_up() {
  if $optional; then
    say "$1; skipped (the simulator, the CLI and the library work without it; the live link needs it: install python3, make and g++, then run npm run build:native)"
    exit 0
  fi
  say "$1" >&2
  exit 1
}
if [ "$(uname -s)" != "Linux" ]; then
  give_up "not built: not Linux"
fi
missing=""
for tool in python3 make g++; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -z "$missing" ] || give_up "not built: missing$missing"
cd "$(dirname "$0")" || exit 1
prefix=$(node -p "require('path').dirname(require('path').dirname(process.execPath))")
gyp=${npm_config_node_gyp:-$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}
nodedir=""
[ -f "$prefix/include/node/node_api.h" ] && nodedir="--nodedir=$prefix"
log=$(mktemp "${TMPDIR:-/tmp}/chimney-native.XXXXXX") || exit 1
# shellcheck disable=SC2086 # $nodedir is empty or one word
if node "$gyp" rebuild $nodedir >"$log" 2>&1; then
  rm -f "$log"
  say "built (native/build/Release/chimney_tap.node, chimney_repair.node)"
  exit 0
fi
cat "$log" >&2
rm -f "$log"
give_up "build failed (node-gyp's log above)"
