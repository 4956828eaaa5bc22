package review

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// Volumes are read as pkg/guard's volume rule reads them. A volume named in Warden's reserved
// prefix is decoded in full from its bytes (the seal and the update rule cover all of it, and
// only such volumes can be Warden's). Any other volume keeps its name and every source the rule
// looks at in full (hostPath, persistentVolumeClaim, ephemeral, csi and the in-tree network
// types), the projected sources' token audiences and certificate signers, and for the sources
// the rule only tells apart from those (configMap, secret, emptyDir, downwardAPI, image) that
// they are set: an empty value. These are nearly every volume a pod has, and decoding them
// with reflection was the largest part of reading a pod.

// wardenVolumes is room for the volumes the mutating webhook adds (contract.Volume*): only
// capacity, so a wrong count costs an allocation, never a decision.
const wardenVolumes = 4

func (s *scanner) volumes(p *[]corev1.Volume) error {
	return keptVolumes.list(s, p, &s.slabs.volumes, s.room(wardenVolumes), func(i int, v *corev1.Volume) error {
		enc, err := s.volume(v)
		if err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		if enc != nil {
			s.enc.volumes = append(s.enc.volumes, indexed{i, enc})
		}
		return nil
	})
}

// volume reads one volume, returning a Warden-named one's guard encoding (see parts.go).
func (s *scanner) volume(v *corev1.Volume) ([]byte, error) {
	s.ws()
	start := s.i
	var keys seen
	_, err := s.object(func(key []byte) error {
		bit, ok := volumeKeys[string(key)]
		if !ok {
			return keyErr(key, s.skip())
		}
		return keyErr(key, keys.read(bit, func() error { return s.volumeField(bit, v) }))
	})
	if err != nil || !strings.HasPrefix(v.Name, contract.ReservedNamePrefix) {
		return nil, err
	}
	return wardenVolume(s.b[start:s.i], v)
}

// volumeKeys numbers a volume's keys for the repeated-key rule (and volumeField's switch).
var volumeKeys = func() map[string]uint {
	m := map[string]uint{}
	for i, k := range []string{
		"name", "configMap", "secret", "emptyDir", "downwardAPI", "image", "projected",
		"persistentVolumeClaim", "hostPath", "ephemeral", "csi", "nfs", "iscsi", "glusterfs", "rbd",
		"cephfs", "fc", "flexVolume", "flocker", "quobyte", "portworxVolume", "scaleIO", "storageos",
		"azureFile", "azureDisk", "cinder", "gcePersistentDisk", "awsElasticBlockStore",
		"vsphereVolume", "photonPersistentDisk", "gitRepo",
	} {
		m[k] = uint(i)
	}
	return m
}()

// volumeField reads the value of the key volumeKeys numbers bit.
func (s *scanner) volumeField(bit uint, v *corev1.Volume) error {
	src := &v.VolumeSource
	switch bit {
	case 0:
		return s.str(&v.Name)
	case 1:
		return marker(s, &src.ConfigMap)
	case 2:
		return marker(s, &src.Secret)
	case 3:
		return marker(s, &src.EmptyDir)
	case 4:
		return marker(s, &src.DownwardAPI)
	case 5:
		return marker(s, &src.Image)
	case 6:
		return s.projected(&src.Projected)
	case 7:
		return s.claimSource(&src.PersistentVolumeClaim)
	}
	return s.fullSource(bit, src)
}

// fullSource decodes in full a source the rule reads (those it only tells apart included).
func (s *scanner) fullSource(bit uint, src *corev1.VolumeSource) error {
	switch bit {
	case 8:
		return fullPtr(s, &src.HostPath)
	case 9:
		return fullPtr(s, &src.Ephemeral)
	case 10:
		return fullPtr(s, &src.CSI)
	case 11:
		return fullPtr(s, &src.NFS)
	case 12:
		return fullPtr(s, &src.ISCSI)
	case 13:
		return fullPtr(s, &src.Glusterfs)
	case 14:
		return fullPtr(s, &src.RBD)
	case 15:
		return fullPtr(s, &src.CephFS)
	case 16:
		return fullPtr(s, &src.FC)
	case 17:
		return fullPtr(s, &src.FlexVolume)
	case 18:
		return fullPtr(s, &src.Flocker)
	case 19:
		return fullPtr(s, &src.Quobyte)
	case 20:
		return fullPtr(s, &src.PortworxVolume)
	case 21:
		return fullPtr(s, &src.ScaleIO)
	case 22:
		return fullPtr(s, &src.StorageOS)
	case 23:
		return fullPtr(s, &src.AzureFile)
	case 24:
		return fullPtr(s, &src.AzureDisk)
	case 25:
		return fullPtr(s, &src.Cinder)
	case 26:
		return fullPtr(s, &src.GCEPersistentDisk)
	case 27:
		return fullPtr(s, &src.AWSElasticBlockStore)
	case 28:
		return fullPtr(s, &src.VsphereVolume)
	case 29:
		return fullPtr(s, &src.PhotonPersistentDisk)
	}
	return fullPtr(s, &src.GitRepo)
}

// fullPtr decodes a pointer field in full; null leaves it nil, as the reference decoder does
// for a key read once.
func fullPtr[T any](s *scanner, p **T) error {
	var v *T
	if err := s.full(&v); err != nil {
		return err
	}
	*p = v
	return nil
}

// marker records that a source the rule does not look into is set (an empty value; null
// leaves it nil). Its value is skipped but must be an object, as the reference decoder wants.
func marker[T any](s *scanner, p **T) error {
	if s.null() {
		*p = nil
		return nil
	}
	if s.next() != '{' {
		return s.fail("an object")
	}
	*p = new(T)
	return s.skip()
}

func (s *scanner) claimSource(p **corev1.PersistentVolumeClaimVolumeSource) error {
	if s.null() {
		*p = nil
		return nil
	}
	c := &corev1.PersistentVolumeClaimVolumeSource{}
	*p = c
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "claimName":
			err = keys.read(0, func() error { return s.str(&c.ClaimName) })
		case "readOnly":
			err = keys.read(1, func() error { return s.boolean(&c.ReadOnly) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	return err
}

// projected reads the sources' token audiences and certificate signers.
func (s *scanner) projected(p **corev1.ProjectedVolumeSource) error {
	if s.null() {
		*p = nil
		return nil
	}
	pv := &corev1.ProjectedVolumeSource{}
	*p = pv
	var keys seen
	_, err := s.object(func(key []byte) error {
		if string(key) != "sources" {
			return keyErr(key, s.skip())
		}
		return keyErr(key, keys.read(0, func() error { return list(s, &pv.Sources, s.projection) }))
	})
	return err
}

func (s *scanner) projection(_ int, pr *corev1.VolumeProjection) error {
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "serviceAccountToken":
			err = keys.read(0, func() error {
				return optional(s, &pr.ServiceAccountToken, func(t *corev1.ServiceAccountTokenProjection) error {
					return s.field("audience", &t.Audience)
				})
			})
		case "podCertificate":
			err = keys.read(1, func() error {
				return optional(s, &pr.PodCertificate, func(c *corev1.PodCertificateProjection) error {
					return s.field("signerName", &c.SignerName)
				})
			})
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	return err
}

// optional reads an object into a new *p with read (null: nil).
func optional[T any](s *scanner, p **T, read func(*T) error) error {
	if s.null() {
		*p = nil
		return nil
	}
	v := new(T)
	*p = v
	return read(v)
}

// field reads one string field of an object, skipping the others.
func (s *scanner) field(name string, p *string) error {
	var keys seen
	_, err := s.object(func(key []byte) error {
		if string(key) != name {
			return keyErr(key, s.skip())
		}
		return keyErr(key, keys.read(0, func() error { return s.str(p) }))
	})
	return err
}
