package fakecreds_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
)

const (
	gsa     = "aes1-svc@my-project.iam.gserviceaccount.com"
	other   = "aes2-svc@my-project.iam.gserviceaccount.com"
	scope   = "https://www.googleapis.com/auth/devstorage.read_only"
	gsaName = "projects/-/serviceAccounts/" + gsa
)

// start runs the fake with gsa and other on a test clock and dials it with the real client,
// retries off so that an Unavailable answer reaches the test at once and Calls counts exactly
// what the test sent.
func start(t *testing.T) (*fakecreds.Server, *credentials.IamCredentialsClient, *clocktesting.FakeClock) {
	t.Helper()
	s, err := fakecreds.Start(gsa, other)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	clk := clocktesting.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s.Now = clk.Now
	c := dial(t, s.Addr)
	return s, c, clk
}

// dial is the real IAM Credentials client pointed at addr.
func dial(t *testing.T, addr string) *credentials.IamCredentialsClient {
	t.Helper()
	c, err := credentials.NewIamCredentialsClient(context.Background(),
		option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	c.CallOptions.GenerateAccessToken = nil
	c.CallOptions.SignBlob = nil
	return c
}

func TestGenerateAccessToken(t *testing.T) {
	t.Parallel()
	s, c, clk := start(t)
	ctx := context.Background()
	start := clk.Now()

	resp, err := c.GenerateAccessToken(ctx, &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(resp.AccessToken, "ya29.fake-"), resp.AccessToken)
	require.Equal(t, start.Add(time.Hour), resp.ExpireTime.AsTime(), "no lifetime is one hour")

	info, ok := s.Lookup(resp.AccessToken)
	require.True(t, ok)
	require.Equal(t, fakecreds.TokenInfo{Account: gsa, Scopes: []string{scope}, Expiry: start.Add(time.Hour)}, info)

	// A project id instead of "-", and an explicit lifetime.
	resp2, err := c.GenerateAccessToken(ctx, &credentialspb.GenerateAccessTokenRequest{
		Name: "projects/my-project/serviceAccounts/" + other, Scope: []string{scope, "https://www.googleapis.com/auth/cloud-platform"},
		Lifetime: durationpb.New(10 * time.Minute)})
	require.NoError(t, err)
	require.NotEqual(t, resp.AccessToken, resp2.AccessToken)
	info2, ok := s.Lookup(resp2.AccessToken)
	require.True(t, ok)
	require.Equal(t, other, info2.Account)
	require.Len(t, info2.Scopes, 2)
	require.Equal(t, start.Add(10*time.Minute), info2.Expiry)

	_, ok = s.Lookup("ya29.fake-forged")
	require.False(t, ok, "a token the server did not mint")

	// Expiry: the 10-minute token goes first, the hour one at its last instant.
	clk.Step(10 * time.Minute)
	_, ok = s.Lookup(resp2.AccessToken)
	require.False(t, ok, "expired at its expiry")
	_, ok = s.Lookup(resp.AccessToken)
	require.True(t, ok)
	clk.Step(50 * time.Minute)
	_, ok = s.Lookup(resp.AccessToken)
	require.False(t, ok)

	require.Equal(t, 2, s.Calls(fakecreds.MethodGenerateAccessToken))
	require.Equal(t, 0, s.Calls(fakecreds.MethodSignBlob))
}

func TestGenerateAccessTokenRefused(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	s.Deny(other)
	const denied = "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
	for _, tc := range []struct {
		name string
		req  *credentialspb.GenerateAccessTokenRequest
		code codes.Code
		msg  string
	}{
		{"no name", &credentialspb.GenerateAccessTokenRequest{Scope: []string{scope}}, codes.InvalidArgument, "Invalid form"},
		{"bare email", &credentialspb.GenerateAccessTokenRequest{Name: gsa, Scope: []string{scope}}, codes.InvalidArgument, "Invalid form"},
		{"no serviceAccounts", &credentialspb.GenerateAccessTokenRequest{Name: "projects/-/" + gsa, Scope: []string{scope}}, codes.InvalidArgument, "Invalid form"},
		{"bad project", &credentialspb.GenerateAccessTokenRequest{Name: "projects/My_Project/serviceAccounts/" + gsa, Scope: []string{scope}}, codes.InvalidArgument, "Invalid form"},
		{"trailing", &credentialspb.GenerateAccessTokenRequest{Name: gsaName + "/keys/1", Scope: []string{scope}}, codes.InvalidArgument, "Invalid form"},
		{"unknown account", &credentialspb.GenerateAccessTokenRequest{Name: "projects/-/serviceAccounts/nobody@my-project.iam.gserviceaccount.com", Scope: []string{scope}}, codes.PermissionDenied, denied},
		{"denied account", &credentialspb.GenerateAccessTokenRequest{Name: "projects/-/serviceAccounts/" + other, Scope: []string{scope}}, codes.PermissionDenied, denied},
		{"no scope", &credentialspb.GenerateAccessTokenRequest{Name: gsaName}, codes.InvalidArgument, "Scope required"},
		{"empty scope", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{""}}, codes.InvalidArgument, "Scope"},
		{"zero lifetime", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Lifetime: durationpb.New(0)}, codes.InvalidArgument, "lifetime"},
		{"sub-second lifetime", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Lifetime: durationpb.New(999 * time.Millisecond)}, codes.InvalidArgument, "lifetime"},
		{"negative lifetime", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Lifetime: durationpb.New(-time.Minute)}, codes.InvalidArgument, "lifetime"},
		{"lifetime over an hour", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Lifetime: durationpb.New(time.Hour + time.Second)}, codes.InvalidArgument, "lifetime"},
		{"twelve hours", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Lifetime: durationpb.New(12 * time.Hour)}, codes.InvalidArgument, "lifetime"},
		{"delegates", &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Delegates: []string{"projects/-/serviceAccounts/" + other}}, codes.InvalidArgument, "delegates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GenerateAccessToken(context.Background(), tc.req)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tc.msg)
		})
	}

	// The bounds themselves are accepted.
	for _, d := range []time.Duration{time.Second, time.Hour} {
		_, err := c.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}, Lifetime: durationpb.New(d)})
		require.NoError(t, err, d)
	}
}

func TestDenyKeepsMintedTokens(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	resp, err := c.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}})
	require.NoError(t, err)

	s.Deny(gsa)
	_, err = c.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = c.SignBlob(context.Background(), &credentialspb.SignBlobRequest{Name: gsaName, Payload: []byte("x")})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "iam.serviceAccounts.signBlob")
	_, ok := s.Lookup(resp.AccessToken)
	require.True(t, ok, "revoking the binding does not revoke tokens already minted")

	s.Allow(gsa)
	_, err = c.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}})
	require.NoError(t, err)
}

func TestDown(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	s.SetDown(true)
	_, err := c.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = c.SignBlob(context.Background(), &credentialspb.SignBlobRequest{Name: gsaName, Payload: []byte("x")})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Equal(t, 1, s.Calls(fakecreds.MethodGenerateAccessToken), "a call while down is counted")
	require.Equal(t, 1, s.Calls(fakecreds.MethodSignBlob))

	s.SetDown(false)
	_, err = c.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{Name: gsaName, Scope: []string{scope}})
	require.NoError(t, err)
	require.Equal(t, 2, s.Calls(fakecreds.MethodGenerateAccessToken))
}

func TestSignBlob(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	payload := []byte("GOOG4-RSA-SHA256\n20300102T030405Z\n...")
	resp, err := c.SignBlob(context.Background(), &credentialspb.SignBlobRequest{Name: gsaName, Payload: payload})
	require.NoError(t, err)
	require.Equal(t, s.KeyID(gsa), resp.KeyId)
	require.Len(t, resp.KeyId, 40)

	sum := sha256.Sum256(payload)
	require.NoError(t, rsa.VerifyPKCS1v15(s.PublicKey(gsa), crypto.SHA256, sum[:], resp.SignedBlob))
	require.Equal(t, 2048, s.PublicKey(gsa).N.BitLen())
	// Each account has its own key.
	require.Error(t, rsa.VerifyPKCS1v15(s.PublicKey(other), crypto.SHA256, sum[:], resp.SignedBlob))
	require.NotEqual(t, s.KeyID(gsa), s.KeyID(other))
	otherSum := sha256.Sum256([]byte("something else"))
	require.Error(t, rsa.VerifyPKCS1v15(s.PublicKey(gsa), crypto.SHA256, otherSum[:], resp.SignedBlob))
	require.Nil(t, s.PublicKey("nobody@my-project.iam.gserviceaccount.com"))
	require.Empty(t, s.KeyID("nobody@my-project.iam.gserviceaccount.com"))

	for _, tc := range []struct {
		name string
		req  *credentialspb.SignBlobRequest
		code codes.Code
	}{
		{"no payload", &credentialspb.SignBlobRequest{Name: gsaName}, codes.InvalidArgument},
		{"bad name", &credentialspb.SignBlobRequest{Name: gsa, Payload: payload}, codes.InvalidArgument},
		{"unknown account", &credentialspb.SignBlobRequest{Name: "projects/-/serviceAccounts/nobody@my-project.iam.gserviceaccount.com", Payload: payload}, codes.PermissionDenied},
		{"delegates", &credentialspb.SignBlobRequest{Name: gsaName, Payload: payload, Delegates: []string{"projects/-/serviceAccounts/" + other}}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SignBlob(context.Background(), tc.req)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
		})
	}
	require.Equal(t, 5, s.Calls(fakecreds.MethodSignBlob))
}

func TestAddAccountKeepsKey(t *testing.T) {
	t.Parallel()
	s, _, _ := start(t)
	k := s.PublicKey(gsa)
	s.AddAccount(gsa)
	require.True(t, k.Equal(s.PublicKey(gsa)), "adding an existing account keeps its key")
}
