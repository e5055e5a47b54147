#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, test and demo memha. Idempotent.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      libevent-dev libcpp-httplib-dev nlohmann-json3-dev prometheus-cpp-dev googletest libgtest-dev libssl-dev
      libyaml-cpp-dev
      memcached nutcracker libmemcached-tools python3 python3-pymemcache python3-pylibmc procps
      libcache-memcached-fast-perl php-cli php-memcached
      openssl curl util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
