package app

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/warden-dev/warden/pkg/guard"
)

func TestShareBacking(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	claim := func(ns, volume string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "warden-snapshots"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: volume}}
	}
	pv := func(name string, src corev1.PersistentVolumeSource) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: src}}
	}
	r := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		claim("csi", "pv-csi"), claim("nfs", "pv-nfs"), claim("local", "pv-local"), claim("pending", ""), claim("dangling", "pv-gone"),
		pv("pv-csi", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "nfs.csi.k8s.io", VolumeHandle: "h"}}),
		pv("pv-nfs", corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "filer", Path: "/exports"}}),
		pv("pv-local", corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/share"}}),
	).Build()
	s := shareBacking{r}
	assert.Equal(t, guard.Backing{CSIDriver: "nfs.csi.k8s.io"}, s.Backing("csi", "warden-snapshots"))
	assert.Equal(t, "/exports", s.Backing("nfs", "warden-snapshots").NFS.Path)
	assert.Equal(t, guard.Backing{HostPath: "/mnt/share"}, s.Backing("local", "warden-snapshots"))
	for _, ns := range []string{"pending", "dangling", "missing"} {
		b := s.Backing(ns, "warden-snapshots")
		assert.NotEmpty(t, b.Unknown, ns)
		assert.Empty(t, b.CSIDriver, ns)
	}
}
