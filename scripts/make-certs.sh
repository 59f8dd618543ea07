#!/usr/bin/env bash
# Makes a local CA and a broker certificate (and optional client certificates) for a test or
# demo installation. Production may use certificates from the organisation's own CA instead.
#
#   scripts/make-certs.sh OUT_DIR [HOST_OR_IP ...] [--client NAME ...]
#
# OUT_DIR gets ca.crt/ca.key, server.crt/server.key (valid for every HOST_OR_IP given,
# default 127.0.0.1 and localhost) and NAME.crt/NAME.key per --client (CN = NAME, the
# site id when the broker uses use_identity_as_username). Existing files are kept, so a
# second run adds clients without replacing the CA. Keys are mode 0600.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
out=$1
shift
hosts=()
clients=()
while [ $# -gt 0 ]; do
  case $1 in
    --client) clients+=("$2"); shift 2 ;;
    *) hosts+=("$1"); shift ;;
  esac
done
[ ${#hosts[@]} -gt 0 ] || hosts=(127.0.0.1 localhost)
days=${CERT_DAYS:-825}
mkdir -p "$out"
umask 077

if [ ! -f "$out/ca.key" ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 \
    -keyout "$out/ca.key" -out "$out/ca.crt" -subj "/CN=fsv local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  chmod 644 "$out/ca.crt"
fi

sign() {  # sign NAME CN EXTFILE
  openssl req -newkey rsa:2048 -sha256 -nodes -keyout "$out/$1.key" -out "$out/$1.csr" \
    -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$out/$1.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -out "$out/$1.crt" -days "$days" -sha256 -extfile "$3" 2>/dev/null
  rm -f "$out/$1.csr" "$3"
  chmod 644 "$out/$1.crt"
}

if [ ! -f "$out/server.crt" ]; then
  san=""
  for h in "${hosts[@]}"; do
    if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
  done
  ext=$(mktemp)
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
    "${san%,}" >"$ext"
  sign server "${hosts[0]}" "$ext"
fi

for name in "${clients[@]}"; do
  [ -f "$out/$name.crt" ] && continue
  ext=$(mktemp)
  printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$ext"
  sign "$name" "$name" "$ext"
done
echo "certificates in $out: ca.crt server.crt${clients[*]:+ ${clients[*]/%/.crt}}"
