package guard

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// Encodings are the encodings (ContainerEncoding, VolumeEncoding) of a pod's Warden parts that
// its decoder already holds: the admission webhooks decode the same sidecar and volumes, byte
// for byte, for every pod of an owner, and encoding them again for the seal was most of
// verifying it. They are valid for the pod as decoded. A part they lack (nil) is encoded here.
type Encodings interface {
	// Container is the encoding of spec.initContainers[i] (init) or spec.containers[i].
	Container(init bool, i int) []byte
	// Volume is the encoding of spec.volumes[i].
	Volume(i int) []byte
}

// found is where Warden's parts are in a pod: the sidecar, and the volumes in the status's order.
type found struct {
	sidecar Named
	volumes []int
}

// findParts finds the one container named warden-sidecar, where the status says it is, and
// each volume the status names, once, in Warden's reserved names.
func findParts(spec *corev1.PodSpec, st contract.Status) (found, error) {
	var f found
	n := 0
	for nc := range Containers(spec) {
		if nc.C.Name != contract.SidecarName {
			continue
		}
		n++
		if nc.Init == st.Native && !nc.Ephemeral {
			f.sidecar = nc
		}
	}
	if n != 1 || f.sidecar.C == nil {
		return found{}, fmt.Errorf("it has %d containers named %s (one, among the %s, is what Warden injects)", n, contract.SidecarName, map[bool]string{true: "init containers", false: "containers"}[st.Native])
	}
	f.volumes = make([]int, 0, len(st.Volumes))
	for _, name := range st.Volumes {
		n, at := 0, 0
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == name {
				n++
				at = i
			}
		}
		if n != 1 || !strings.HasPrefix(name, contract.ReservedNamePrefix) {
			return found{}, fmt.Errorf("its volume %q is missing, repeated or not Warden's", name)
		}
		f.volumes = append(f.volumes, at)
	}
	return f, nil
}

// digest is PartsDigest of the parts found, from enc where it has them.
func (f found) digest(spec *corev1.PodSpec, enc Encodings) ([32]byte, error) {
	encs := make([][]byte, 0, 1+len(f.volumes))
	var e []byte
	if enc != nil {
		e = enc.Container(f.sidecar.Init, f.sidecar.index)
	}
	if e == nil {
		var err error
		if e, err = ContainerEncoding(f.sidecar.C); err != nil {
			return [32]byte{}, err
		}
	}
	encs = append(encs, e)
	for _, i := range f.volumes {
		e = nil
		if enc != nil {
			e = enc.Volume(i)
		}
		if e == nil {
			var err error
			if e, err = VolumeEncoding(&spec.Volumes[i]); err != nil {
				return [32]byte{}, err
			}
		}
		encs = append(encs, e)
	}
	return digestOf(encs), nil
}
