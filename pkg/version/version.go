// Package version carries the build version, set with
// -ldflags "-X github.com/warden-dev/warden/pkg/version.Version=v1.2.3".
package version

// Version of this build; "dev" when built without ldflags.
var Version = "dev"
