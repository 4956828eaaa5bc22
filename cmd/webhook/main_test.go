package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/flagenv"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/policy"
)

func parse(t *testing.T, args ...string) (*options, webhookapp.Options, error) {
	t.Helper()
	o := &options{}
	fs := flag.NewFlagSet("warden-webhook", flag.ContinueOnError)
	o.addFlags(fs)
	require.NoError(t, fs.Parse(args))
	require.NoError(t, flagenv.Apply(fs, "WARDEN_"))
	so, err := o.serverOptions()
	return o, so, err
}

func TestDefaults(t *testing.T) {
	certs := t.TempDir()
	_, so, err := parse(t, "--cert-dir="+certs)
	require.NoError(t, err)
	def := mutate.DefaultConfig()
	assert.Equal(t, def.StagingVolume, so.Mutate.StagingVolume, "defaults come from mutate.DefaultConfig")
	assert.Equal(t, def.SnapshotVolume, so.Mutate.SnapshotVolume)
	assert.True(t, def.SidecarResources.Limits.Memory().Equal(*so.Mutate.SidecarResources.Limits.Memory()))
	assert.Empty(t, so.StatusKeySecret, "webhookapp.New applies the default, once")
	assert.Empty(t, so.PolicyConfigMap)
	assert.Equal(t, 9443, so.Port)
	assert.Empty(t, so.Mutate.BrokerCA, "no ca.crt in --cert-dir: no CA handed to sidecars")

	require.NoError(t, os.WriteFile(filepath.Join(certs, "ca.crt"), []byte("PEM"), 0o600))
	_, so, err = parse(t, "--cert-dir="+certs)
	require.NoError(t, err)
	assert.Equal(t, "PEM", so.Mutate.BrokerCA, "ca.crt in --cert-dir is the broker's CA")
}

func TestFlagsReachTheServer(t *testing.T) {
	t.Setenv("WARDEN_SIDECAR_IMAGE", "registry.example.com/sidecar:env")
	_, so, err := parse(t, "--cert-dir="+t.TempDir(), "--listen=127.0.0.1:7443", "--native-sidecar=false",
		"--sidecar-memory-limit=64Mi", "--allow-host-path=/opt/models, /data", "--allow-inline-volumes=nfs",
		"--exempt-namespaces=a,b", "--snapshot-volume=nfs: {server: nfs.local, path: /exports}", "--sidecar-image-pull-policy=Never")
	require.NoError(t, err)
	m := so.Mutate
	assert.Equal(t, "registry.example.com/sidecar:env", m.SidecarImage, "environment fallback")
	assert.Equal(t, "127.0.0.1", so.Host)
	assert.Equal(t, 7443, so.Port)
	assert.False(t, m.NativeSidecar)
	assert.Equal(t, "64Mi", m.SidecarResources.Limits.Memory().String())
	assert.Equal(t, []string{"/opt/models", "/data"}, m.HostPathAllow)
	assert.Equal(t, []string{"nfs"}, m.InlineVolumeAllow)
	assert.Equal(t, []string{"a", "b"}, m.ExemptNamespaces)
	assert.Equal(t, "nfs.local", m.SnapshotVolume.NFS.Server)
	assert.Equal(t, corev1.PullNever, m.SidecarImagePullPolicy)
}

func TestStorageFlags(t *testing.T) {
	_, so, err := parse(t, "--cert-dir="+t.TempDir())
	require.NoError(t, err)
	assert.Nil(t, so.Storage, "off unless --storage")

	_, so, err = parse(t, "--cert-dir="+t.TempDir(), "--storage", "--storage-upload-ttl=45m", "--storage-cache-buffer=2m",
		"--gcp-storage-endpoint=http://127.0.0.1:4443/storage/v1/", "--gcp-pubsub-endpoint=127.0.0.1:8085", "--gcp-storage-insecure",
		"--gcp-sts-endpoint=http://127.0.0.1:9/v1/token")
	require.NoError(t, err)
	require.NotNil(t, so.Storage)
	assert.Equal(t, 45*time.Minute, so.Storage.Lifetimes[policy.AccessUpload])
	assert.Equal(t, cloudstorage.DefaultLifetimes[policy.AccessRead], so.Storage.Lifetimes[policy.AccessRead])
	assert.Equal(t, 2*time.Minute, so.Storage.Buffer)
	assert.Equal(t, "127.0.0.1:4443", so.Storage.SignedURLHost)
	assert.True(t, so.Storage.SignedURLInsecure, "signed URLs for an http endpoint are http")
	assert.Equal(t, cloudstorage.PubSub{Endpoint: "127.0.0.1:8085", Insecure: true}, so.Storage.Publisher)
	assert.Equal(t, cloudstorage.STS{Endpoint: "http://127.0.0.1:9/v1/token"}, so.Storage.Downscoper)
	assert.Equal(t, cloudstorage.DefaultDeleteRole, so.Storage.DeleteRole)
	assert.Equal(t, 45*time.Minute, so.Storage.Lifetimes[policy.AccessUploadMain], "upload/main writes for as long as upload")
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen=9443"}, "--listen"},
		{[]string{"--listen=:0"}, "no valid port"},
		{[]string{"--sidecar-memory-limit=lots"}, "--sidecar-memory-limit"},
		{[]string{"--staging-volume={\"hostPath\":{\"path\":\"/x\"}}"}, "per pod"},
		{[]string{"--snapshot-volume={\"bogus\":{}}"}, "--snapshot-volume"},
		{[]string{"--snapshot-volume={"}, "--snapshot-volume"},
		{[]string{"--sidecar-image-pull-policy=Sometimes"}, "Always, IfNotPresent or Never"},
		{[]string{"--broker-grants=ldap"}, "not policy or rbac"},
		{[]string{"--log-level=chatty"}, "--log-level"},
		{[]string{"--token-expiration-seconds=60"}, "600"},
		{[]string{"--allow-host-path=relative"}, "absolute"},
		{[]string{"--allow-inline-volumes=tmpfs"}, "not one of"},
		{[]string{"--broker-ca-file=/does/not/exist"}, "--broker-ca-file"},
		{[]string{"--vault-addr=vault:8200"}, "http(s)://"},
		{[]string{"--storage", "--storage-read-ttl=2h"}, "at most 1h0m0s"},
		{[]string{"--storage", "--storage-cache-buffer=15m"}, "the delete lifetime 10m0s must be longer than the cache buffer"},
		{[]string{"--storage", "--storage-max-commit-objects=0"}, "at least 1"},
		{[]string{"--storage", "--storage-delete-role=storage.objectUser"}, "--storage-delete-role"},
		{[]string{"--broker-vault-role=warden-broker"}, "needs --vault-addr"},
		{[]string{"--broker-vault-role=warden-broker", "--vault-addr=http://vault:8200", "--vault-path=warden/{namespace}"}, "must name {namespace} and {owner}"},
		{[]string{"--broker-vault-role=warden-broker", "--vault-addr=http://vault:8200", "--vault-path=warden/../{namespace}/{owner}"}, "--vault-path"},
		{[]string{"--storage", "--storage-delete-role=roles/x y"}, "--storage-delete-role"},
		{[]string{"--storage", "--gcp-storage-endpoint=gcs.local:4443"}, "not an http(s) URL"},
		{[]string{"--storage", "--gcp-sts-endpoint=ftp://sts"}, "not an http(s) URL"},
	} {
		_, _, err := parse(t, append([]string{"--cert-dir=" + t.TempDir()}, tc.args...)...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
	// Every mistake at once.
	_, _, err := parse(t, "--cert-dir="+t.TempDir(), "--listen=x", "--log-level=x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--listen")
	assert.Contains(t, err.Error(), "--log-level")
}
