#!/usr/bin/env bash
# Builds the web terminal's assets (xterm.js from the npm registry) into
# apps/webapp/term/, where the binary embeds them: run it, then go build.
# Without them the term app's page says to run this.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d browser/node_modules/@xterm/xterm ] || [ browser/package-lock.json -nt browser/node_modules ]; then
    (cd browser && npm ci --no-audit --no-fund --loglevel=error)
fi
install -m 0644 browser/node_modules/@xterm/xterm/lib/xterm.js apps/webapp/term/xterm.js
install -m 0644 browser/node_modules/@xterm/xterm/css/xterm.css apps/webapp/term/xterm.css
install -m 0644 browser/node_modules/@xterm/addon-fit/lib/addon-fit.js apps/webapp/term/addon-fit.js
echo "term assets: $(cd apps/webapp/term && ls xterm.js xterm.css addon-fit.js | tr '\n' ' ')(xterm.js $(node -p "require('./browser/node_modules/@xterm/xterm/package.json').version" 2>/dev/null || echo '?'))"
