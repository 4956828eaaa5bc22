package e2e

// The tenant as most clusters make one: a real user bound, in the opted-in namespace apps, to
// the built-in admin role (and another to edit), with the rules the API server's RBAC
// aggregation gives those roles (envtest runs no controller-manager: aggregateClusterRoles does
// what its aggregation controller does). Everything goes through the real API server with the
// admission objects and roles of manifests/base, acting through impersonation. Each attack must
// be refused for its reason (Warden's, counted, or RBAC's); each harmless look-alike passes.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/kubeletcert"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

const (
	tenantAdmin  = "tenant-admin"  // the built-in admin role in apps
	tenantEditor = "tenant-editor" // the built-in edit role in apps
	e2eNode      = "e2e-node"
)

// aggregateClusterRoles fills every aggregated ClusterRole (admin, edit, view, Warden's
// aggregated roles' targets) with the rules of the roles its selectors match, until nothing
// changes, as kube-controller-manager's clusterrole-aggregation controller does.
func aggregateClusterRoles(t testing.TB) {
	t.Helper()
	for range 5 {
		changed := false
		list, err := kube.RbacV1().ClusterRoles().List(ctx(t), metav1.ListOptions{})
		require.NoError(t, err)
		for i := range list.Items {
			cr := &list.Items[i]
			if cr.AggregationRule == nil {
				continue
			}
			var rules []rbacv1.PolicyRule
			for _, sel := range cr.AggregationRule.ClusterRoleSelectors {
				s, err := metav1.LabelSelectorAsSelector(&sel)
				require.NoError(t, err)
				for _, other := range list.Items {
					if other.Name != cr.Name && s.Matches(labels.Set(other.Labels)) {
						for _, r := range other.Rules {
							if !containsRule(rules, r) {
								rules = append(rules, r)
							}
						}
					}
				}
			}
			if len(rules) == len(cr.Rules) {
				continue
			}
			cr.Rules = rules
			_, err = kube.RbacV1().ClusterRoles().Update(ctx(t), cr, metav1.UpdateOptions{})
			require.NoError(t, err)
			changed = true
		}
		if !changed {
			return
		}
	}
}

func containsRule(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	b, _ := json.Marshal(r)
	for _, x := range rules {
		if a, _ := json.Marshal(x); string(a) == string(b) {
			return true
		}
	}
	return false
}

// as is a client acting as user (with groups) through impersonation.
func as(t testing.TB, user string, groups ...string) kubernetes.Interface {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	return kubernetes.NewForConfigOrDie(cfg)
}

// asServiceAccount is a tenant acting as a service account of their namespace, which the edit
// role's "impersonate serviceaccounts" permits (checked first). The suite's client impersonates
// it directly: the API server allows no impersonation chains.
func asServiceAccount(t testing.TB, impersonator, ns, sa string) kubernetes.Interface {
	t.Helper()
	review, err := as(t, impersonator).AuthorizationV1().SelfSubjectAccessReviews().Create(ctx(t), &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Verb: "impersonate", Resource: "serviceaccounts", Name: sa}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.True(t, review.Status.Allowed, "%s may impersonate %s/%s", impersonator, ns, sa)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}
	return kubernetes.NewForConfigOrDie(cfg)
}

// tenantSetup binds the tenant users and the node's user, once per test.
func tenantSetup(t testing.TB) {
	t.Helper()
	setup(t)
	aggregateClusterRoles(t)
	roleBinding(t, "apps", "e2e-tenant-admin", "admin", tenantAdmin)
	roleBinding(t, "apps", "e2e-tenant-editor", "edit", tenantEditor)
	require.NoError(t, kubeletcert.AllowNodes(ctx(t), kube))
	_, err := kubeletcert.EnsureNode(ctx(t), kube, e2eNode)
	require.NoError(t, err)
}

// nodeClient acts as the kubelet of e2eNode.
func nodeClient(t testing.TB) kubernetes.Interface {
	return as(t, "system:node:"+e2eNode, "system:nodes")
}

// onNode creates an injected pod bound to e2eNode, deleted when the test ends.
func onNode(t testing.TB, name string) *corev1.Pod {
	t.Helper()
	p := newPod(name, "svc-prod-app-1")
	p.Spec.NodeName = e2eNode
	got, err := createPod(t, "apps", p, false)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = kube.CoreV1().Pods("apps").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	return got
}

// kubeletCertificate is what the kubelet would project into the pod's warden-token volume.
func kubeletCertificate(t testing.TB, p *corev1.Pod) string {
	t.Helper()
	bundle, err := pcrAs(t, nodeClient(t), p, e2eNode)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "credentials.pem")
	require.NoError(t, os.WriteFile(f, bundle, 0o600))
	return f
}

// strictBroker is a second webhook process as a cluster runs it by default: pod-certificate
// identity, no tokens accepted, RBAC grants. It shares the status keys (and so the sidecar
// authority) with the suite's webhook, whose leader answers certificate requests.
var strictBroker string

func startStrictBroker(t *testing.T) string {
	t.Helper()
	if strictBroker != "" {
		return strictBroker
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "ghcr.io/warden-dev/warden-sidecar:e2e"
	srv, err := webhookapp.New(webhookapp.Options{
		RestConfig: webhookCfg, PolicyFile: policyFile, Host: "127.0.0.1", Port: port, CertDir: env.CertDir,
		BrokerAddr: "127.0.0.1:0", BrokerGrants: webhookapp.GrantsRBAC, Namespace: "warden-system", Mutate: cfg,
		Log: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(c) }()
	// The suite's process ends after every test: so does this one.
	stopStrict = func() { cancel(); <-done }
	require.Eventually(t, func() bool { return srv.PolicyView() != nil }, time.Minute, 50*time.Millisecond)
	strictBroker = "https://" + srv.BrokerAddr()
	return strictBroker
}

var stopStrict = func() {}

// certClient is a sidecar's broker client with the pod certificate in file.
func certClient(t testing.TB, base, file string) *brokerapi.Client {
	cfg := &tls.Config{RootCAs: caPool(t), GetClientCertificate: (&brokerapi.ClientCertificate{File: file}).Get}
	return &brokerapi.Client{BaseURL: base, HTTP: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}}
}

// mintToken is `kubectl create token SA --audience warden --bound-object-kind Pod` as c.
func mintToken(t testing.TB, c kubernetes.Interface, p *corev1.Pod) (string, error) {
	tr, err := c.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx(t), p.Spec.ServiceAccountName, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences: []string{contract.TokenAudience}, ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// forbiddenByRBAC checks the API server's authorizer (not Warden) refused.
func forbiddenByRBAC(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err, "allowed")
	assert.True(t, apierrors.IsForbidden(err), "forbidden: %v", err)
	assert.NotContains(t, err.Error(), "warden: ", "refused by RBAC, before Warden")
}

// The tenant's pods: Warden's parts cannot be changed through any subresource, by whoever may
// write it.
func TestTenantSubresources(t *testing.T) {
	tenantSetup(t)
	admin := as(t, tenantAdmin)
	real := injected(t, "tenant-status")
	// Controllers and operators often hold pods/status; the invariant must not depend on who.
	_, err := kube.RbacV1().Roles("apps").Create(ctx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "e2e-pod-status"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/status", "pods/binding"}, Verbs: []string{"get", "update", "patch", "create"}}}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	_, err = kube.RbacV1().RoleBindings("apps").Create(ctx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-pod-status"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "e2e-pod-status"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "pod-operator"}}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	operator := as(t, "pod-operator")
	statusPatch := func(c kubernetes.Interface, name, patch string) func() error {
		return func() error {
			_, err := c.CoreV1().Pods("apps").Patch(ctx(t), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
			return err
		}
	}

	t.Run("the built-in admin role cannot write pods/status", func(t *testing.T) {
		forbiddenByRBAC(t, statusPatch(admin, real.Name, `{"metadata":{"annotations":{"warden.dev/status":null}}}`)())
	})
	t.Run("remove the status through pods/status", func(t *testing.T) {
		refused(t, guard.ReasonImmutable, statusPatch(operator, real.Name, `{"metadata":{"annotations":{"warden.dev/status":null}}}`))
	})
	t.Run("rewrite the status through pods/status", func(t *testing.T) {
		forged := strings.Replace(real.Annotations[contract.AnnotationStatus], `"workload":"app"`, `"workload":"job"`, 1)
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{contract.AnnotationStatus: forged}}})
		refused(t, guard.ReasonImmutable, statusPatch(operator, real.Name, string(b)))
	})
	t.Run("put a sealed status on a pod Warden never injected, through pods/status", func(t *testing.T) {
		ensureNamespace(t, "tenant-late", false)
		ensureServiceAccount(t, "tenant-late", "svc")
		plain, err := createPod(t, "tenant-late", newPod("before-optin", "svc"), false)
		require.NoError(t, err)
		optIn(t, "tenant-late")
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{contract.AnnotationStatus: real.Annotations[contract.AnnotationStatus]}}})
		require.Eventually(t, func() bool {
			_, err = kube.CoreV1().Pods("tenant-late").Patch(ctx(t), plain.Name, types.MergePatchType, b, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, "status")
			return err != nil
		}, time.Minute, 200*time.Millisecond, "the new label never reached the webhook")
		assert.Contains(t, err.Error(), "warden: ")
	})
	t.Run("swap the sidecar image by a pod update", func(t *testing.T) {
		refused(t, guard.ReasonImmutable, func() error {
			p, err := operator.CoreV1().Pods("apps").Get(ctx(t), real.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Spec.InitContainers[0].Image = "evil.example.com/sidecar:v1"
			_, err = operator.CoreV1().Pods("apps").Update(ctx(t), p, metav1.UpdateOptions{})
			return err
		})
	})
	t.Run("bind with Warden's status annotation", func(t *testing.T) {
		pending := injected(t, "tenant-unbound")
		refused(t, guard.ReasonImmutable, func() error {
			return operator.CoreV1().Pods("apps").Bind(ctx(t), &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: pending.Name, Annotations: map[string]string{contract.AnnotationStatus: "{}"}},
				Target:     corev1.ObjectReference{Kind: "Node", Name: e2eNode},
			}, metav1.CreateOptions{})
		})
		// Harmless: a binding as the scheduler makes it.
		assert.NoError(t, operator.CoreV1().Pods("apps").Bind(ctx(t), &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pending.Name, Annotations: map[string]string{"scheduler.example.com/zone": "a"}},
			Target:     corev1.ObjectReference{Kind: "Node", Name: e2eNode},
		}, metav1.CreateOptions{}))
	})
	t.Run("exec into the sidecar as the built-in admin", func(t *testing.T) {
		refused(t, guard.ReasonSidecarAccess, func() error {
			return admin.CoreV1().RESTClient().Post().Namespace("apps").Resource("pods").Name(real.Name).SubResource("exec").
				Param("container", contract.SidecarName).Param("command", "sh").Param("stdout", "true").Do(ctx(t)).Error()
		})
	})
	t.Run("harmless: status conditions written by a controller", func(t *testing.T) {
		assert.NoError(t, statusPatch(operator, real.Name, `{"status":{"conditions":[{"type":"example.com/Checked","status":"True"}]}}`)())
	})
	t.Run("harmless: another annotation through pods/status", func(t *testing.T) {
		assert.NoError(t, statusPatch(operator, real.Name, `{"metadata":{"annotations":{"example.com/note":"ok"}}}`)())
	})
	cur, err := kube.CoreV1().Pods("apps").Get(ctx(t), real.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, real.Annotations[contract.AnnotationStatus], cur.Annotations[contract.AnnotationStatus], "the seal is what Warden wrote")
	assert.Equal(t, real.Spec.InitContainers[0].Image, cur.Spec.InitContainers[0].Image)
}

func optIn(t *testing.T, ns string) {
	t.Helper()
	n, err := kube.CoreV1().Namespaces().Get(ctx(t), ns, metav1.GetOptions{})
	require.NoError(t, err)
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[contract.LabelInject] = contract.LabelInjectEnabled
	_, err = kube.CoreV1().Namespaces().Update(ctx(t), n, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// A namespace admin mints tokens and impersonates service accounts (the built-in edit role).
// None of it speaks to the broker as a pod: only a certificate the kubelet requested does.
func TestTenantCannotActAsTheSidecar(t *testing.T) {
	tenantSetup(t)
	broker := startStrictBroker(t)
	p := onNode(t, "tenant-sidecar")
	check := func(c *brokerapi.Client) error {
		_, err := c.Check(ctx(t), "apps/svc-prod-app-1", grants.Caller{User: "user-ds-1"}, "prod-dataset-1")
		return err
	}

	// The kubelet's certificate is the sidecar's identity.
	good := certClient(t, broker, kubeletCertificate(t, p))
	require.NoError(t, check(good))

	for _, who := range []string{tenantAdmin, tenantEditor} {
		t.Run(who+" mints a warden token bound to the pod", func(t *testing.T) {
			tok, err := mintToken(t, as(t, who), p)
			require.NoError(t, err, "the built-in roles may create serviceaccounts/token")
			c := brokerClient(t, broker, tok, caPool(t))
			err = check(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "accepts no service-account tokens")
		})
	}
	t.Run("the tenant impersonates the owner to request a certificate", func(t *testing.T) {
		sa := asServiceAccount(t, tenantEditor, "apps", "svc-prod-app-1")
		_, err := pcrAs(t, sa, p, e2eNode)
		forbiddenByRBAC(t, err)
	})
	t.Run("the built-in admin role cannot request pod certificates", func(t *testing.T) {
		_, err := pcrAs(t, as(t, tenantAdmin), p, e2eNode)
		forbiddenByRBAC(t, err)
	})
	// What an operator might be given (bound below to pcr-operator).
	_, err := kube.RbacV1().ClusterRoles().Create(ctx(t), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-pcr-creator"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"podcertificaterequests"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	t.Run("the tenant grants itself pod certificates or the node's role", func(t *testing.T) {
		_, err := as(t, tenantAdmin).RbacV1().Roles("apps").Create(ctx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "steal-certs"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"podcertificaterequests"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{})
		forbiddenByRBAC(t, err)
		for _, role := range []string{"system:node", "e2e-pcr-creator"} {
			_, err = as(t, tenantAdmin).RbacV1().RoleBindings("apps").Create(ctx(t), saBinding("steal-"+strings.ReplaceAll(role, ":", "-"), role), metav1.CreateOptions{})
			forbiddenByRBAC(t, err)
		}
	})
	t.Run("someone granted podcertificaterequests is not the kubelet", func(t *testing.T) {
		roleBinding(t, "apps", "e2e-pcr-operator", "e2e-pcr-creator", "pcr-operator")
		refused(t, guard.ReasonCertificateRequester, func() error { _, err := pcrAs(t, as(t, "pcr-operator"), p, e2eNode); return err })
		// Harmless: another signer's requests are not Warden's business (nor wait on it).
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		require.NoError(t, err)
		node, err := kube.CoreV1().Nodes().Get(ctx(t), e2eNode, metav1.GetOptions{})
		require.NoError(t, err)
		sa, err := kube.CoreV1().ServiceAccounts("apps").Get(ctx(t), "svc-prod-app-1", metav1.GetOptions{})
		require.NoError(t, err)
		_, err = as(t, "pcr-operator").CertificatesV1().PodCertificateRequests("apps").Create(ctx(t), &certv1.PodCertificateRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "other-signer-"},
			Spec: certv1.PodCertificateRequestSpec{SignerName: "example.com/other", PodName: p.Name, PodUID: p.UID,
				ServiceAccountName: sa.Name, ServiceAccountUID: sa.UID, NodeName: types.NodeName(e2eNode), NodeUID: node.UID,
				MaxExpirationSeconds: ptr.To[int32](3600), StubPKCS10Request: csr},
		}, metav1.CreateOptions{})
		assert.NoError(t, err)
	})
	t.Run("another node's kubelet", func(t *testing.T) {
		refused(t, guard.ReasonCertificateRequester, func() error {
			_, err := pcrAs(t, as(t, "system:node:other-node", "system:nodes"), p, e2eNode)
			return err
		})
	})
	t.Run("a pod on another node", func(t *testing.T) {
		elsewhere := newPod("tenant-elsewhere", "svc-prod-app-1")
		elsewhere.Spec.NodeName = "other-node"
		ep, err := createPod(t, "apps", elsewhere, false)
		require.NoError(t, err)
		defer kube.CoreV1().Pods("apps").Delete(context.Background(), ep.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		_, err = pcrAs(t, nodeClient(t), ep, e2eNode) // this kubelet's node, not the pod's
		var denied *kubeletcert.Denied
		require.ErrorAs(t, err, &denied)
		assert.Equal(t, "PodMismatch", denied.Reason, denied.Message)
	})
	t.Run("a pod that is not Warden's", func(t *testing.T) {
		setup(t)
		plain := newPod("tenant-plain", "whoever")
		plain.Spec.NodeName = e2eNode
		pp, err := createPod(t, "plain", plain, false)
		require.NoError(t, err)
		defer kube.CoreV1().Pods("plain").Delete(context.Background(), pp.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		_, err = pcrAs(t, nodeClient(t), pp, e2eNode)
		var denied *kubeletcert.Denied
		require.ErrorAs(t, err, &denied)
		assert.Equal(t, "PodNotTrusted", denied.Reason, denied.Message)
	})
	t.Run("a deleted pod's certificate stops working within the cache TTL", func(t *testing.T) {
		gone := onNode(t, "tenant-gone")
		c := certClient(t, broker, kubeletCertificate(t, gone))
		require.NoError(t, check(c))
		require.NoError(t, kube.CoreV1().Pods("apps").Delete(ctx(t), gone.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
		require.Eventually(t, func() bool { err := check(c); return err != nil && strings.Contains(err.Error(), "no longer exists") },
			time.Minute, 200*time.Millisecond, "the broker's verified-identity cache outlived the pod by more than its TTL")
	})
	// Harmless: the real sidecar again, after all of the above.
	require.NoError(t, check(good))
}

// pcrAs asks Warden's signer for p's certificate with c's identity, claiming node (the uid of
// e2eNode's object), and returns the credential bundle.
func pcrAs(t testing.TB, c kubernetes.Interface, p *corev1.Pod, node string) ([]byte, error) {
	n, err := kube.CoreV1().Nodes().Get(ctx(t), e2eNode, metav1.GetOptions{})
	require.NoError(t, err)
	sa, err := kube.CoreV1().ServiceAccounts(p.Namespace).Get(ctx(t), p.Spec.ServiceAccountName, metav1.GetOptions{})
	require.NoError(t, err)
	n.Name = node
	return kubeletcert.Request(ctx(t), c, n, p, sa)
}

// RBAC grants: a namespace admin can neither hold nor grant a dataset read, through
// aggregation, a Role of their own, or a binding; only whoever governs the dataset can.
func TestTenantCannotGrantDatasets(t *testing.T) {
	tenantSetup(t)
	broker := startStrictBroker(t)
	ensureNamespaceWithRoot(t, "finance-data", "prod/finance")
	platform := objectsClient(t, "")
	ledger := newDataset("finance-data", "ledger-2", "ledger")
	ledger.Spec.Environments = []wardenv1.Environment{"prod"}
	require.NoError(t, platform.Create(ctx(t), ledger))
	acceptedAs(t, platform, ledger, wardenv1.ReasonAccepted)
	admin := as(t, tenantAdmin)
	c := certClient(t, broker, kubeletCertificate(t, onNode(t, "tenant-rbac")))
	decide := func(caller grants.Caller, id string) grants.Decision {
		var d grants.Decision
		require.Eventually(t, func() bool {
			var err error
			d, err = c.Check(ctx(t), "apps/svc-prod-app-1", caller, id)
			return err == nil
		}, time.Minute, 200*time.Millisecond)
		return d
	}

	readRule := rbacv1.PolicyRule{APIGroups: []string{"warden.dev"}, Resources: []string{"datasets"}, Verbs: []string{"read"}, ResourceNames: []string{"ledger-2"}}
	t.Run("a Role of the tenant's own with read", func(t *testing.T) {
		_, err := admin.RbacV1().Roles("apps").Create(ctx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "steal-ledger"}, Rules: []rbacv1.PolicyRule{readRule}}, metav1.CreateOptions{})
		forbiddenByRBAC(t, err)
		assert.Contains(t, err.Error(), "permissions not currently held")
	})
	t.Run("binding warden-dataset-reader in the tenant's namespace", func(t *testing.T) {
		_, err := admin.RbacV1().RoleBindings("apps").Create(ctx(t), saBinding("steal", "warden-dataset-reader"), metav1.CreateOptions{})
		forbiddenByRBAC(t, err)
	})
	t.Run("binding warden-dataset-reader in the dataset's namespace", func(t *testing.T) {
		_, err := admin.RbacV1().RoleBindings("finance-data").Create(ctx(t), saBinding("steal", "warden-dataset-reader"), metav1.CreateOptions{})
		forbiddenByRBAC(t, err)
	})
	t.Run("binding the grantor role to itself", func(t *testing.T) {
		_, err := admin.RbacV1().RoleBindings("apps").Create(ctx(t), saBinding("steal-grantor", "warden-dataset-grantor"), metav1.CreateOptions{})
		forbiddenByRBAC(t, err)
	})
	t.Run("the aggregated roles, bound to the owner, grant no read", func(t *testing.T) {
		for _, role := range []string{"warden-dataset-viewer", "warden-dataset-owner", "admin"} {
			_, err := admin.RbacV1().RoleBindings("apps").Create(ctx(t), saBinding("e2e-self-"+role, role), metav1.CreateOptions{})
			require.NoError(t, err, "a namespace admin may bind %s (they hold it)", role)
		}
		for _, id := range []string{"ledger-2", "prod-dataset-1"} {
			d := decide(grants.Caller{User: tenantAdmin}, id)
			assert.False(t, d.Owner.CanRead, "%s: the owner holds no read", id)
			assert.False(t, d.Allowed(), id)
		}
	})
	// Harmless look-alike: delegation as Warden ships it. The platform gives the finance team
	// warden-dataset-grantor in their namespace; they grant their dataset to the app and to ann.
	roleBinding(t, "finance-data", "e2e-finance-grantor", "warden-dataset-grantor", "dora")
	dora := as(t, "dora")
	grant := saBinding("ledger-readers", "warden-dataset-reader")
	grant.Subjects = append(grant.Subjects, rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "ann"})
	_, err := dora.RbacV1().RoleBindings("finance-data").Create(ctx(t), grant, metav1.CreateOptions{})
	require.NoError(t, err, "the dataset's grantor grants reading it")
	require.Eventually(t, func() bool { return decide(grants.Caller{User: "ann"}, "ledger-2").Allowed() }, time.Minute, 500*time.Millisecond)
	assert.False(t, decide(grants.Caller{User: tenantAdmin}, "ledger-2").Allowed(), "the caller needs a grant too")
	// The grantor cannot reach beyond the namespace they were given.
	_, err = dora.RbacV1().RoleBindings("apps").Create(ctx(t), saBinding("dora-elsewhere", "warden-dataset-reader"), metav1.CreateOptions{})
	forbiddenByRBAC(t, err)
}

func saBinding(name, clusterRole string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "svc-prod-app-1", Namespace: "apps"}}}
}

// A tenant's Dataset that could never be accepted does not hold its id: the real one, created
// later by the dataset's owners, is the one in force.
func TestTenantCannotSquatDatasetIDs(t *testing.T) {
	tenantSetup(t)
	tenant := objectsClient(t, tenantAdmin)
	squat := newDataset("apps", "finance-ledger", "ledger", "serviceAccount:apps/svc-prod-app-1", "user:"+tenantAdmin)
	require.NoError(t, tenant.Create(ctx(t), squat), "the admin role holds warden-dataset-owner by aggregation")
	assert.Equal(t, wardenv1.ReasonNoSnapshotRoot, accepted(t, tenant, squat).Reason)
	realHoldsID(t, "finance-ledgers", "finance-ledger", "ledger")
}

// realHoldsID creates, after a tenant's older squatter, the data team's Dataset of that id in a
// namespace of their own: it is accepted, in force, and the tenant reads nothing through it.
func realHoldsID(t *testing.T, namespace, id, snapshot string) {
	t.Helper()
	time.Sleep(1100 * time.Millisecond) // creation timestamps have seconds: the squatter is older
	ensureNamespaceWithRoot(t, namespace, "prod/finance")
	platform := objectsClient(t, "")
	real := newDataset(namespace, id, snapshot, "user:ann")
	require.NoError(t, platform.Create(ctx(t), real))
	acceptedAs(t, platform, real, wardenv1.ReasonAccepted) // the squatter never held the id
	require.Eventually(t, func() bool {
		d, ok := server.PolicyView().Dataset(id)
		return ok && d.Namespace == namespace && d.Snapshot == "prod/finance/"+snapshot
	}, time.Minute, 100*time.Millisecond)
	assert.False(t, server.PolicyView().CanRead(id, policy.Principal{User: tenantAdmin}))
}

// A tenant whose namespace has a snapshot root (its own data lives on the share) takes ids
// only among those a cluster admin gave the namespace (warden.dev/dataset-ids): an older
// Dataset outside them neither holds nor shadows another team's id, and the tenant cannot
// widen the claims, which are the namespace's annotations.
func TestTenantCannotTakeUnclaimedIDs(t *testing.T) {
	tenantSetup(t)
	ensureNamespaceWithRoot(t, "tenant-data", "prod/tenant")
	n, err := kube.CoreV1().Namespaces().Get(ctx(t), "tenant-data", metav1.GetOptions{})
	require.NoError(t, err)
	n.Annotations[contract.AnnotationDatasetIDs] = "tenant-*"
	_, err = kube.CoreV1().Namespaces().Update(ctx(t), n, metav1.UpdateOptions{})
	require.NoError(t, err)
	roleBinding(t, "tenant-data", "e2e-tenant-admin", "admin", tenantAdmin)
	tenant := objectsClient(t, tenantAdmin)

	n.Annotations[contract.AnnotationDatasetIDs] = "*"
	_, err = as(t, tenantAdmin).CoreV1().Namespaces().Update(ctx(t), n, metav1.UpdateOptions{})
	assert.True(t, apierrors.IsForbidden(err), "the admin role cannot change its namespace's claims: %v", err)

	squat := newDataset("tenant-data", "finance-report", "report", "user:"+tenantAdmin)
	require.NoError(t, tenant.Create(ctx(t), squat))
	// The namespace's claims reach the webhook's cache a moment after the update: wait for them.
	cond := acceptedAs(t, tenant, squat, wardenv1.ReasonIDNotClaimed)
	assert.Contains(t, cond.Message, `warden.dev/dataset-ids="tenant-*"`)
	own := newDataset("tenant-data", "tenant-logs", "logs", "user:"+tenantAdmin)
	require.NoError(t, tenant.Create(ctx(t), own))
	acceptedAs(t, tenant, own, wardenv1.ReasonAccepted) // harmless: an id the namespace claims

	realHoldsID(t, "finance-reports", "finance-report", "report")
}

// The storage behind the share's claim, under another name: an inline CSI volume of the
// PersistentVolume's driver.
func TestTenantCannotMountTheSharesDriver(t *testing.T) {
	tenantSetup(t)
	ensureNamespace(t, "csi-share", true)
	ensureServiceAccount(t, "csi-share", "svc-prod-app-1")
	_, err := kube.CoreV1().PersistentVolumes().Create(ctx(t), &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-share-csi"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Ti")},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "nfs.csi.k8s.io", VolumeHandle: "filer#exports#datasets", VolumeAttributes: map[string]string{"server": "filer", "share": "/exports/datasets"}}},
		},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	inline := func(driver string) func() error {
		return func() error {
			p := newPod("csi-attack", "svc-prod-app-1")
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver: driver, VolumeAttributes: map[string]string{"server": "filer", "share": "/exports/datasets"}}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			_, err := kube.CoreV1().Pods("csi-share").Create(ctx(t), p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
	}
	_, err = kube.CoreV1().ServiceAccounts("csi-share").Get(ctx(t), "svc-prod-app-1", metav1.GetOptions{})
	require.NoError(t, err)
	// csi-share/svc-prod-app-1 is an Owner object for this test.
	o := &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "csi-share.svc-prod-app-1"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "csi-share/svc-prod-app-1", Environment: "prod"}}
	platform := objectsClient(t, "")
	if err := platform.Create(ctx(t), o); !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	acceptedAs(t, platform, o, wardenv1.ReasonAccepted)

	t.Run("while the share's claim is not bound: any inline CSI volume", func(t *testing.T) {
		refused(t, guard.ReasonForbiddenVolume, inline("secrets-store.csi.k8s.io"))
	})
	_, err = kube.CoreV1().PersistentVolumeClaims("csi-share").Create(ctx(t), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "warden-snapshots"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}, VolumeName: "e2e-share-csi",
			StorageClassName: ptr.To(""), Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Ti")}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return inline("secrets-store.csi.k8s.io")() == nil }, time.Minute, 200*time.Millisecond,
		"the webhook never saw the bound claim")
	t.Run("an inline volume of the share's CSI driver", func(t *testing.T) {
		refused(t, guard.ReasonForbiddenVolume, inline("nfs.csi.k8s.io"))
	})
	t.Run("harmless: an inline volume of another CSI driver", func(t *testing.T) {
		assert.NoError(t, inline("secrets-store.csi.k8s.io")())
	})
}

// What a tenant who mints the owner's token with audience warden gets from Vault: the owner's
// own entry (read, create, update) and its metadata (read), exactly what the app already
// reaches through the sidecar, only without the sidecar's audit line (Vault's own audit device
// still records the login and every request). Nothing else.
func TestTenantVaultToken(t *testing.T) {
	tenantSetup(t)
	p := injected(t, "tenant-vault")
	tok, err := mintToken(t, as(t, tenantAdmin), p)
	require.NoError(t, err)
	vc, err := vault.NewClient(&vault.Config{Address: vaultSrv.Addr})
	require.NoError(t, err)
	secret, err := vc.Logical().Write("auth/kubernetes/login", map[string]any{"role": "warden-apps-svc-prod-app-1", "jwt": tok})
	require.NoError(t, err, "Vault's Kubernetes auth accepts the minted token: it cannot tell it from the sidecar's")
	vc.SetToken(secret.Auth.ClientToken)
	assert.ElementsMatch(t, []string{"default", "warden-owner"}, secret.Auth.Policies)

	_, err = vc.Logical().Write("secret/data/warden/apps/svc-prod-app-1", map[string]any{"data": map[string]any{"k": "v"}})
	assert.NoError(t, err, "the owner's own entry")
	_, err = vc.Logical().Read("secret/metadata/warden/apps/svc-prod-app-1")
	assert.NoError(t, err, "its metadata, read")
	root := rootClient(t)
	_, err = root.Logical().Write("secret/data/warden/ws/user-ds-1", map[string]any{"data": map[string]any{"other": "owner"}})
	require.NoError(t, err)
	for name, attempt := range map[string]func() error{
		"another owner's entry":          func() error { _, err := vc.Logical().Read("secret/data/warden/ws/user-ds-1"); return err },
		"listing the owners":             func() error { _, err := vc.Logical().List("secret/metadata/warden"); return err },
		"destroying the entry's history": func() error { _, err := vc.Logical().Delete("secret/metadata/warden/apps/svc-prod-app-1"); return err },
		"deleting versions": func() error {
			_, err := vc.Logical().Write("secret/delete/warden/apps/svc-prod-app-1", map[string]any{"versions": []int{1}})
			return err
		},
		"another owner's role": func() error {
			_, err := vc.Logical().Write("auth/kubernetes/login", map[string]any{"role": "warden-ws-user-ds-1", "jwt": tok})
			return err
		},
		"minting tokens": func() error { _, err := vc.Auth().Token().Create(&vault.TokenCreateRequest{}); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := attempt()
			require.Error(t, err, "allowed")
			assert.Contains(t, err.Error(), "403", err.Error())
		})
	}
}
