// Package manifests checks the install manifests: every object decodes strictly into its
// Kubernetes type, and the settings Warden's safety depends on (fail closed, scope, least
// privilege, hardened pods) are what the README promises.
package manifests

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/broker"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
)

type objects struct {
	mwc   *admissionregv1.MutatingWebhookConfiguration
	vwc   *admissionregv1.ValidatingWebhookConfiguration
	dep   *appsv1.Deployment
	svc   *corev1.Service
	pdb   *policyv1.PodDisruptionBudget
	cm    *corev1.ConfigMap
	ns    *corev1.Namespace
	roles []*rbacv1.ClusterRole
	crds  []*apiextv1.CustomResourceDefinition
	sa    *corev1.ServiceAccount
	crb   *rbacv1.ClusterRoleBinding
	role  *rbacv1.Role
	rb    *rbacv1.RoleBinding
}

// load decodes every resource listed in manifests/base/kustomization.yaml, strictly.
func load(t *testing.T) objects {
	t.Helper()
	base := filepath.Join(testenv.RepoRoot(), "manifests/base")
	var k struct {
		Resources []string `json:"resources"`
		Namespace string   `json:"namespace"`
	}
	raw, err := os.ReadFile(filepath.Join(base, "kustomization.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &k))
	require.Equal(t, "warden-system", k.Namespace)

	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	var o objects
	for _, file := range k.Resources {
		data, err := os.ReadFile(filepath.Join(base, file))
		require.NoError(t, err)
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := strict.Decode(doc, nil, nil)
			require.NoError(t, err, "%s: strict decode", file)
			switch v := obj.(type) {
			case *admissionregv1.MutatingWebhookConfiguration:
				o.mwc = v
			case *admissionregv1.ValidatingWebhookConfiguration:
				o.vwc = v
			case *appsv1.Deployment:
				o.dep = v
			case *corev1.Service:
				o.svc = v
			case *policyv1.PodDisruptionBudget:
				o.pdb = v
			case *corev1.ConfigMap:
				o.cm = v
			case *corev1.Namespace:
				o.ns = v
			case *rbacv1.ClusterRole:
				o.roles = append(o.roles, v)
			case *apiextv1.CustomResourceDefinition:
				o.crds = append(o.crds, v)
			case *rbacv1.ClusterRoleBinding:
				o.crb = v
			case *rbacv1.Role:
				o.role = v
			case *rbacv1.RoleBinding:
				o.rb = v
			case *corev1.ServiceAccount:
				o.sa = v
			default:
				t.Errorf("%s: unexpected %T", file, obj)
			}
		}
	}
	for name, ok := range map[string]bool{"webhook configuration": o.mwc != nil, "validating webhook configuration": o.vwc != nil, "deployment": o.dep != nil, "service": o.svc != nil,
		"pdb": o.pdb != nil, "policy configmap": o.cm != nil, "namespace": o.ns != nil, "cluster role": len(o.roles) > 0, "binding": o.crb != nil, "service account": o.sa != nil} {
		require.True(t, ok, "manifests lack a %s", name)
	}
	return o
}

func TestWebhookConfiguration(t *testing.T) {
	o := load(t)
	require.Len(t, o.mwc.Webhooks, 1)
	w := o.mwc.Webhooks[0]
	assert.Equal(t, admissionregv1.IfNeededReinvocationPolicy, *w.ReinvocationPolicy)
	checkWebhook(t, o, admission.MutatePath, w.FailurePolicy, w.TimeoutSeconds, w.SideEffects, w.AdmissionReviewVersions, w.ClientConfig, w.NamespaceSelector, w.MatchConditions)
	require.Len(t, w.Rules, 1)
	assert.Equal(t, []string{"pods"}, w.Rules[0].Resources)
	assert.Equal(t, []admissionregv1.OperationType{admissionregv1.Create}, w.Rules[0].Operations, "injection happens at creation only")

	require.Len(t, o.vwc.Webhooks, 1)
	v := o.vwc.Webhooks[0]
	checkWebhook(t, o, admission.ValidatePath, v.FailurePolicy, v.TimeoutSeconds, v.SideEffects, v.AdmissionReviewVersions, v.ClientConfig, v.NamespaceSelector, v.MatchConditions)
	guarded := map[string]admissionregv1.OperationType{}
	for _, r := range v.Rules {
		for _, res := range r.Resources {
			for _, op := range r.Operations {
				guarded[res+" "+string(op)] = op
			}
		}
	}
	for _, want := range []string{"pods CREATE", "pods UPDATE", "pods/status UPDATE", "pods/ephemeralcontainers UPDATE", "pods/resize UPDATE", "pods/binding CREATE",
		"pods/exec CONNECT", "pods/attach CONNECT", "persistentvolumeclaims CREATE", "volumesnapshots CREATE", "podcertificaterequests CREATE"} {
		assert.Contains(t, guarded, want, "the validating webhook guards %s", want)
	}
}

func checkWebhook(t *testing.T, o objects, path string, fail *admissionregv1.FailurePolicyType, timeout *int32, side *admissionregv1.SideEffectClass,
	versions []string, cc admissionregv1.WebhookClientConfig, sel *metav1.LabelSelector, conds []admissionregv1.MatchCondition) {
	t.Helper()
	assert.Equal(t, admissionregv1.Fail, *fail, "fail closed")
	assert.LessOrEqual(t, *timeout, int32(3))
	assert.Equal(t, admissionregv1.SideEffectClassNone, *side)
	assert.Equal(t, []string{"v1"}, versions)
	assert.Equal(t, path, *cc.Service.Path)
	assert.Equal(t, o.svc.Name, cc.Service.Name)
	assert.Equal(t, o.ns.Name, cc.Service.Namespace)
	assert.NotEmpty(t, conds)

	var optIn, exclude bool
	for _, e := range sel.MatchExpressions {
		if e.Key == "warden.dev/inject" && e.Operator == "In" && slices.Equal(e.Values, []string{"enabled"}) {
			optIn = true
		}
		if e.Key == "kubernetes.io/metadata.name" && e.Operator == "NotIn" {
			exclude = true
			for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", o.ns.Name} {
				assert.Contains(t, e.Values, ns, "never touches %s", ns)
			}
		}
	}
	assert.True(t, optIn, "scoped to opted-in namespaces")
	assert.True(t, exclude, "system and own namespaces excluded")
}

func TestDeployment(t *testing.T) {
	o := load(t)
	d := o.dep
	assert.EqualValues(t, 2, *d.Spec.Replicas)
	require.NotNil(t, d.Spec.Template.Spec.Affinity.PodAntiAffinity)
	assert.Equal(t, o.sa.Name, d.Spec.Template.Spec.ServiceAccountName)
	ps := d.Spec.Template.Spec.SecurityContext
	assert.True(t, *ps.RunAsNonRoot)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.False(t, c.Resources.Requests.Memory().IsZero())
	assert.False(t, c.Resources.Limits.Memory().IsZero())
	sc := c.SecurityContext
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)

	args := strings.Join(c.Args, " ")
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
		assert.Empty(t, m.SubPath, "%s: a subPath mount never sees ConfigMap/Secret updates", m.Name)
	}
	assert.Contains(t, args, "--policy="+mounts["policy"].MountPath+"/policy.yaml")
	assert.Contains(t, args, "--cert-dir="+mounts["tls"].MountPath)
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "policy" {
			assert.Equal(t, o.cm.Name, v.ConfigMap.Name)
		}
	}

	assert.Equal(t, d.Spec.Selector.MatchLabels, o.pdb.Spec.Selector.MatchLabels)
	assert.Equal(t, 1, o.pdb.Spec.MinAvailable.IntValue())
	assert.Equal(t, d.Spec.Selector.MatchLabels, o.svc.Spec.Selector)
	assert.Contains(t, args, "--broker-listen=:8443")
	ports := map[string]bool{}
	for _, p := range o.svc.Spec.Ports {
		ports[p.TargetPort.StrVal] = true
	}
	assert.True(t, ports["webhook"] && ports["broker"], "service exposes webhook and broker")
}

func TestLeastPrivilegeRBAC(t *testing.T) {
	o := load(t)
	// Every permission the webhook has, and why: anything more fails this test.
	allowed := map[string][]string{
		"/namespaces":                        {"get", "list", "watch"}, // scope check
		"/pods":                              {"get", "list", "watch"}, // broker pod check, identity reconciler
		"/serviceaccounts":                   {"get", "patch"},         // iam.gke.io annotation
		"authentication.k8s.io/tokenreviews": {"create"},               // sidecar tokens
		"/persistentvolumeclaims":            {"get", "list", "watch"}, // the share's claim
		"/persistentvolumes":                 {"get", "list", "watch"}, // the storage behind it
		// The sidecar certificates' signer.
		"certificates.k8s.io/podcertificaterequests":        {"get", "list", "watch"},
		"certificates.k8s.io/podcertificaterequests/status": {"update"},
		"certificates.k8s.io/signers":                       {"sign"},
		"authorization.k8s.io/subjectaccessreviews":         {"create"}, // RBAC grants
		"warden.dev/owners":                                 {"get", "list", "watch"},
		"warden.dev/datasets":                               {"get", "list", "watch"},
		"warden.dev/groups":                                 {"get", "list", "watch"},
		"warden.dev/orgs":                                   {"get", "list", "watch", "patch"}, // org admin endpoint
		"warden.dev/owners/status":                          {"update"},
		"warden.dev/datasets/status":                        {"update"},
		"warden.dev/groups/status":                          {"update"},
		"warden.dev/orgs/status":                            {"update"},
		"warden.dev/spaces":                                 {"get", "list", "watch"},
		"warden.dev/storagepolicies":                        {"get", "list", "watch"},
		"warden.dev/spaces/status":                          {"update"},
		"warden.dev/storagepolicies/status":                 {"update"},
	}
	for _, r := range o.roles {
		if r.Name != "warden-webhook" {
			continue
		}
		for _, rule := range r.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					want, ok := allowed[g+"/"+res]
					require.True(t, ok, "%s: unexpected access to %s/%s", r.Name, g, res)
					assert.Subset(t, want, rule.Verbs, "%s: %s/%s", r.Name, g, res)
					if res == "signers" {
						assert.Equal(t, []string{contract.SignerName}, rule.ResourceNames, "signs for Warden's signer only")
					} else {
						assert.Empty(t, rule.ResourceNames)
					}
				}
			}
		}
	}
	assert.Equal(t, o.sa.Name, o.crb.Subjects[0].Name)
	// Namespaced rights stay in the webhook's own namespace.
	require.NotNil(t, o.role)
	assert.Equal(t, o.ns.Name, o.role.Namespace)
	assert.Equal(t, o.ns.Name, o.rb.Namespace)
	for _, rule := range o.role.Rules {
		for _, v := range rule.Verbs {
			assert.NotContains(t, []string{"*", "delete", "deletecollection", "escalate", "bind", "impersonate"}, v)
		}
		if slices.Contains(rule.Resources, "secrets") {
			// Its status-sealing key only: read by name, created once (create cannot be named).
			if slices.Contains(rule.Verbs, "get") {
				assert.Equal(t, []string{webhookapp.DefaultStatusKeySecret}, rule.ResourceNames, "reads no Secret but its key")
			}
			assert.Subset(t, []string{"get", "create"}, rule.Verbs)
		}
	}
}

// The roles that delegate the policy: a dataset owner touches datasets and nothing else, the
// admin role only Warden's objects, and only the dataset roles are aggregated into the
// built-in namespace roles (owners, groups and orgs are never a namespace admin's).
func TestPolicyRoles(t *testing.T) {
	o := load(t)
	roles := map[string]*rbacv1.ClusterRole{}
	for _, r := range o.roles {
		roles[r.Name] = r
	}
	for name, resources := range map[string][]string{
		"warden-admin":          {"owners", "orgs", "groups", "datasets", "spaces", "storagepolicies", "accesses"},
		"warden-owner-secrets":  {"owners/secrets"},
		"warden-dataset-owner":  {"datasets"},
		"warden-dataset-viewer": {"datasets"},
		"warden-viewer":         {"owners", "orgs", "groups", "datasets", "spaces", "storagepolicies"},
		"warden-dataset-reader": {"datasets"},
	} {
		r := roles[name]
		require.NotNil(t, r, name)
		for _, rule := range r.Rules {
			assert.Equal(t, []string{"warden.dev"}, rule.APIGroups, name)
			assert.Subset(t, resources, rule.Resources, name)
			assert.NotContains(t, rule.Verbs, "*", name)
		}
		aggregated := r.Labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
		assert.Equal(t, name == "warden-dataset-owner" || name == "warden-dataset-viewer" || name == "warden-owner-secrets", aggregated, "%s aggregation", name)
	}
	// The grant verb of --broker-grants=rbac is in no aggregated role (so no built-in role has
	// it): only warden-admin and warden-dataset-reader hold it.
	for _, r := range o.roles {
		aggregated := false
		for k := range r.Labels {
			aggregated = aggregated || strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-")
		}
		for _, rule := range r.Rules {
			if slices.Contains(rule.Verbs, broker.RBACVerb) {
				assert.False(t, aggregated, "%s aggregates %s", r.Name, broker.RBACVerb)
				assert.Contains(t, []string{"warden-admin", "warden-dataset-reader"}, r.Name)
			}
		}
	}
	// The grantor binds the reader role, nothing else.
	g := roles["warden-dataset-grantor"]
	require.NotNil(t, g)
	assert.Empty(t, g.Labels["rbac.authorization.k8s.io/aggregate-to-admin"])
	for _, rule := range g.Rules {
		if slices.Contains(rule.Verbs, "bind") {
			assert.Equal(t, []string{"warden-dataset-reader"}, rule.ResourceNames)
		}
		assert.NotContains(t, rule.Verbs, "escalate")
	}
}

// The CRDs: served v1alpha1 with a status subresource, an Accepted column, a documented schema
// (kubectl explain) and CEL rules.
func TestCRDs(t *testing.T) {
	o := load(t)
	kinds := map[string]apiextv1.ResourceScope{}
	for _, c := range o.crds {
		kinds[c.Spec.Names.Kind] = c.Spec.Scope
		assert.Equal(t, "warden.dev", c.Spec.Group)
		require.Len(t, c.Spec.Versions, 1)
		v := c.Spec.Versions[0]
		assert.Equal(t, "v1alpha1", v.Name)
		assert.True(t, v.Served && v.Storage)
		assert.NotNil(t, v.Subresources.Status, "%s has a status subresource", c.Name)
		var accepted bool
		for _, col := range v.AdditionalPrinterColumns {
			accepted = accepted || col.Name == "Accepted"
		}
		assert.True(t, accepted, "%s prints Accepted", c.Name)
		schema := v.Schema.OpenAPIV3Schema
		assert.NotEmpty(t, schema.Description, "%s: kubectl explain has a description", c.Name)
		assert.NotEmpty(t, schema.Properties["spec"].Description)
	}
	assert.Equal(t, map[string]apiextv1.ResourceScope{"Owner": apiextv1.ClusterScoped, "Org": apiextv1.ClusterScoped,
		"Group": apiextv1.ClusterScoped, "Dataset": apiextv1.NamespaceScoped,
		"Space": apiextv1.ClusterScoped, "StoragePolicy": apiextv1.ClusterScoped}, kinds)
}

func TestShippedPolicyIsValid(t *testing.T) {
	o := load(t)
	_, err := policy.Parse([]byte(o.cm.Data["policy.yaml"]))
	require.NoError(t, err)
	_, err = policy.Load(filepath.Join(testenv.RepoRoot(), "examples/policy.yaml"))
	require.NoError(t, err)
}

func TestCertManagerOverlay(t *testing.T) {
	root := filepath.Join(testenv.RepoRoot(), "manifests/cert-manager")
	k, err := os.ReadFile(filepath.Join(root, "kustomization.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(k), "../base")
	assert.Contains(t, string(k), "cert-manager.io/inject-ca-from: warden-system/warden-webhook-tls")
	assert.Contains(t, string(k), "kind: ValidatingWebhookConfiguration", "both webhook configurations get the CA")
	cert, err := os.ReadFile(filepath.Join(root, "certificate.yaml"))
	require.NoError(t, err)
	o := load(t)
	assert.Contains(t, string(cert), "secretName: warden-webhook-tls")
	assert.Contains(t, string(cert), o.svc.Name+"."+o.ns.Name+".svc")
	for _, v := range o.dep.Spec.Template.Spec.Volumes {
		if v.Name == "tls" {
			assert.Equal(t, "warden-webhook-tls", v.Secret.SecretName)
		}
	}
}
