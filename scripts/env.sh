# Sourced by the project's scripts: puts the tools the set-up installs on PATH.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) [ -d "$HOME/.cargo/bin" ] && PATH="$HOME/.cargo/bin:$PATH" ;; esac
PATH="$ROOT/node_modules/.bin:$PATH"
export PATH
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
# Keep npm quiet about the machine's own configuration.
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
