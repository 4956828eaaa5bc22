// Package testing groups what only tests, benchmarks and the demo use, apart from shipped code:
// testenv (a real kube-apiserver and etcd), testvault (a real Vault), podfixture (pods for
// benchmarks), openloop (the load generator), errdecl (error-mapping checks) and fakeiam (the
// in-process IAM, as Google offers no emulator).
package testing
