// Package kubeletcert does what the kubelet does for a podCertificate projected volume, for
// suites and the demo that run pods without a kubelet: as the node's user, it creates the
// PodCertificateRequest for a pod bound to that node (a fresh key, the pod's and service
// account's uids), waits for the signer's answer, and returns the credential bundle the
// kubelet would write (the PKCS#8 key, then the issued chain). Everything goes through the real
// API server, Warden's admission and Warden's signer.
package kubeletcert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/contract"
)

// AllowNodes binds the system:node role to the system:nodes group (an admin's client), as a
// control plane without the Node authorizer needs for kubelets to request pod certificates.
func AllowNodes(ctx context.Context, admin kubernetes.Interface) error {
	_, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "warden-test-system-nodes"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:node"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:nodes"}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// EnsureNode creates the Node object name (an admin's client), returning its uid.
func EnsureNode(ctx context.Context, admin kubernetes.Interface, name string) (*corev1.Node, error) {
	n, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	return n, err
}

// Denied is a request the signer denied.
type Denied struct{ Reason, Message string }

func (d *Denied) Error() string { return "denied (" + d.Reason + "): " + d.Message }

// Request asks Warden's signer for pod's certificate as node would (client: the node's user)
// and returns the credential bundle. pod must be bound to node; sa is its service account as
// stored (for the uid).
func Request(ctx context.Context, client kubernetes.Interface, node *corev1.Node, pod *corev1.Pod, sa *corev1.ServiceAccount) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	pcr, err := client.CertificatesV1().PodCertificateRequests(pod.Namespace).Create(ctx, &certv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + "-"},
		Spec: certv1.PodCertificateRequestSpec{
			SignerName: contract.SignerName, PodName: pod.Name, PodUID: pod.UID,
			ServiceAccountName: sa.Name, ServiceAccountUID: sa.UID,
			NodeName: types.NodeName(node.Name), NodeUID: node.UID,
			MaxExpirationSeconds: ptr.To[int32](3600), StubPKCS10Request: csr,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	for {
		got, err := client.CertificatesV1().PodCertificateRequests(pod.Namespace).Get(ctx, pcr.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		for _, c := range got.Status.Conditions {
			switch c.Type {
			case certv1.PodCertificateRequestConditionTypeIssued:
				der, err := x509.MarshalPKCS8PrivateKey(key)
				if err != nil {
					return nil, err
				}
				return append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), []byte(got.Status.CertificateChain)...), nil
			case certv1.PodCertificateRequestConditionTypeDenied, certv1.PodCertificateRequestConditionTypeFailed:
				return nil, &Denied{Reason: c.Reason, Message: c.Message}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kubeletcert: %s/%s not answered: %w", pod.Namespace, pcr.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
