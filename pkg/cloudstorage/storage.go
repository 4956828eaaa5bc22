// Package storage hands out short-lived, downscoped Cloud Storage access for one space of an
// org, from the broker: it impersonates the org's GCP service account through IAM Credentials
// (GenerateAccessToken, SignBlob), narrows the token to the space's bucket, prefix and access
// kind through an STS token exchange with a Credential Access Boundary, and caches the result
// per space and access kind until less than a buffer of its lifetime is left. It also signs V4
// URLs for single objects and commits uploads of the loading zone: it lists them and announces
// them to processing on the org's Pub/Sub topic. Who may ask is decided before (policy.
// DecideStorage); this package never widens what a Target says.
package cloudstorage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"github.com/googleapis/gax-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-dev/warden/pkg/policy"
)

// Errors, mapped to answers by the broker.
var (
	// ErrUnavailable: IAM Credentials, STS, Cloud Storage or Pub/Sub is down or timed out.
	ErrUnavailable = errors.New("a Google API Warden needs is unavailable")
	// ErrDenied: a Google API refused Warden's own call (the broker may not impersonate the
	// org's service account, the account may not reach the bucket or topic, the bucket or topic
	// does not exist): a configuration problem for the platform team, not for app code.
	ErrDenied = errors.New("a Google API refused Warden's call")
	// ErrNotLoadingZone: commits are for the org's loading zone only.
	ErrNotLoadingZone = errors.New("not the loading zone")
	// ErrNoTopic: the org names no Pub/Sub topic for commits.
	ErrNoTopic = errors.New("the org has no commit topic")
	// ErrNothingToCommit: no object under the root directory.
	ErrNothingToCommit = errors.New("nothing to commit")
	// ErrTooMany: more objects under the root directory than one commit lists.
	ErrTooMany = errors.New("too many objects for one commit")
	// ErrBadInput: a malformed object name, method or root directory.
	ErrBadInput = errors.New("bad storage request")
)

// Target is what one credential is for, resolved from the policy in force: the org's service
// account, the space's bucket and prefix, and the access kind. The cache is keyed by the whole
// Target, so a policy edit that moves a space never serves a token minted for the old place.
type Target struct {
	Org            string
	Space          string
	ServiceAccount string
	Bucket         string
	Prefix         string
	Access         policy.Access
	// Project and Topic are the org's commit topic (commits only).
	Project string
	Topic   string
	// LoadingZone marks the org's loading zone (commits only).
	LoadingZone bool
}

// TargetOf resolves a policy space into a Target.
func TargetOf(sp policy.StorageSpace, project string, a policy.Access) Target {
	return Target{
		Org: sp.Org.Name, Space: sp.Space.Name, ServiceAccount: sp.Org.GCPServiceAccount,
		Bucket: sp.Space.Bucket, Prefix: sp.Space.Prefix, Access: a,
		Project: project, Topic: sp.Store.Topic, LoadingZone: sp.Space.LoadingZone,
	}
}

// IAMCredentials is what Warden calls of the IAM Credentials API;
// *credentials.IamCredentialsClient implements it, tests dial the in-process fake with it.
type IAMCredentials interface {
	GenerateAccessToken(ctx context.Context, req *credentialspb.GenerateAccessTokenRequest, opts ...gax.CallOption) (*credentialspb.GenerateAccessTokenResponse, error)
	SignBlob(ctx context.Context, req *credentialspb.SignBlobRequest, opts ...gax.CallOption) (*credentialspb.SignBlobResponse, error)
}

// Default lifetimes per access kind, and the buffer: a cached token is handed out only while
// more than the buffer of its lifetime is left, so that a transfer started with it can finish.
var DefaultLifetimes = map[policy.Access]time.Duration{
	policy.AccessRead:       time.Hour,
	policy.AccessUpload:     30 * time.Minute,
	policy.AccessUploadMain: 30 * time.Minute,
	policy.AccessDelete:     10 * time.Minute,
}

const (
	DefaultBuffer = 5 * time.Minute
	// MaxLifetime is IAM Credentials' limit for a service account's access token.
	MaxLifetime = time.Hour
	// DefaultMaxCommitObjects bounds one commit's listing (and its Pub/Sub message).
	DefaultMaxCommitObjects = 10000
)

// Options configure a Service.
type Options struct {
	IAM        IAMCredentials
	Downscoper Downscoper
	Lister     Lister
	Publisher  Publisher
	// Lifetimes per access kind (missing kinds take DefaultLifetimes); each at most MaxLifetime
	// and longer than Buffer.
	Lifetimes map[policy.Access]time.Duration
	Buffer    time.Duration
	// DeleteRole is the role delete credentials' boundaries make available (default
	// DefaultDeleteRole).
	DeleteRole string
	// SignedURLHost and SignedURLInsecure point signed URLs at another Cloud Storage endpoint
	// (an emulator); empty means storage.googleapis.com over HTTPS.
	SignedURLHost     string
	SignedURLInsecure bool
	MaxCommitObjects  int
	Registerer        prometheus.Registerer
	Log               *slog.Logger
	Now               func() time.Time
}

// Service mints, caches, signs and commits.
type Service struct {
	opts    Options
	cache   cache
	metrics metrics
}

// New returns a ready Service.
func New(o Options) (*Service, error) {
	if o.IAM == nil || o.Downscoper == nil || o.Lister == nil || o.Publisher == nil {
		return nil, errors.New("storage: IAM Credentials, STS, Cloud Storage and Pub/Sub clients are required")
	}
	if o.Buffer == 0 {
		o.Buffer = DefaultBuffer
	}
	if o.DeleteRole == "" {
		o.DeleteRole = DefaultDeleteRole
	}
	if err := ValidRole(o.DeleteRole); err != nil {
		return nil, fmt.Errorf("storage: delete role: %w", err)
	}
	lt, err := Lifetimes(o.Lifetimes, o.Buffer)
	if err != nil {
		return nil, err
	}
	o.Lifetimes = lt
	if o.MaxCommitObjects == 0 {
		o.MaxCommitObjects = DefaultMaxCommitObjects
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{opts: o, cache: cache{m: map[Target]*flight{}}}
	if s.metrics, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// Lifetimes completes per-kind lifetimes with the defaults and checks them against the buffer:
// each longer than the buffer (a token is handed out only while more than the buffer is left)
// and at most MaxLifetime.
func Lifetimes(in map[policy.Access]time.Duration, buffer time.Duration) (map[policy.Access]time.Duration, error) {
	out := map[policy.Access]time.Duration{}
	var errs []error
	for _, a := range policy.Accesses {
		d := in[a]
		if d == 0 && a == policy.AccessUploadMain {
			d = in[policy.AccessUpload] // one write lifetime, as the seed's sas.token.expiration.write
		}
		if d == 0 {
			d = DefaultLifetimes[a]
		}
		if d > MaxLifetime || d <= buffer {
			errs = append(errs, fmt.Errorf("the %s lifetime %s must be longer than the cache buffer %s and at most %s", a, d, buffer, MaxLifetime))
		}
		out[a] = d
	}
	return out, errors.Join(errs...)
}

// Lifetime is how long credentials and signed URLs of an access kind live.
func (s *Service) Lifetime(a policy.Access) time.Duration { return s.opts.Lifetimes[a] }
