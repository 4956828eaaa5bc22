//go:build node

package node

import (
	"context"
	"io"
	"net"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/testing/testvault"
)

// vaultOwners get a Vault role.
var vaultOwners = []string{"apps/svc-secrets"}

// vaultServer is a Vault dev server on loopback, reachable by pods at Addr on the bridge.
type vaultServer struct {
	*testvault.Server
	Addr string // http://NODE_IP:PORT, for sidecars
	Root *vaultapi.Client
	ln   net.Listener
}

// startVault runs the dev server, forwards the bridge address to it, and configures it as an
// admin would for a Vault outside the cluster: the token-reviewer service account of
// manifests/vault, then manifests/vault/configure-vault.sh.
func startVault(ctx context.Context, dir string) (*vaultServer, error) {
	srv, err := testvault.Start(dir)
	if err != nil {
		return nil, err
	}
	v := &vaultServer{Server: srv}
	if v.ln, err = net.Listen("tcp", kubenode.NodeIP+":0"); err != nil {
		srv.Stop()
		return nil, err
	}
	v.Addr = "http://" + v.ln.Addr().String()
	go forward(v.ln, strings.TrimPrefix(srv.Addr, "http://"))
	if v.Root, err = srv.RootClient(); err != nil {
		v.Stop()
		return nil, err
	}
	if err := v.configure(ctx, dir); err != nil {
		v.Stop()
		return nil, err
	}
	return v, nil
}

func (v *vaultServer) Stop() {
	v.ln.Close()
	v.Server.Stop()
}

// forward copies TCP connections from ln to target.
func forward(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

func (v *vaultServer) configure(ctx context.Context, dir string) error {
	_, err := v.ConfigureKubernetesAuth(ctx, kube, env.Config, dir, testvault.KubernetesAuth{Owners: vaultOwners})
	return err
}

// tokensOf lists the accessors of live Vault tokens that a service account's Kubernetes login
// produced.
func (v *vaultServer) tokensOf(namespace, sa string) ([]string, error) {
	list, err := v.Root.Logical().List("auth/token/accessors")
	if err != nil {
		return nil, err
	}
	var out []string
	if list == nil {
		return nil, nil
	}
	keys, _ := list.Data["keys"].([]any)
	for _, k := range keys {
		acc, _ := k.(string)
		s, err := v.Root.Auth().Token().LookupAccessor(acc)
		if err != nil || s == nil {
			continue // revoked meanwhile
		}
		meta, _ := s.Data["meta"].(map[string]any)
		if meta["service_account_namespace"] == namespace && meta["service_account_name"] == sa {
			out = append(out, acc)
		}
	}
	return out, nil
}

// alive tells whether a token (by accessor) still exists.
func (v *vaultServer) alive(accessor string) bool {
	s, err := v.Root.Auth().Token().LookupAccessor(accessor)
	return err == nil && s != nil
}
