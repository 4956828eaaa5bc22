//go:build node

package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/testing/testenv"
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
	if v.Root, err = vaultapi.NewClient(&vaultapi.Config{Address: srv.Addr}); err != nil {
		v.Stop()
		return nil, err
	}
	v.Root.SetToken(testvault.RootToken)
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
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "manifests/vault/token-reviewer.yaml"))
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var sa corev1.ServiceAccount
	var crb rbacv1.ClusterRoleBinding
	if err := dec.Decode(&sa); err != nil {
		return err
	}
	if err := dec.Decode(&crb); err != nil {
		return err
	}
	if _, err := kube.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, &sa, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); err != nil {
		return err
	}
	tr, err := kube.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "kube-ca.crt")
	if err := os.WriteFile(caFile, env.Config.CAData, 0o644); err != nil {
		return err
	}
	script := filepath.Join(testenv.RepoRoot(), "manifests/vault/configure-vault.sh")
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := v.Script(cctx, []string{
		"KUBERNETES_HOST=" + env.Config.Host,
		"KUBERNETES_CA_CERT=" + caFile,
		"TOKEN_REVIEWER_JWT=" + tr.Status.Token,
	}, script, vaultOwners...)
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return nil
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
