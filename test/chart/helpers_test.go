package chart

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Where the chart is installed in every render: the namespace manifests/base hard-codes.
const (
	releaseName      = "warden"
	releaseNamespace = "warden-system"
)

// kubeVersion is the Kubernetes version the chart is rendered for (the one the e2e suite runs).
var kubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// repoRoot is the Warden repository (this module lives in test/chart).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func chartDir() string { return filepath.Join(repoRoot(), "charts", "warden") }

// object is one rendered Kubernetes object, as the JSON it would be sent as (comments, YAML
// styles and key order are gone).
type object map[string]any

func (o object) kind() string       { s, _ := o["kind"].(string); return s }
func (o object) apiVersion() string { s, _ := o["apiVersion"].(string); return s }
func (o object) meta() map[string]any {
	m, _ := o["metadata"].(map[string]any)
	return m
}
func (o object) name() string      { s, _ := o.meta()["name"].(string); return s }
func (o object) namespace() string { s, _ := o.meta()["namespace"].(string); return s }

// id names an object uniquely in a render.
func (o object) id() string {
	return fmt.Sprintf("%s/%s %s/%s", o.apiVersion(), o.kind(), o.namespace(), o.name())
}

// decodeAll splits a multi-document YAML stream into objects, skipping empty documents.
func decodeAll(t testing.TB, stream string) []object {
	t.Helper()
	var out []object
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		var o object
		require.NoError(t, yaml.Unmarshal(doc, &o), "decoding:\n%s", doc)
		if len(o) == 0 {
			continue
		}
		out = append(out, o)
	}
	return out
}

// byID indexes objects by id, failing on duplicates.
func byID(t testing.TB, objs []object) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, o := range objs {
		_, dup := m[o.id()]
		require.False(t, dup, "%s rendered twice", o.id())
		m[o.id()] = o
	}
	return m
}

func ids(m map[string]object) []string {
	var out []string
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// render renders the chart as `helm template --include-crds` does, with Helm's own library
// (action.Install, dry run, client only), for the given --set style values (applied in order,
// after files).
func render(t testing.TB, sets ...string) []object {
	t.Helper()
	out, err := renderErr("", sets...)
	require.NoError(t, err)
	return decodeAll(t, out)
}

// renderErr renders with a values file's content (valuesYAML, may be empty) and --set values.
func renderErr(valuesYAML string, sets ...string) (string, error) {
	return renderIn(releaseNamespace, valuesYAML, sets...)
}

// renderIn renders into another release namespace.
func renderIn(namespace, valuesYAML string, sets ...string) (string, error) {
	chrt, err := loader.Load(chartDir())
	if err != nil {
		return "", err
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(valuesYAML), &vals); err != nil {
		return "", err
	}
	if vals == nil {
		vals = map[string]any{}
	}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			return "", fmt.Errorf("--set %s: %w", s, err)
		}
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = kubeVersion
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// kustomize builds a kustomization directory with kustomize's Go API (what `kubectl kustomize`
// runs).
func kustomize(t testing.TB, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	y, err := res.AsYaml()
	require.NoError(t, err)
	return decodeAll(t, string(y))
}

// helmLabels are the labels the chart adds to every object (templates/_helpers.tpl,
// warden.helmLabels): the only labels kustomize's objects do not have.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// withoutHelmLabels returns a deep copy of o without Helm's labels, on the object and on a pod
// template.
func withoutHelmLabels(o object) object {
	c := deepCopy(o).(map[string]any)
	strip := func(meta map[string]any) {
		labels, _ := meta["labels"].(map[string]any)
		for _, l := range helmLabels {
			delete(labels, l)
		}
		if labels != nil && len(labels) == 0 {
			delete(meta, "labels")
		}
	}
	if m, ok := c["metadata"].(map[string]any); ok {
		strip(m)
	}
	if tm, ok := dig(c, "spec", "template", "metadata").(map[string]any); ok {
		strip(tm)
	}
	return c
}

// withoutCABundle returns a deep copy of a webhook configuration without its webhooks' caBundle,
// and the caBundles it had.
func withoutCABundle(o object) (object, []string) {
	c := deepCopy(o).(map[string]any)
	var bundles []string
	hooks, _ := c["webhooks"].([]any)
	for _, h := range hooks {
		cc, _ := h.(map[string]any)["clientConfig"].(map[string]any)
		if b, ok := cc["caBundle"].(string); ok {
			bundles = append(bundles, b)
			delete(cc, "caBundle")
		}
	}
	return c, bundles
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case object:
		return deepCopy(map[string]any(v))
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = deepCopy(e)
		}
		return c
	default:
		return v
	}
}

// dig follows map keys (strings) and list indexes (ints) into v; nil when a step is missing.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, ok2 := v.(object); ok2 {
					m = o
				} else {
					return nil
				}
			}
			v = m[p]
		case int:
			l, ok := v.([]any)
			if !ok || p >= len(l) {
				return nil
			}
			v = l[p]
		}
	}
	return v
}

// find returns the one rendered object of a kind and name.
func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func has(objs []object, kind, name string) bool {
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return true
		}
	}
	return false
}

// containerArgs are the webhook container's arguments.
func containerArgs(t testing.TB, objs []object) []string {
	t.Helper()
	d := find(t, objs, "Deployment", "warden-webhook")
	var out []string
	for _, a := range dig(d, "spec", "template", "spec", "containers", 0, "args").([]any) {
		out = append(out, a.(string))
	}
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func toYAML(v any) string {
	b, _ := yaml.Marshal(v)
	return string(bytes.TrimSpace(b))
}
