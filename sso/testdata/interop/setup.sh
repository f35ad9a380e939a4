#!/bin/sh
# Installs what the SAML interoperability test (sso/interop_test.go) needs:
# pysaml2 (an independent IdP implementation) and xmlsec1, from Debian's
# packages, when they are missing. Called by .ci/run; safe to run twice.
set -eu
need=""
/usr/bin/python3 -c 'import saml2' >/dev/null 2>&1 || need="$need python3-pysaml2"
command -v xmlsec1 >/dev/null 2>&1 || need="$need xmlsec1"
[ -z "$need" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $need
