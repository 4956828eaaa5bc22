package kubenode

import (
	"fmt"
	"path/filepath"
)

// configFiles are the node's configuration files, by path below n.Dir: the CNI bridge, containerd
// and the kubelet.
func (n *Node) configFiles(kubeconfig []byte) map[string]string {
	d := n.Dir
	return map[string]string{
		"cni/net.d/10-warden-node.conflist": fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "warden-node", "plugins": [{"type": "bridge", "bridge": %q,
  "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}]}
`, Bridge, PodSubnet, filepath.Join(d, "cni/ipam")),
		"containerd.toml": fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # Without CAP_SYS_RESOURCE (as in some VMs) runc cannot set the negative oom_score_adj the
  # kubelet asks for, and every sandbox fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(d, "containerd/root"), filepath.Join(d, "containerd/state"), n.sock, filepath.Join(d, "containerd/opt"),
			PauseImage, cniBinDir, filepath.Join(d, "cni/net.d")),
		"kubelet.kubeconfig": string(kubeconfig),
		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts are refused since 1.35 unless allowed; cgroupfs, as there is no systemd here.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%[1]s
podLogsDir: %[2]s
# Serve on the bridge only. The API server reaches it for logs and exec; nothing else can.
address: %[3]s
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: /etc/resolv.conf
# Imported images cannot be pulled again: never collect them, never evict on a busy disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
`, n.sock, filepath.Join(d, "pod-logs"), NodeIP),
	}
}
