package guard

import (
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// dangerousCaps are capabilities that let a container escape its own view of the pod: reach
// another container's processes or mounts, or rewrite the pod's shared loopback network that
// the sidecar listens on.
var dangerousCaps = []corev1.Capability{
	"ALL", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "NET_ADMIN", "DAC_READ_SEARCH", "BPF", "PERFMON",
}

// podLevel refuses what exposes every container of the pod, the sidecar included: a shared
// process namespace, the node's namespaces, and redirection of the hosts the sidecar trusts.
func (r *Rules) podLevel(spec *corev1.PodSpec) *Violation {
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
		return Deny(ReasonShareProcess, "spec.shareProcessNamespace is true, which would let app containers read the Warden sidecar's memory and credentials through /proc; remove it (Warden pods cannot share a process namespace)")
	}
	for _, f := range []struct {
		name string
		on   bool
	}{{"hostPID", spec.HostPID}, {"hostIPC", spec.HostIPC}, {"hostNetwork", spec.HostNetwork}} {
		if f.on {
			return Deny(ReasonHostNamespace, "spec.%s is true; a Warden pod must not share the node's namespaces (with hostNetwork the sidecar's loopback port would be open to every process on the node). Remove spec.%s", f.name, f.name)
		}
	}
	for i, a := range spec.HostAliases {
		for _, h := range a.Hostnames {
			if r.guardedHost(h) {
				return Deny(ReasonRedirectedHost, "spec.hostAliases[%d] maps %q, a host the Warden sidecar talks to (its broker or Vault), to %s; remove the alias", i, h, a.IP)
			}
		}
	}
	if r.guardsNames() {
		custom := spec.DNSConfig != nil && (len(spec.DNSConfig.Nameservers) > 0 || len(spec.DNSConfig.Searches) > 0)
		if spec.DNSPolicy == corev1.DNSNone || custom {
			return Deny(ReasonRedirectedHost, "the pod sets its own DNS (dnsPolicy None, or dnsConfig nameservers or searches), which could resolve the hosts the Warden sidecar talks to (%s) elsewhere; use the cluster's DNS (dnsConfig options are fine)", strings.Join(r.GuardedHosts, ", "))
		}
	}
	return nil
}

// guardedHost compares host names as DNS does: case-insensitively, with or without the root dot.
func (r *Rules) guardedHost(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	for _, g := range r.GuardedHosts {
		if h == strings.TrimSuffix(strings.ToLower(g), ".") {
			return true
		}
	}
	return false
}

// guardsNames is true when a guarded host is a name (an IP address cannot be redirected by DNS).
func (r *Rules) guardsNames() bool {
	return slices.ContainsFunc(r.GuardedHosts, func(h string) bool { return net.ParseIP(h) == nil })
}

// isolation refuses containers that could reach into the sidecar. It applies to every container,
// the sidecar included, so a forged sidecar cannot carry privileges either.
func isolation(nc Named) *Violation {
	sc := nc.C.SecurityContext
	if sc == nil {
		return nil
	}
	if sc.Privileged != nil && *sc.Privileged {
		return Deny(ReasonPrivileged, "%s is privileged, which would give it the node's devices and the sidecar's mounts; remove securityContext.privileged", nc.Field())
	}
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Add {
			if slices.Contains(dangerousCaps, corev1.Capability(strings.TrimPrefix(strings.ToUpper(string(cp)), "CAP_"))) {
				return Deny(ReasonCapability, "%s adds capability %s, which can cross into the Warden sidecar; remove it from securityContext.capabilities.add", nc.Field(), cp)
			}
		}
	}
	if sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount {
		return Deny(ReasonPrivileged, "%s asks for an unmasked /proc; remove securityContext.procMount", nc.Field())
	}
	return nil
}

// decodeStatus reads a status annotation without verifying its seal.
func decodeStatus(raw string, st *contract.Status) error {
	var err error
	*st, err = parseStatus(raw)
	return err
}
