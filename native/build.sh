#!/bin/sh
# npm `install` script: builds the TAP addon (native/tap.c) with the node-gyp that npm bundles,
# against the headers of the running Node (no download: --nodedir is Node's install prefix when
# it has the headers). Not Linux: nothing to build (only the live tests and `serve` need it).
set -e
if [ "$(uname -s)" != "Linux" ]; then
  echo "native: not Linux, skipping the TAP addon"
  exit 0
fi
cd "$(dirname "$0")"
prefix=$(node -p "require('path').dirname(require('path').dirname(process.execPath))")
gyp=${npm_config_node_gyp:-$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}
if [ -f "$prefix/include/node/node_api.h" ]; then
  exec node "$gyp" rebuild "--nodedir=$prefix"
fi
exec node "$gyp" rebuild
