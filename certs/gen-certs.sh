#!/usr/bin/env bash
# Makes a self-signed CA and a serving certificate for the Warden webhook, for clusters without
# cert-manager, then (unless --no-apply) stores the certificate as the Secret the Deployment
# mounts and writes the CA into the caBundle of Warden's Mutating- and
# ValidatingWebhookConfiguration.
#
#   ./certs/gen-certs.sh                       # after `kubectl apply -k manifests/`
#   ./certs/gen-certs.sh --out /tmp/w --no-apply --san IP:127.0.0.1
#
# Re-running renews the serving certificate with the same CA (kept in --out), so rotation needs
# no caBundle change and the webhook picks the new files up without a restart. --new-ca starts
# over with a new CA.
set -euo pipefail

namespace=warden-system
service=warden-webhook
webhook=warden
secret=warden-webhook-tls
out=${XDG_CONFIG_HOME:-$HOME/.config}/warden/certs
days=365
apply=1
new_ca=0
sans=()

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) namespace=$2; shift 2 ;;
    --service) service=$2; shift 2 ;;
    --webhook) webhook=$2; shift 2 ;;
    --secret) secret=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --san) sans+=("$2"); shift 2 ;;
    --no-apply) apply=0; shift ;;
    --new-ca) new_ca=1; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }

mkdir -p "$out"
chmod 700 "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$new_ca" = 1 ] || [ ! -s "$out/ca.crt" ] || [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$work/ca.key" -out "$work/ca.crt" -days 3650 -subj "/CN=warden-webhook-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  mv "$work/ca.key" "$out/ca.key"
  mv "$work/ca.crt" "$out/ca.crt"
  echo "new CA in $out/ca.crt"
fi

dns="$service.$namespace.svc"
san="DNS:$dns,DNS:$dns.cluster.local,DNS:$service.$namespace"
for s in "${sans[@]}"; do san="$san,$s"; done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/tls.key" -out "$work/tls.csr" -subj "/CN=$dns" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n' "$san" > "$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -CAserial "$work/ca.srl" -out "$work/tls.crt" -days "$days" -sha256 -extfile "$work/ext" 2>/dev/null
chmod 600 "$work/tls.key"
# Replace the pair by rename, so a watcher never reads a half-written file.
mv "$work/tls.key" "$out/tls.key"
mv "$work/tls.crt" "$out/tls.crt"
echo "serving certificate for $san in $out (valid $days days)"

if [ "$apply" = 1 ]; then
  command -v kubectl >/dev/null || { echo "kubectl is required (or pass --no-apply)" >&2; exit 1; }
  # ca.crt goes into the Secret too: the webhook hands it to sidecars to verify the broker.
  kubectl -n "$namespace" create secret generic "$secret" --type=kubernetes.io/tls \
    --from-file=tls.crt="$out/tls.crt" --from-file=tls.key="$out/tls.key" --from-file=ca.crt="$out/ca.crt" \
    --dry-run=client -o yaml | kubectl apply -f -
  ca=$(base64 < "$out/ca.crt" | tr -d '\n')
  for kind in mutatingwebhookconfiguration validatingwebhookconfiguration; do
    count=$(kubectl get "$kind" "$webhook" -o jsonpath='{range .webhooks[*]}x{end}')
    patch="["
    for ((i = 0; i < ${#count}; i++)); do
      [ "$i" -gt 0 ] && patch="$patch,"
      patch="$patch{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$ca\"}"
    done
    patch="$patch]"
    kubectl patch "$kind" "$webhook" --type=json -p "$patch"
  done
  echo "secret $namespace/$secret and caBundle of the $webhook webhook configurations updated"
fi
