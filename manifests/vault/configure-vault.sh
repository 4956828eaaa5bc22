#!/usr/bin/env bash
# Configures a Vault for Warden: the Kubernetes auth method, one policy that confines every
# owner to its own KV v2 entry, and one role per owner bound to that owner's service account.
#
#   VAULT_ADDR=... VAULT_TOKEN=... ./manifests/vault/configure-vault.sh apps/svc-prod-app-1 ws/user-ds-1
#
# Environment (all optional):
#   AUTH_PATH            mount of the Kubernetes auth method (default kubernetes)
#   KV_MOUNT             KV v2 mount (default secret)
#   PATH_PREFIX          entries live at KV_MOUNT/PATH_PREFIX/NAMESPACE/SERVICEACCOUNT (default warden)
#   KUBERNETES_HOST      API server URL; set it when Vault runs outside the cluster
#   KUBERNETES_CA_CERT   file with the API server's CA (with KUBERNETES_HOST)
#   TOKEN_REVIEWER_JWT   token of a service account bound to system:auth-delegator (with KUBERNETES_HOST)
#   TOKEN_TTL            Vault token TTL (default 1h; the sidecar renews it)
#   BROKER_SERVICE_ACCOUNT  NAMESPACE/NAME of the webhook's service account: also write the role
#                        warden-broker (audience vault) and its policy over every owner's entry,
#                        for the webhook's --broker-vault-role=warden-broker (people managing
#                        owners' secrets from outside their pods; RBAC decides who, per owner)
# Re-running is safe: everything is written, not appended.
set -euo pipefail
AUTH_PATH=${AUTH_PATH:-kubernetes}
KV_MOUNT=${KV_MOUNT:-secret}
PATH_PREFIX=${PATH_PREFIX:-warden}
TOKEN_TTL=${TOKEN_TTL:-1h}
command -v vault >/dev/null || { echo "the vault CLI is required" >&2; exit 1; }
[ $# -gt 0 ] || [ -n "${BROKER_SERVICE_ACCOUNT:-}" ] || { echo "usage: $0 NAMESPACE/SERVICEACCOUNT..." >&2; exit 2; }

if ! vault read "sys/auth/$AUTH_PATH" >/dev/null 2>&1; then
  vault auth enable -path="$AUTH_PATH" kubernetes
fi
if ! vault read "sys/mounts/$KV_MOUNT" >/dev/null 2>&1; then
  vault secrets enable -path="$KV_MOUNT" -version=2 kv
fi

if [ -n "${KUBERNETES_HOST:-}" ]; then
  # Outside the cluster Vault cannot use its own pod's token and CA.
  vault write "auth/$AUTH_PATH/config" \
    kubernetes_host="$KUBERNETES_HOST" \
    kubernetes_ca_cert=@"${KUBERNETES_CA_CERT:?KUBERNETES_CA_CERT is required with KUBERNETES_HOST}" \
    token_reviewer_jwt="${TOKEN_REVIEWER_JWT:?TOKEN_REVIEWER_JWT is required with KUBERNETES_HOST}" \
    disable_local_ca_jwt=true
else
  vault write "auth/$AUTH_PATH/config" kubernetes_host="https://kubernetes.default.svc"
fi

# One policy for all owners: identity templating puts each login's own namespace and service
# account into the path, so an owner can never name another owner's entry.
accessor=$(vault read -field=accessor "sys/auth/$AUTH_PATH")
ns="{{identity.entity.aliases.$accessor.metadata.service_account_namespace}}"
sa="{{identity.entity.aliases.$accessor.metadata.service_account_name}}"
vault policy write warden-owner - <<HCL
# Managed by manifests/vault/configure-vault.sh: each Warden owner reads and writes its own entry.
path "$KV_MOUNT/data/$PATH_PREFIX/$ns/$sa" {
  capabilities = ["create", "read", "update"]
}
path "$KV_MOUNT/metadata/$PATH_PREFIX/$ns/$sa" {
  capabilities = ["read"]
}
HCL

for owner in "$@"; do
  namespace=${owner%%/*}
  account=${owner#*/}
  if [ "$namespace" = "$owner" ] || [ -z "$account" ]; then
    echo "owner $owner is not NAMESPACE/SERVICEACCOUNT" >&2; exit 2
  fi
  # audience=warden: only the token Warden projects into the sidecar logs in, not the pod's
  # default service-account token that app containers may hold.
  vault write "auth/$AUTH_PATH/role/warden-$namespace-$account" \
    bound_service_account_names="$account" \
    bound_service_account_namespaces="$namespace" \
    audience=warden \
    token_policies=warden-owner \
    token_ttl="$TOKEN_TTL" token_max_ttl=24h
  echo "role warden-$namespace-$account -> $KV_MOUNT/$PATH_PREFIX/$namespace/$account"
done

if [ -n "${BROKER_SERVICE_ACCOUNT:-}" ]; then
  bns=${BROKER_SERVICE_ACCOUNT%%/*}
  bsa=${BROKER_SERVICE_ACCOUNT#*/}
  if [ "$bns" = "$BROKER_SERVICE_ACCOUNT" ] || [ -z "$bsa" ]; then
    echo "BROKER_SERVICE_ACCOUNT $BROKER_SERVICE_ACCOUNT is not NAMESPACE/SERVICEACCOUNT" >&2; exit 2
  fi
  # The broker serves every owner's entry, so its policy covers the owners' prefix, and
  # nothing else: not the rest of the mount, not other mounts.
  vault policy write warden-broker - <<HCL
# Managed by manifests/vault/configure-vault.sh: the Warden broker reads and writes owners' entries.
path "$KV_MOUNT/data/$PATH_PREFIX/+/+" {
  capabilities = ["create", "read", "update"]
}
path "$KV_MOUNT/metadata/$PATH_PREFIX/+/+" {
  capabilities = ["read"]
}
HCL
  vault write "auth/$AUTH_PATH/role/warden-broker" \
    bound_service_account_names="$bsa" \
    bound_service_account_namespaces="$bns" \
    audience=vault \
    token_policies=warden-broker \
    token_ttl="$TOKEN_TTL" token_max_ttl=24h
  echo "role warden-broker -> $KV_MOUNT/$PATH_PREFIX/*/* (service account $BROKER_SERVICE_ACCOUNT)"
fi
