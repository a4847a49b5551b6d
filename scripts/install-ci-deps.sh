#!/usr/bin/env bash
# install-ci-deps.sh — install what Eddy's CI needs on a fresh Debian machine.
#
# Idempotent: every tool is checked first and installed only if missing, and
# `apt-get update` runs at most once, only when something must come from apt.
# Safe to run at the start of every CI job (a no-op run takes well under 1 s).
#
#   kcat                  readiness probe + smoke tests for scripts/kafka-broker.sh
#   promtool              checks the Prometheus rules/alerts (Debian: prometheus)
#   java 17+, mvn         run the real Kafka broker (scripts/kafka-broker.sh)
#   ShellCheck            lints scripts/*.sh
#   staticcheck           Go linter, built with the installed Go into GOPATH/bin
#   pyarrow, duckdb       read the Parquet archive back in the archive tests (PyPI)
#   moto[server]          the S3-compatible test server of the archive's S3 test (PyPI)
#
# Go itself is not installed here: the project needs Go 1.26, newer than
# Debian's, and the machine image provides it.
#
# Environment:
#   STATICCHECK_VERSION   module version of honnef.co/go/tools (default v0.8.2,
#                         i.e. staticcheck 2026.2.2, which builds with Go 1.26)
set -euo pipefail

staticcheck_version=${STATICCHECK_VERSION:-v0.8.2}

log() { printf 'install-ci-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

installed=()

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

apt_updated=
apt_update_once() {
	[[ -n "$apt_updated" ]] && return 0
	log "apt-get update"
	as_root apt-get update -qq
	apt_updated=1
}

apt_install() {
	apt_update_once
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	installed+=("$@")
}

# apt_has_candidate tells whether apt can install package $1.
apt_has_candidate() {
	local cand
	cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	[[ -n "$cand" && "$cand" != "(none)" ]]
}

# need_cmd CMD PKG installs PKG when CMD is not on PATH.
need_cmd() {
	local cmd=$1 pkg=$2
	if command -v "$cmd" >/dev/null; then
		return 0
	fi
	apt_install "$pkg"
	command -v "$cmd" >/dev/null || die "$pkg installed but $cmd is still not on PATH"
}

java_major() {
	# `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15
	# Java 8 and older say "1.8.0_...". Prints 0 when there is no usable java.
	local v
	v=$(java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}') || true
	[[ "$v" =~ ^[0-9]+$ ]] || v=0
	printf '%s\n' "$v"
}

install_java() {
	if command -v java >/dev/null && (($(java_major) >= 17)); then
		return 0
	fi
	# Kafka 4.x brokers need Java 17+.
	apt_install openjdk-17-jdk-headless
	(($(java_major) >= 17)) || die "java on PATH is still older than 17 (check update-alternatives)"
}

install_promtool() {
	command -v promtool >/dev/null && return 0
	apt_update_once
	# Debian ships promtool inside the prometheus package (there is no
	# separate one); the server it also installs is not started in a
	# container without systemd, and CI never needs it.
	if apt_has_candidate prometheus; then
		apt_install prometheus
	else
		die "no apt package ships promtool here (apt-cache policy prometheus)"
	fi
	command -v promtool >/dev/null || die "prometheus installed but promtool not on PATH"
}

install_staticcheck() {
	command -v go >/dev/null || die "go not found; Eddy needs Go 1.26 (not in Debian 12)"
	local bin
	bin=$(go env GOBIN)
	[[ -n "$bin" ]] || bin="$(go env GOPATH)/bin"
	local want=${staticcheck_version#v}
	if [[ -x "$bin/staticcheck" ]] && "$bin/staticcheck" -version 2>/dev/null | grep -qF "($want)"; then
		:
	else
		log "go install honnef.co/go/tools/cmd/staticcheck@$staticcheck_version (takes ~1 min)"
		# Run outside any module so the repo's go.mod plays no part.
		(cd / && GOFLAGS='' go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version")
		installed+=("staticcheck@$staticcheck_version")
	fi
	case ":$PATH:" in
	*":$bin:"*) ;;
	*) log "note: $bin is not on PATH; add it to run staticcheck" ;;
	esac
}

# install_python_peers installs the Python test peers with pip when a
# module is missing.
install_python_peers() {
	command -v python3 >/dev/null || die "python3 not found (the archive tests read Parquet back with pyarrow and DuckDB)"
	if python3 -c 'import pyarrow, duckdb, moto.server' 2>/dev/null && command -v moto_server >/dev/null; then
		return 0
	fi
	log "pip install pyarrow duckdb moto[server]"
	python3 -m pip install -q --disable-pip-version-check pyarrow duckdb 'moto[server]' >&2
	installed+=("pyarrow" "duckdb" "moto[server]")
	hash -r
	command -v moto_server >/dev/null || die "moto installed but moto_server is not on PATH"
}

main() {
	need_cmd kcat kcat
	install_promtool
	install_java
	need_cmd mvn maven
	need_cmd shellcheck shellcheck
	install_staticcheck
	install_python_peers

	if ((${#installed[@]})); then
		log "installed: ${installed[*]}"
	else
		log "nothing to install: all present"
	fi
}

main "$@"
