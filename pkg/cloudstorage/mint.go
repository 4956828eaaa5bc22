package cloudstorage

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/downscope"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/policy"
)

// OAuth scopes of the root tokens: read-only for reads, read-write for the rest; the access
// boundary narrows them further.
const (
	scopeRead      = "https://www.googleapis.com/auth/devstorage.read_only"
	scopeReadWrite = "https://www.googleapis.com/auth/devstorage.read_write"
	scopePubSub    = "https://www.googleapis.com/auth/pubsub"
)

// accessPubSub keys the cache's Pub/Sub tokens (never a kind a pod can ask for).
const accessPubSub policy.Access = "pubsub"

// DefaultDeleteRole is the role delete credentials' boundaries make available: the narrowest
// predefined role that lists, reads, creates and deletes (objectAdmin would add object ACLs and
// IAM policies). It also updates metadata and restores soft-deleted objects; a custom role with
// exactly storage.objects.{list,get,create,delete} (Options.DeleteRole, --storage-delete-role)
// is narrower still.
const DefaultDeleteRole = "roles/storage.objectUser"

// deleteRoleRe is what a boundary takes as a role: a predefined role, or a project's or an
// organization's custom role.
var deleteRoleRe = regexp.MustCompile(`^(roles|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/roles|organizations/[0-9]+/roles)/[A-Za-z0-9_.]{1,100}$`)

// ValidRole checks a role name for an access boundary.
func ValidRole(r string) error {
	if !deleteRoleRe.MatchString(r) {
		return fmt.Errorf("role %q must be roles/NAME, projects/PROJECT/roles/NAME or organizations/ID/roles/NAME", r)
	}
	return nil
}

// Roles are the roles each access kind's boundary makes available, with deleteRole for delete.
// upload/main creates as upload does: what differs is who may have it and where.
func Roles(a policy.Access, deleteRole string) ([]string, bool) {
	switch a {
	case policy.AccessRead:
		return []string{"roles/storage.objectViewer"}, true
	case policy.AccessUpload, policy.AccessUploadMain:
		return []string{"roles/storage.objectViewer", "roles/storage.objectCreator"}, true
	case policy.AccessDelete:
		return []string{deleteRole}, true
	}
	return nil, false
}

// Boundary is the Credential Access Boundary of a Target: its bucket, the roles of its access
// kind (deleteRole for delete), and (unless the space is the whole bucket) a condition that
// keeps reads, writes and listings under its prefix.
func Boundary(t Target, deleteRole string) ([]downscope.AccessBoundaryRule, error) {
	roles, ok := Roles(t.Access, deleteRole)
	if !ok {
		return nil, fmt.Errorf("%w: access %q is not read, upload, upload/main or delete", ErrBadInput, t.Access)
	}
	// The policy validates both; the expression is built from them, so check again here.
	if policy.ValidBucket(t.Bucket) != nil || policy.ValidPrefix(t.Prefix) != nil {
		return nil, fmt.Errorf("%w: space %s/%s has an invalid bucket or prefix", ErrBadInput, t.Org, t.Space)
	}
	rule := downscope.AccessBoundaryRule{AvailableResource: "//storage.googleapis.com/projects/_/buckets/" + t.Bucket}
	for _, r := range roles {
		rule.AvailablePermissions = append(rule.AvailablePermissions, "inRole:"+r)
	}
	if t.Prefix != "" {
		rule.Condition = &downscope.AvailabilityCondition{
			Title: "warden space " + t.Org + "/" + t.Space,
			Expression: fmt.Sprintf("resource.name.startsWith('projects/_/buckets/%s/objects/%s') || "+
				"api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('%s')", t.Bucket, t.Prefix, t.Prefix),
		}
	}
	return []downscope.AccessBoundaryRule{rule}, nil
}

// Credential returns a downscoped token for t, from the cache while more than the buffer of its
// lifetime is left.
func (s *Service) Credential(ctx context.Context, t Target) (brokerapi.Credential, error) {
	rules, err := Boundary(t, s.opts.DeleteRole)
	if err != nil {
		return brokerapi.Credential{}, err
	}
	t.Project, t.Topic, t.LoadingZone = "", "", false // not part of what a token reaches
	start := s.opts.Now()
	tok, hit, err := s.cache.get(ctx, t, start, s.opts.Buffer, func(ctx context.Context) (token, error) {
		return s.mint(ctx, t, rules)
	})
	s.metrics.observe(string(t.Access), hit, err, s.opts.Now().Sub(start))
	if err != nil {
		return brokerapi.Credential{}, err
	}
	return brokerapi.Credential{
		AccessToken: tok.value, TokenType: "Bearer", ExpiresAt: tok.expiry,
		Org: t.Org, Space: t.Space, Access: string(t.Access), Bucket: t.Bucket, Prefix: t.Prefix,
	}, nil
}

// mint impersonates the org's account for the access kind's lifetime and downscopes the token.
func (s *Service) mint(ctx context.Context, t Target, rules []downscope.AccessBoundaryRule) (token, error) {
	scope := scopeReadWrite
	if t.Access == policy.AccessRead {
		scope = scopeRead
	}
	root, err := s.rootToken(ctx, t.ServiceAccount, scope, s.opts.Lifetimes[t.Access])
	if err != nil {
		return token{}, err
	}
	down, err := s.opts.Downscoper.Downscope(ctx, root, rules)
	if err != nil {
		return token{}, err
	}
	if down.AccessToken == "" {
		return token{}, fmt.Errorf("%w: STS answered without a token", ErrUnavailable)
	}
	// A downscoped token lives as long as its root token (STS's expires_in is the root's time
	// left); IAM's expire_time is exact, where the library adds expires_in to its own clock.
	s.opts.Log.Info("storage credential minted", "org", t.Org, "space", t.Space, "access", t.Access, "gsa", t.ServiceAccount, "expires", root.Expiry)
	return token{value: down.AccessToken, expiry: root.Expiry}, nil
}

// rootToken is an access token of the org's GCP service account, from IAM Credentials.
func (s *Service) rootToken(ctx context.Context, gsa, scope string, lifetime time.Duration) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := s.opts.IAM.GenerateAccessToken(ctx, &credentialspb.GenerateAccessTokenRequest{
		Name:     resource(gsa),
		Scope:    []string{scope},
		Lifetime: durationpb.New(lifetime),
	})
	if err != nil {
		return nil, classify("IAM Credentials GenerateAccessToken for "+gsa, err)
	}
	return &oauth2.Token{AccessToken: resp.GetAccessToken(), TokenType: "Bearer", Expiry: resp.GetExpireTime().AsTime()}, nil
}

// pubsubToken is a token of the org's account for Pub/Sub, cached like credentials.
func (s *Service) pubsubToken(ctx context.Context, gsa string) (*oauth2.Token, error) {
	t := Target{ServiceAccount: gsa, Access: accessPubSub}
	tok, _, err := s.cache.get(ctx, t, s.opts.Now(), s.opts.Buffer, func(ctx context.Context) (token, error) {
		root, err := s.rootToken(ctx, gsa, scopePubSub, s.opts.Lifetimes[policy.AccessRead])
		if err != nil {
			return token{}, err
		}
		return token{value: root.AccessToken, expiry: root.Expiry}, nil
	})
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: tok.value, TokenType: "Bearer", Expiry: tok.expiry}, nil
}

func resource(gsa string) string { return "projects/-/serviceAccounts/" + gsa }

// Timeouts of the Google API calls, inside the sidecar's broker timeouts (brokerapi): 5 seconds
// for a credential or a signed URL, 30 for a commit, whose listing pages through up to
// MaxCommitObjects objects.
const (
	callTimeout    = 4 * time.Second
	listTimeout    = 18 * time.Second
	publishTimeout = 6 * time.Second
)

// objectName joins a space's prefix and an object name a pod gave (checked).
func objectName(t Target, name string) (string, error) {
	if err := policy.ValidObjectName(t.Prefix, name); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	return t.Prefix + name, nil
}

// rootDir joins a space's prefix and a commit's root directory, ending in '/'.
func rootDir(t Target, dir string) (string, error) {
	if err := policy.ValidRootDir(t.Prefix, dir); err != nil {
		return "", fmt.Errorf("%w: root_dir: %v", ErrBadInput, err)
	}
	return t.Prefix + strings.TrimSuffix(dir, "/") + "/", nil
}
