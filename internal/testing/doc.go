// Package testing groups what only tests, benchmarks and the demo use, apart from shipped code:
// testenv (a real kube-apiserver and etcd), testvault (a real Vault), podfixture (pods for
// benchmarks), openloop (the load generator), errdecl (error-mapping checks), and the in-process
// Google services, as Google offers no emulator of them: fakeiam (IAM admin), fakecreds (IAM
// Credentials: access tokens and signatures, and a Cloud Storage V4 signed-URL verifier) and
// fakests (STS token exchange, downscoping).
package testing
